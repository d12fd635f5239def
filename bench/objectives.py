"""Benchmark: the objective family on the 2-D mixtures and on the bundled MNIST digits, in one table.

Toy part: every objective's toy recipe is trained on ``toy:ring8`` and ``toy:grid25`` for ``--seeds`` seeds (its own
default step count unless ``--toy-steps``), and 2,500 samples are scored with ``ganforge.metrics.toy2d``: modes
covered (>= 20 high-quality samples; of 8 / 25) and the high-quality share (samples within 3 std of their nearest
mode; real data scores 0.989). MNIST part: each MNIST recipe is trained for ``--mnist-steps`` generator steps on
``mnist5k`` and 2,000 samples are scored with ganforge's digit classifier (``domain_classifier("mnist5k")``, a LeNet
trained on 4,000 bundled digits): the domain FID of its 128-d features against the 1,000 held-out real digits (the
real-vs-real floor of two held-out halves is printed below the table), the share of confident predictions (max
softmax >= 0.9) and the digit modes: classes holding >= 1 % of the confident predictions (of 10). Wall times are
reported per run. Not a test; run it by hand, e.g.

    .venv/bin/python bench/objectives.py                        # everything: ~60 toy runs x 3 seeds + 11 MNIST runs
    .venv/bin/python bench/objectives.py --quick                # a smoke run: few steps, 1 seed
    .venv/bin/python bench/objectives.py --toy-only --only wgan-gp-toy,hinge-sn-toy --seeds 5
    .venv/bin/python bench/objectives.py --mnist-only --mnist-seconds 300 --mnist-small --threads 1   # equal budget

Results also go to ``OUT/bench.json`` (one record per run plus the aggregated rows).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.config import parse_set, read_recipe, recipe_names
from ganforge.data import load_source
from ganforge.data.mnist5k import split_train_test
from ganforge.errors import DataError
from ganforge.metrics.domain import domain_classifier
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.toy2d import toy_mode_metrics

TOY_RECIPES = ["gan-toy", "wgan-toy", "wgan-gp-toy", "lsgan-toy", "glsgan-toy", "hinge-sn-toy", "rsgan-toy",
               "rasgan-toy", "ralsgan-toy", "rahinge-toy", "fgan-kl-toy", "fgan-reverse-kl-toy", "fgan-js-toy",
               "fgan-pearson-toy", "fgan-squared-hellinger-toy", "fgan-total-variation-toy", "ebgan-toy", "began-toy"]
MNIST_RECIPES = ["dcgan-mnist", "wgan-mnist", "wgan-gp-mnist", "lsgan-mnist", "glsgan-mnist", "rsgan-mnist",
                 "ragan-mnist", "hinge-ttur-mnist", "sngan-mnist", "ebgan-mnist", "began-mnist", "improved-dcgan-mnist"]
TOY_DATA = ("toy:ring8", "toy:grid25")
TOY_SAMPLES = 2500            # the mode-collapse papers' evaluation size (toy2d's min_count of 20 assumes it)
CONFIDENT = 0.9
MODE_SHARE = 0.01


def quiet(threads: int) -> dict[str, Any]:
    """Overrides that keep a bench run from writing more than it needs."""
    return {"train.threads": threads, "train.log_every": 100, "train.sample_every": 10 ** 9,
            "train.checkpoint_every": 10 ** 9, "train.grid_size": 16}


def train(recipe: str, out: Path, threads: int, extra: dict[str, Any], **kwargs: Any) -> tuple[Any, float]:
    t0 = time.time()
    run = ganforge.train(recipe, out=out, force=True, progress=False, overrides={**quiet(threads), **extra},
                         command=f"bench/objectives.py ({recipe})", **kwargs)
    return run, time.time() - t0


def toy_run(recipe: str, data: str, seed: int, steps: int | None, args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out) / "toy" / f"{recipe}-{data.split(':')[1]}-seed{seed}"
    run, wall = train(recipe, out, args.threads, args.extra, data=data, seed=seed, steps=steps)
    samples = ganforge.load(run.run_dir).sample(TOY_SAMPLES, seed=1000 + seed)
    try:
        metrics = toy_mode_metrics(samples, data)
    except DataError as e:        # a diverged generator (NaN samples) covers nothing
        metrics = {"modes_covered": 0, "num_modes": 8 if data.endswith("ring8") else 25, "high_quality": 0.0,
                   "reverse_kl": float("nan"), "mode_histogram": [], "error": str(e)}
    return {"part": "toy", "recipe": recipe, "data": data, "seed": seed, "steps": run.steps, "wall_s": round(wall, 1),
            **{k: metrics[k] for k in ("modes_covered", "num_modes", "high_quality", "reverse_kl")}}


class DigitScorer:
    """Domain FID and digit modes of generated digits, from ganforge's LeNet on the bundled MNIST digits."""

    def __init__(self) -> None:
        self.classifier = domain_classifier("mnist5k")
        _, held_out = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)
        _, self.real_features = self.classifier.predict(held_out.x)
        half = len(held_out) // 2
        perm = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(0))
        self.floor = fid_from_features(self.real_features[perm[:half]].double().numpy(),
                                       self.real_features[perm[half:]].double().numpy())

    def score(self, images: torch.Tensor, value_range: tuple[float, float] | None) -> dict[str, Any]:
        probs, features = self.classifier.predict(images, value_range)
        confidence, predicted = probs.max(1)
        confident = confidence >= CONFIDENT
        histogram = torch.bincount(predicted[confident], minlength=probs.shape[1])
        total = int(confident.sum())
        modes = int((histogram >= max(1.0, MODE_SHARE * total)).sum()) if total else 0
        fid = fid_from_features(features.double().numpy(), self.real_features.double().numpy())
        return {"domain_fid": round(fid, 2), "digit_modes": modes, "confident_share": round(total / len(images), 3),
                "class_histogram": histogram.tolist()}


