"""Benchmark: StyleGAN on coloured digits against the DCGAN baseline of the same data and CPU budget, lazy R1 against R1
in every step, and the style-mixing and truncation grids.

Trains ``--recipe`` (default ``stylegan-colour``: the bundled digits tinted with random hues, 32 px, lazy R1 every 16
steps) and measures its training wall time; trains the same recipe with R1 in every D step (``regularize.r1.every=1``,
StyleGAN v1's form) for the same number of steps; trains the baseline ``dcgan-mnist`` (the book's DCGAN) on the same
data at the same size for the lazy run's wall time (``train.time_limit_s``). Evaluates each with
``ganforge.metrics.evaluate`` on ganforge's domain classifier of the data (domain FID, KID, precision / recall, class
figures; ``--samples`` samples, EMA generator unless said otherwise) against the training data, with the held-out real
digits as the floor. Then, from the lazy run's EMA generator: the domain FID at truncation psi 1 / 0.7 / 0.5 (in W,
cutoff 8), and two grids to look at: ``mixing.png`` (``--mix 6``: coarse styles, layers 0-3 = 4 and 8 px, from the left
column, fine ones from the top row; top-left the average image) and ``truncation.png`` (a row per psi in 1, 0.85, 0.7,
0.5, 0.3, 0, the same 10 latents in every row). Not a test; run it by hand (one thread, about 10 minutes per run, about
35 in all with the evaluation):

    .venv/bin/python bench/stylegan_colour.py --threads 1 --out runs/bench-stylegan-colour
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.config import load_config, parse_set
from ganforge.data import load_source, prepare, to_uint8
from ganforge.inference import load
from ganforge.metrics.evaluate import Samples, evaluate, load_reference, load_target, make_extractor
from ganforge.report import save_grid

from baseline_common import markdown_table, timed_train

METRICS = ["fid", "kid", "pr", "classes"]
COLUMNS = [("fid", "FID"), ("kid", "KID"), ("precision", "prec"), ("recall", "recall"), ("modes", "modes"),
           ("confident_share", "conf"), ("train_s", "train s"), ("steps", "steps"), ("s_per_step", "s/step")]
HELD_OUT = "mnist5k?split=test&domain=colour"
TRUNCATION_ROWS = (1.0, 0.85, 0.7, 0.5, 0.3, 0.0)


def table(rows: dict[str, dict[str, Any]]) -> str:
    return markdown_table(rows, COLUMNS)


def train(recipe: str, out: Path, overrides: dict[str, Any]) -> tuple[Path, float, int]:
    return timed_train(recipe, out, overrides, "bench/stylegan_colour.py")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="stylegan-colour")
    ap.add_argument("--baseline", default="dcgan-mnist", help="the DCGAN recipe run on the same data and budget")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--samples", type=int, default=1000, help="generated samples per run to evaluate")
    ap.add_argument("--skip", action="append", default=[], choices=["r1-every-step", "baseline"],
                    help="leave a comparison run out")
    ap.add_argument("--out", default="runs/bench-stylegan-colour")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for the StyleGAN runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_config(args.recipe, parse_set(args.set))
    source, size, channels = cfg.data.source, cfg.data.image_size, cfg.data.channels
    out = Path(args.out)
    common = {"train.threads": args.threads, **parse_set(args.set)}
    runs: dict[str, tuple[Path, bool, dict[str, Any]]] = {}

    lazy_dir, seconds, steps = train(args.recipe, out / "lazy-r1", common)
    budget = seconds
    facts = {"train_s": round(seconds, 1), "steps": steps, "s_per_step": seconds / steps}
    print(f"{args.recipe} (the recipe's lazy R1): {steps} steps in {seconds:.0f} s")
    runs[f"{args.recipe}, lazy R1 (EMA G)"] = (lazy_dir, True, facts)
    runs[f"{args.recipe}, lazy R1 (G)"] = (lazy_dir, False, facts)
    if "r1-every-step" not in args.skip:
        every_dir, seconds, steps = train(args.recipe, out / "r1-every-step", {**common, "regularize.r1.every": 1})
        print(f"{args.recipe} (R1 every step): {steps} steps in {seconds:.0f} s")
        runs[f"{args.recipe}, R1 every step (EMA G)"] = (every_dir, True, {"train_s": round(seconds, 1), "steps": steps,
                                                                            "s_per_step": seconds / steps})
    if "baseline" not in args.skip:
        base_dir, seconds, steps = train(args.baseline, out / "dcgan", {
            "data.source": source, "data.image_size": size, "data.channels": channels, "train.threads": args.threads,
            "train.steps": 1_000_000, "train.time_limit_s": budget, "train.sample_every": 500,
            "train.checkpoint_every": 100_000, "train.grid_size": 64})
        print(f"{args.baseline}: {steps} steps in {seconds:.0f} s (budget {budget:.0f} s)")
        runs[f"{args.baseline} baseline (G)"] = (base_dir, False, {"train_s": round(seconds, 1), "steps": steps,
                                                                   "s_per_step": seconds / steps})

    extractor = make_extractor("domain", source, image_size=size, channels=channels)
    reference = load_reference(source, image_size=size, channels=channels)
    result: dict[str, Any] = {"recipe": args.recipe, "data": source, "image_size": size,
                              "classifier_test_accuracy": extractor.info.get("test_accuracy")}
    rows: dict[str, dict[str, Any]] = {}
    for name, (run_dir, ema, extra) in runs.items():
        rows[name] = {**evaluate(load_target(str(run_dir), args.samples, seed=123, use_ema=ema), METRICS,
                                 reference=reference, extractor=extractor), **extra}
    model = load(lazy_dir)
    for psi in (0.7, 0.5):       # truncation in W (the network's cutoff, 8: every layer at 32 px)
        images = to_uint8(model.sample(args.samples, seed=123, truncation=psi), model.value_range)
        rows[f"{args.recipe}, lazy R1 (EMA G), psi {psi}"] = evaluate(Samples("image", images, None, "psi"), METRICS,
                                                                     reference=reference, extractor=extractor)
    real = prepare(load_source(HELD_OUT, seed=0), size, channels)
    n = min(args.samples, len(real.x))
    rows[f"held-out real ({HELD_OUT})"] = evaluate(Samples("image", real.x[:n], real.y[:n], HELD_OUT), METRICS,
                                                   reference=reference, extractor=extractor)

    # the grids to look at
    mixing = model.sample(49, seed=7, mix=6)
    save_grid(to_uint8(mixing, model.value_range), out / "mixing.png", nrow=7, scale=2)
    rows_psi = [model.sample(10, seed=11, truncation=psi) for psi in TRUNCATION_ROWS]
    save_grid(to_uint8(torch.cat(rows_psi), model.value_range), out / "truncation.png", nrow=10, scale=2)
    noise = torch.cat([model.sample(10, seed=11, noise_seed=s) for s in range(3)])
    save_grid(to_uint8(noise, model.value_range), out / "noise.png", nrow=10, scale=2)

    result.update(rows=rows, grids={"mixing": str(out / "mixing.png"), "truncation": str(out / "truncation.png"),
                                    "noise": str(out / "noise.png"),
                                    "last": str(sorted((lazy_dir / "samples").glob("step-*.png"))[-1])})
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"domain classifier of {source}: held-out accuracy {result['classifier_test_accuracy']}")
    print(f"\n{args.samples} samples each vs {len(reference.images)} real images of {source} at {size} px "
          "(domain features):\n")
    print(table(rows))
    print(f"\ngrids: {result['grids']}")


if __name__ == "__main__":
    main()
