"""Benchmark: StyleGAN on coloured digits against the DCGAN baseline of the same data and CPU budget, lazy R1 against R1
in every step, the style-mixing and truncation grids, and how far the mixed images take their digit from the coarse
styles and their colour from the fine ones.

Trains ``--recipe`` (default ``stylegan-colour``: the bundled digits tinted with random hues, 32 px, lazy R1 every 16
steps) and measures its training CPU time (``time.process_time``, one thread: the machine is shared, so wall time
says more about the other jobs than about the recipe) and wall time; trains the same recipe with R1 in every D step
(``regularize.r1.every=1``, StyleGAN v1's form) for the same number of steps; trains the baseline ``--baseline``
(default ``dcgan-mnist-quick``, the CPU-budget DCGAN; ``dcgan-mnist`` is the book's, 8x slower per step) on the same
data at the same size for the lazy run's CPU time: a 100-step probe gives its CPU seconds per step, then the run is
resumed (bit-exact) to the number of steps that fills the budget. Evaluates each with ``ganforge.metrics.evaluate`` on
ganforge's domain classifier of the data (domain FID, KID, precision / recall, class figures; ``--samples`` samples,
EMA generator unless said otherwise) against the training data, with the held-out real digits as the floor.

From the lazy run's EMA generator:

- the psi curve: domain FID / precision / recall at truncation psi 1, 0.85, 0.7, 0.5, 0.3 (in W, cutoff 8: every
  layer at 32 px);
- the mixing figures (``mixing_figures``): ``--pairs`` pairs of latents (a, b), each image synthesised from a's styles
  in the coarse layers (0-3: 4^2 and 8^2, the paper's "coarse") and b's in the fine ones (4-7: 16^2 and 32^2), with
  the same noise as the sources; the domain classifier's digit of the mixed image against its sources' digits (over
  the pairs whose sources show different digits: agreement with the coarse source, with the fine source), and the
  mixed image's ink colour (chromaticity of its mean colour where it is bright) against each source's;
- three grids to look at: ``mixing.png`` (``--mix 6``: coarse styles from the left column, fine ones from the top
  row; top-left the average image), ``truncation.png`` (a row per psi in 1, 0.85, 0.7, 0.5, 0.3, 0, the same 10
  latents in every row) and ``noise.png`` (the same 10 latents under three noise seeds).

Not a test; run it by hand (one thread; about 3 x the recipe's CPU time for the three runs plus ~2 minutes of
evaluation):

    .venv/bin/python bench/stylegan_colour.py --threads 1 --out runs/bench-stylegan-colour
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.config import load_config, parse_set
from ganforge.data import load_source, prepare, to_uint8
from ganforge.inference import load
from ganforge.metrics.evaluate import FeatureExtractor, Samples, evaluate, load_reference, load_target, make_extractor
from ganforge.report import save_grid

from baseline_common import markdown_table

METRICS = ["fid", "kid", "pr", "classes"]
COLUMNS = [("fid", "FID"), ("kid", "KID"), ("precision", "prec"), ("recall", "recall"), ("modes", "modes"),
           ("confident_share", "conf"), ("cpu_s", "CPU s"), ("train_s", "wall s"), ("steps", "steps"),
           ("cpu_s_per_step", "CPU s/step")]
HELD_OUT = "mnist5k?split=test&domain=colour"
PSI_CURVE = (0.85, 0.7, 0.5, 0.3)
TRUNCATION_ROWS = (1.0, 0.85, 0.7, 0.5, 0.3, 0.0)
PROBE_STEPS = 100          # the baseline's CPU seconds per step are measured on its first steps
INK = 0.35                 # a pixel is ink when its brightest channel is above this (images in [0, 1])


def table(rows: dict[str, dict[str, Any]]) -> str:
    return markdown_table(rows, COLUMNS)


def train(recipe: str, out: Path, overrides: dict[str, Any], resume: bool = False,
          steps: int | None = None) -> tuple[Path, float, float, int]:
    """(run dir, CPU seconds, wall seconds, steps) of training ``recipe`` into ``out`` (or resuming it to ``steps``)."""
    t0, c0 = time.time(), time.process_time()
    if resume:
        run = ganforge.train(resume=out, steps=steps, progress="log")
    else:
        run = ganforge.train(recipe, out=out, force=True, overrides=overrides, progress="log",
                             command=f"bench/stylegan_colour.py ({recipe})")
    return run.run_dir, time.process_time() - c0, time.time() - t0, run.steps


def facts(cpu: float, wall: float, steps: int) -> dict[str, Any]:
    return {"cpu_s": round(cpu, 1), "train_s": round(wall, 1), "steps": steps, "cpu_s_per_step": cpu / steps}


def ink_colour(images: torch.Tensor) -> torch.Tensor:
    """(N, 3) chromaticity (r, g, b) / (r + g + b) of each image's mean colour over its ink pixels (brightest channel
    above ``INK``; the whole image where it has none): the hue of a tinted digit, whatever its brightness."""
    x = images.float() / 255.0
    ink = (x.amax(1, keepdim=True) > INK).float()
    ink = torch.where(ink.sum((2, 3), keepdim=True) > 0, ink, torch.ones_like(ink))
    mean = (x * ink).sum((2, 3)) / ink.sum((2, 3))
    return mean / mean.sum(1, keepdim=True).clamp_min(1e-6)


@torch.no_grad()
def mixing_figures(G: torch.nn.Module, extractor: FeatureExtractor, value_range: tuple[float, float], pairs: int,
                   cutoff: int, seed: int = 0) -> dict[str, Any]:
    """Where the mixed images' digit and colour come from: ``pairs`` pairs of latents (a, b), the image of a's styles
    below layer ``cutoff`` (coarse) and b's from it on (fine), each synthesised with the same per-sample noise as its
    sources. Digit figures over the pairs whose sources the domain classifier reads as different digits; colour
    figures over all pairs (L1 distance of ink chromaticities, ``ink_colour``)."""
    gen = torch.Generator().manual_seed(seed)
    za, zb = (torch.randn(pairs, G.latent_dim, generator=gen) for _ in range(2))
    wa, wb = G.styles(za), G.styles(zb)
    # eval mode: synthesize() draws the noise from one seeded generator per call, so sample i gets the same noise
    # in all three calls
    images = [to_uint8(G.synthesize(ws).clamp(*value_range), value_range) for ws in (wa, wb, G.mix(wa, wb, cutoff))]
    digit_a, digit_b, digit_mix = (torch.from_numpy(extractor(x)[1]).argmax(1) for x in images)
    differ = digit_a != digit_b
    colour_a, colour_b, colour_mix = (ink_colour(x) for x in images)
    to_coarse = (colour_mix - colour_a).abs().sum(1)
    to_fine = (colour_mix - colour_b).abs().sum(1)
    return {"pairs": pairs, "cutoff": cutoff, "pairs_with_different_digits": int(differ.sum()),
            "digit_from_coarse": float((digit_mix == digit_a)[differ].float().mean()),
            "digit_from_fine": float((digit_mix == digit_b)[differ].float().mean()),
            "colour_closer_to_fine": float((to_fine < to_coarse).float().mean()),
            "colour_l1_to_fine": float(to_fine.mean()), "colour_l1_to_coarse": float(to_coarse.mean()),
            "colour_l1_between_sources": float((colour_a - colour_b).abs().sum(1).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="stylegan-colour")
    ap.add_argument("--baseline", default="dcgan-mnist-quick", help="the DCGAN recipe run on the same data and budget")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--samples", type=int, default=1000, help="generated samples per run to evaluate")
    ap.add_argument("--pairs", type=int, default=1000, help="latent pairs for the mixing figures")
    ap.add_argument("--mix-cutoff", type=int, default=4, help="coarse layers of the mixing figures (4: 4^2 and 8^2)")
    ap.add_argument("--skip", action="append", default=[], choices=["r1-every-step", "baseline"],
                    help="leave a comparison run out")
    ap.add_argument("--reuse", action="store_true", help="evaluate the runs already in --out instead of training")
    ap.add_argument("--out", default="runs/bench-stylegan-colour")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for the StyleGAN runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_config(args.recipe, parse_set(args.set))
    source, size, channels = cfg.data.source, cfg.data.image_size, cfg.data.channels
    out = Path(args.out)
    common = {"train.threads": args.threads, **parse_set(args.set)}
    runs: dict[str, tuple[Path, bool, dict[str, Any]]] = {}
    timing_file = out / "timings.json"
    timings: dict[str, Any] = json.loads(timing_file.read_text()) if args.reuse else {}

    def timed(key: str, recipe: str, over: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
        if not args.reuse:
            run_dir, cpu, wall, steps = train(recipe, out / key, over)
            timings[key] = facts(cpu, wall, steps)
        return out / key, timings[key]

    lazy_dir, lazy = timed("lazy-r1", args.recipe, common)
    print(f"{args.recipe} (the recipe's lazy R1): {lazy['steps']} steps in {lazy['cpu_s']:.0f} CPU s")
    runs[f"{args.recipe}, lazy R1 (EMA G)"] = (lazy_dir, True, lazy)
    runs[f"{args.recipe}, lazy R1 (G)"] = (lazy_dir, False, lazy)
    if "r1-every-step" not in args.skip:
        every_dir, every = timed("r1-every-step", args.recipe, {**common, "regularize.r1.every": 1})
        print(f"{args.recipe} (R1 every step): {every['steps']} steps in {every['cpu_s']:.0f} CPU s")
        runs[f"{args.recipe}, R1 every step (EMA G)"] = (every_dir, True, every)
    if "baseline" not in args.skip:
        base_dir = out / "dcgan"
        if not args.reuse:      # a probe for the CPU s/step, then resumed to the steps that fill the lazy run's budget
            over = {"data.source": source, "data.image_size": size, "data.channels": channels,
                    "train.threads": args.threads, "train.steps": PROBE_STEPS, "train.sample_every": 500,
                    "train.checkpoint_every": 100_000, "train.grid_size": 64}
            _, cpu, wall, _ = train(args.baseline, base_dir, over)
            steps = max(PROBE_STEPS, round(lazy["cpu_s"] / (cpu / PROBE_STEPS)))
            _, cpu2, wall2, steps = train(args.baseline, base_dir, {}, resume=True, steps=steps)
            timings["dcgan"] = facts(cpu + cpu2, wall + wall2, steps)
        base = timings["dcgan"]
        print(f"{args.baseline}: {base['steps']} steps in {base['cpu_s']:.0f} CPU s (budget {lazy['cpu_s']:.0f} s)")
        runs[f"{args.baseline} baseline (G)"] = (base_dir, False, base)
    out.mkdir(parents=True, exist_ok=True)
    timing_file.write_text(json.dumps(timings, indent=1))

    extractor = make_extractor("domain", source, image_size=size, channels=channels)
    reference = load_reference(source, image_size=size, channels=channels)
    result: dict[str, Any] = {"recipe": args.recipe, "data": source, "image_size": size, "baseline": args.baseline,
                              "classifier_test_accuracy": extractor.info.get("test_accuracy")}
    rows: dict[str, dict[str, Any]] = {}
    for name, (run_dir, ema, extra) in runs.items():
        rows[name] = {**evaluate(load_target(str(run_dir), args.samples, seed=123, use_ema=ema), METRICS,
                                 reference=reference, extractor=extractor), **extra}
    model = load(lazy_dir)
    for psi in PSI_CURVE:       # truncation in W (the network's cutoff, 8: every layer at 32 px)
        images = to_uint8(model.sample(args.samples, seed=123, truncation=psi), model.value_range)
        rows[f"{args.recipe}, lazy R1 (EMA G), psi {psi}"] = evaluate(Samples("image", images, None, "psi"), METRICS,
                                                                     reference=reference, extractor=extractor)
    real = prepare(load_source(HELD_OUT, seed=0), size, channels)
    n = min(args.samples, len(real.x))
    rows[f"held-out real ({HELD_OUT})"] = evaluate(Samples("image", real.x[:n], real.y[:n], HELD_OUT), METRICS,
                                                   reference=reference, extractor=extractor)
    G = model.nets[model.algorithm.sampling_network]
    mixing = mixing_figures(G, extractor, model.value_range, args.pairs, args.mix_cutoff)

    # the grids to look at
    grid = model.sample(49, seed=7, mix=6, mix_cutoff=args.mix_cutoff)
    save_grid(to_uint8(grid, model.value_range), out / "mixing.png", nrow=7, scale=2)
    rows_psi = [model.sample(10, seed=11, truncation=psi) for psi in TRUNCATION_ROWS]
    save_grid(to_uint8(torch.cat(rows_psi), model.value_range), out / "truncation.png", nrow=10, scale=2)
    noise = torch.cat([model.sample(10, seed=11, noise_seed=s) for s in range(3)])
    save_grid(to_uint8(noise, model.value_range), out / "noise.png", nrow=10, scale=2)

    result.update(rows=rows, mixing=mixing,
                  grids={"mixing": str(out / "mixing.png"), "truncation": str(out / "truncation.png"),
                         "noise": str(out / "noise.png"),
                         "last": str(sorted((lazy_dir / "samples").glob("step-*.png"))[-1])})
    (out / "bench.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"domain classifier of {source}: held-out accuracy {result['classifier_test_accuracy']}")
    print(f"\n{args.samples} samples each vs {len(reference.images)} real images of {source} at {size} px "
          "(domain features):\n")
    print(table(rows))
    print(f"\nstyle mixing, coarse layers < {args.mix_cutoff}: {json.dumps(mixing)}")
    print(f"\ngrids: {result['grids']}")


if __name__ == "__main__":
    main()