# --mnist-small: the book's DCGAN layers at a quarter of their filters (dcgan-mnist-quick's widths), so a CPU budget
# buys ~4x the steps; other architectures (MLPs, the auto-encoders of EBGAN/BEGAN) are already small.
QUARTER_WIDTH = {("G", "dcgan-book"): [32, 16, 8], ("D", "dcgan-book"): [8, 16, 32, 64]}


def small_networks(recipe: str) -> dict[str, Any]:
    return {f"networks.{key}.filters": QUARTER_WIDTH[(key, net["arch"])]
            for key, net in read_recipe(recipe)["networks"].items() if (key, net["arch"]) in QUARTER_WIDTH}


def mnist_run(recipe: str, steps: int, scorer: DigitScorer, args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out) / "mnist" / recipe
    budget = {"time_limit_s": args.mnist_seconds} if args.mnist_seconds else {"steps": steps}
    extra = {**(small_networks(recipe) if args.mnist_small else {}), **args.extra}
    run, wall = train(recipe, out, args.threads, extra, data="mnist5k", seed=0, **budget)
    model = ganforge.load(run.run_dir)
    images = model.sample(args.mnist_samples, seed=123)
    return {"part": "mnist", "recipe": recipe, "data": "mnist5k", "seed": 0, "steps": run.steps,
            "wall_s": round(wall, 1), **scorer.score(images, model.value_range)}


def aggregate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        rows.setdefault((r["recipe"], r["data"]), []).append(r)
    out = []
    for (recipe, data), runs in rows.items():
        row: dict[str, Any] = {"recipe": recipe, "data": data, "steps": runs[0]["steps"], "seeds": len(runs),
                               "wall_s": round(sum(r["wall_s"] for r in runs) / len(runs), 1)}
        if runs[0]["part"] == "toy":
            row["modes"] = ",".join(str(r["modes_covered"]) for r in runs) + f" /{runs[0]['num_modes']}"
            row["all_modes"] = sum(r["modes_covered"] == r["num_modes"] for r in runs)
            row["high_quality"] = round(statistics.mean(r["high_quality"] for r in runs), 3)
        else:
            row.update({k: runs[0][k] for k in ("domain_fid", "digit_modes", "confident_share")})
        out.append(row)
    return out


