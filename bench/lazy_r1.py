"""Benchmark: lazy R1 (StyleGAN2's lazy regularisation) against R1 in every discriminator update.

``algorithm.r1_every: k`` computes the R1 penalty in every k-th critic iteration only and backpropagates it with gain
k (``ctx.backward(..., gain=k)``), so on average D gets the same regularisation for 1/k of its cost. This bench trains
one recipe (default ``gan-toy`` on ``toy:ring8``, with ``algorithm.r1_gamma`` set) several ways, for the same number
of steps and seeds, in this one process on one thread (``--only`` picks some):

* ``every``: ``r1_every=1`` (R1 added to every D loss);
* ``lazy``: ``r1_every=K`` (``--every``, default 16, as StyleGAN2), gain K;
* ``lazy2``: ``r1_every=K2`` (``--every2``, default 4), gain K2: how the interval matters;
* ``none``: ``r1_gamma=0``, the cost R1 adds and the learning it changes, for reference.

``--lazy-gamma`` sets another gamma for the lazy runs (StyleGAN2 tunes gamma with its interval in place).

Learning figure, toy data: 2,500 samples (EMA off) scored with ``ganforge.metrics.toy2d``: modes covered (of 8 on
ring8, >= 20 high-quality samples each) and the high-quality share (within 3 std of a mode), per seed and on average.
Image data (``--data mnist5k?split=train``, ``--recipe dcgan-mnist-quick``): 2,000 samples (EMA off) scored against the
data by the domain FID and KID (``ganforge.metrics.evaluate`` with ganforge's digit classifier), per seed and on
average, and the digit classes they cover (of 10, by the classifier). Speed: the
median time of a training step, measured between consecutive steps after a warm-up of 100 (sample grids and
checkpoints are off until the end; the median, not the mean, so that other processes on a shared machine count
less), averaged over the seeds. Not a test; run it by hand, e.g.

    .venv/bin/python bench/lazy_r1.py                                  # gan-toy, 3 seeds x 3000 steps, ~5 CPU-min
    .venv/bin/python bench/lazy_r1.py --quick                          # a smoke run
    .venv/bin/python bench/lazy_r1.py --only lazy --lazy-gamma 4       # the lazy run with a stronger penalty
    .venv/bin/python bench/lazy_r1.py --recipe dcgan-mnist-quick --data 'mnist5k?split=train' --gamma 10 \
        --only every,lazy,none --steps 2000 --seeds 0,1                  # an image recipe, domain FID

Measured (the defaults, on a 2-core AVX2 EPYC shared with other jobs, so step times are +-10 %): R1 every step covered
8, 8, 8 of the 8 modes (44 % high-quality) at 8.4 ms a step; lazy every 16 only 4, 3, 7 (20 %; no R1 at all: 4, 3, 5,
12 %) at 5.9 ms; lazy every 4: 5, 8, 8 (40 %) at 6.8 ms. Every 16 with gamma 4: 0, 3, 2 (6 %). On this toy, whose D
moves fast (Adam 1e-3, beta1 0.5), a 16-step interval loses what R1 brings; 4 keeps most of it for part of the time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.metrics.toy2d import toy_mode_metrics

SAMPLES = 2500        # the mode-collapse papers' evaluation size (toy2d's min_count of 20 assumes it)
IMAGE_SAMPLES = 2000  # image data: samples for the domain FID / KID
WARMUP = 100          # steps before the step time is measured (allocator and thread pool warm-up)


def run(recipe: str, data: str, seed: int, steps: int, extra: dict[str, Any], root: Path) -> dict[str, Any]:
    stamps: list[float] = []
    over = {"train.threads": 1, "train.log_every": 500, "train.sample_every": 10 ** 9,
            "train.checkpoint_every": 10 ** 9, "train.grid_size": 16, **extra}
    t0 = time.time()
    result = ganforge.train(recipe, data=data, seed=seed, steps=steps, out=root / f"{len(list(root.iterdir()))}",
                            progress=False, overrides=over, command="bench/lazy_r1.py",
                            on_step=lambda t: stamps.append(time.perf_counter()))
    wall = time.time() - t0
    gaps = [b - a for a, b in zip(stamps[WARMUP:], stamps[WARMUP + 1:])]
    timing = {"seed": seed, "step_ms": 1000 * statistics.median(gaps), "wall_s": wall}
    if not data.startswith("toy:"):
        return {**timing, **image_figures(result.run_dir, data, seed)}
    samples = ganforge.load(result.run_dir, use_ema=False).sample(SAMPLES, seed=1000 + seed)
    metrics = toy_mode_metrics(samples, data)
    return {**timing, "modes": int(metrics["modes_covered"]), "of": int(metrics["num_modes"]),
            "high_quality": float(metrics["high_quality"])}


def image_figures(run_dir: Path, data: str, seed: int) -> dict[str, Any]:
    """Domain FID / KID of IMAGE_SAMPLES samples against ``data``, and the classes they cover (``modes``)."""
    from ganforge.metrics.evaluate import evaluate, load_reference, load_target
    samples = load_target(str(run_dir), IMAGE_SAMPLES, seed=1000 + seed, use_ema=False)
    got = evaluate(samples, ["fid", "kid", "classes"], reference=load_reference(data))
    return {"fid": float(got["fid"]), "kid": float(got["kid"]), "modes": int(got["modes"]),
            "of": int(got.get("num_classes", 10))}


def figure_text(r: dict[str, Any]) -> str:
    if "fid" in r:
        return f"FID {r['fid']:.2f}, {r['modes']}/{r['of']} classes"
    return f"{r['modes']}/{r['of']} modes, {r['high_quality']:.0%} hq"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="gan-toy")
    ap.add_argument("--data", default="toy:ring8")
    ap.add_argument("--gamma", type=float, default=1.0, help="algorithm.r1_gamma of the R1 runs")
    ap.add_argument("--every", type=int, default=16, help="algorithm.r1_every of the lazy runs (also its gain)")
    ap.add_argument("--every2", type=int, default=4, help="algorithm.r1_every of the second lazy variant")
    ap.add_argument("--lazy-gamma", type=float, default=None,
                    help="algorithm.r1_gamma of the lazy runs (default: --gamma)")
    ap.add_argument("--only", default="every,lazy,lazy2,none", help="variants to run, of every,lazy,lazy2,none")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 300 steps, one seed")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    steps, seeds = (300, [0]) if args.quick else (args.steps, [int(s) for s in args.seeds.split(",")])
    lazy_gamma = args.gamma if args.lazy_gamma is None else args.lazy_gamma
    known = {"every": (f"r1 every step (gamma {args.gamma:g})",
                       {"algorithm.r1_gamma": args.gamma, "algorithm.r1_every": 1}),
             "lazy": (f"lazy r1 every {args.every}, gain {args.every} (gamma {lazy_gamma:g})",
                      {"algorithm.r1_gamma": lazy_gamma, "algorithm.r1_every": args.every}),
             "lazy2": (f"lazy r1 every {args.every2}, gain {args.every2} (gamma {lazy_gamma:g})",
                       {"algorithm.r1_gamma": lazy_gamma, "algorithm.r1_every": args.every2}),
             "none": ("no r1", {"algorithm.r1_gamma": 0.0})}
    chosen = [v.strip() for v in args.only.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        ap.error(f"--only takes some of {', '.join(known)}, got {args.only!r}")
    variants = [known[v] for v in chosen]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, extra in variants:
            runs = [run(args.recipe, args.data, seed, steps, extra, root) for seed in seeds]
            rows.append((name, runs))
            done = ", ".join(f"seed {r['seed']} {figure_text(r)}, {r['step_ms']:.2f} ms/step" for r in runs)
            print(f"  {name}: {done}", file=sys.stderr, flush=True)
    base_ms = statistics.fmean(r["step_ms"] for r in rows[0][1])
    if not args.data.startswith("toy:"):
        print(f"\n{args.recipe} on {args.data}, {steps} steps x seeds {','.join(map(str, seeds))}, 1 thread, "
              f"{IMAGE_SAMPLES} samples per run (EMA off), domain features; step time: median per run, mean over "
              "seeds, against the first row\n")
        print("| variant | domain FID (per seed) | KID (x 1e3, as evaluate) | classes covered | step time | vs first row |")
        print("|---|---|---|---|---|---|")
        for name, runs in rows:
            ms = statistics.fmean(r["step_ms"] for r in runs)
            per_seed = " ".join(f"{r['fid']:.2f}" for r in runs)
            print(f"| {name} | {statistics.fmean(r['fid'] for r in runs):.2f} ({per_seed}) | "
                  f"{statistics.fmean(r['kid'] for r in runs):.2f} | "
                  f"{statistics.fmean(r['modes'] for r in runs):.1f} of {runs[0]['of']} | {ms:.2f} ms | "
                  f"{(ms / base_ms - 1):+.0%} |")
        return 0
    print(f"\n{args.recipe} on {args.data}, {steps} steps x seeds {','.join(map(str, seeds))}, 1 thread, {SAMPLES} "
          f"samples per run; step time: median per run, mean over seeds, against the first row\n")
    print("| variant | modes covered (per seed) | high-quality share | step time | vs first row |")
    print("|---|---|---|---|---|")
    for name, runs in rows:
        ms = statistics.fmean(r["step_ms"] for r in runs)
        modes = statistics.fmean(r["modes"] for r in runs)
        per_seed = " ".join(str(r["modes"]) for r in runs)
        hq = statistics.fmean(r["high_quality"] for r in runs)
        print(f"| {name} | {modes:.1f} of {runs[0]['of']} ({per_seed}) | {hq:.0%} | {ms:.2f} ms | "
              f"{(ms / base_ms - 1):+.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