def print_table(rows: list[dict[str, Any]], floor: float | None) -> None:
    print("\n| recipe | data | steps | seeds | modes covered (per seed) | runs with all modes | high-quality share "
          "| domain FID | digit modes /10 | confident share | wall s / run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["recipe"], r["data"], r["steps"], r["seeds"], r.get("modes", ""), r.get("all_modes", ""),
                 r.get("high_quality", ""), r.get("domain_fid", ""), r.get("digit_modes", ""),
                 r.get("confident_share", ""), r["wall_s"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if floor is not None:
        print(f"\ndomain FID floor (held-out real digits, half vs half): {floor:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="seeds per toy recipe and mixture (default 3)")
    ap.add_argument("--toy-steps", type=int, default=None, help="override every toy recipe's step count")
    ap.add_argument("--mnist-steps", type=int, default=2000, help="generator steps per MNIST recipe (default 2000)")
    ap.add_argument("--mnist-seconds", type=float, default=0.0,
                    help="train each MNIST recipe for this wall-clock budget instead of --mnist-steps (equal time)")
    ap.add_argument("--mnist-small", action="store_true",
                    help="quarter-width book DCGAN networks in the MNIST part (more steps per CPU second)")
    ap.add_argument("--mnist-samples", type=int, default=2000)
    ap.add_argument("--only", default="", help="comma-separated recipe names (toy and/or MNIST)")
    ap.add_argument("--toy-only", action="store_true", help="skip the MNIST part")
    ap.add_argument("--mnist-only", action="store_true", help="skip the toy part")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 300 toy steps, 20 MNIST steps")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads per run (0: torch's default)")
    ap.add_argument("--out", default="runs/bench-objectives")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.toy_steps, args.mnist_steps, args.mnist_samples = 1, args.toy_steps or 300, 20, 500
    args.extra = parse_set(args.set)
    known = set(recipe_names())
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in known]
    if unknown:
        sys.exit(f"unknown recipe(s) {', '.join(unknown)}; `ganforge list` shows the recipes")
    toy = [] if args.mnist_only else [r for r in (only or TOY_RECIPES) if r in TOY_RECIPES or r.endswith("-toy")]
    mnist = [] if args.toy_only else [r for r in (only or MNIST_RECIPES) if r not in toy]

    records: list[dict[str, Any]] = []
    t_start = time.time()
    for recipe in toy:
        for data in TOY_DATA:
            for seed in range(args.seeds):
                rec = toy_run(recipe, data, seed, args.toy_steps, args)
                records.append(rec)
                print(f"{recipe} {data} seed {seed}: {rec['modes_covered']}/{rec['num_modes']} modes, "
                      f"high quality {rec['high_quality']:.3f} ({rec['wall_s']} s)", flush=True)
    floor = None
    if mnist:
        scorer = DigitScorer()
        floor = scorer.floor
        for recipe in mnist:
            rec = mnist_run(recipe, args.mnist_steps, scorer, args)
            records.append(rec)
            print(f"{recipe}: domain FID {rec['domain_fid']}, {rec['digit_modes']} digit modes, confident "
                  f"{rec['confident_share']} ({rec['wall_s']} s)", flush=True)
    rows = aggregate(records)
    print_table(rows, floor)
    print(f"\ntotal wall time {time.time() - t_start:.0f} s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"args": {k: v for k, v in vars(args).items() if k != "extra"}, "domain_fid_floor": floor,
           "rows": rows, "runs": records}
    (out / "bench.json").write_text(json.dumps(doc, indent=1))
    print(f"written {out / 'bench.json'}")


if __name__ == "__main__":
    main()
