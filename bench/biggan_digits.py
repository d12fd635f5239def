"""Benchmark: BigGAN and S3GAN class-conditional on the bundled digits at 32 px, one CPU thread, a budget per run.

* ``biggan-digits`` (all 5,000 labels) trained for at most ``--seconds`` (``train.time_limit_s``) or its recipe's
  steps, then the truncation curve: ``--n`` samples with balanced labels (seed 123) without truncation and at psi
  1.0 .. 0.3 (resampling of the whole hierarchical z, ``algorithms/latent_walk.py``), each scored for label accuracy
  (the domain classifier's reading against the requested label), mean top-class confidence, domain FID, precision
  and recall (k=3) against the 4,000 training digits (``mnist5k?split=train``, the domain classifier's features).
  Writes ``truncation.png``: a row per psi, the same seeds and labels 0-9 in each.
* ``s3gan-digits`` (10 % of the labels) trained the same way and scored without truncation, side by side with
  biggan-digits: label accuracy, FID, precision, recall, and the last logged accuracy of its classifier c_CT on
  the unlabelled rows (``pseudo_label_accuracy``, a diagnostic).
Both sample from the EMA of G (the recipes' train.ema), as BigGAN does.

Not a test; run it by hand (about 2 x 10 minutes plus evaluation):

    OMP_NUM_THREADS=1 .venv/bin/python bench/biggan_digits.py --out runs/bench-biggan
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import ganforge
from ganforge.report import save_grid

from conditional_digits_common import domain_scorer, score_labelled, train_for, truncation_curve, truncation_rows

LOGGED = ("pseudo", "class_acc", "rotation_acc", "sigma0")   # S3GAN's heads and the singular values, last logged


def train(recipe: str, out: Path, seconds: float) -> tuple[Path, dict]:
    return train_for(recipe, out, seconds, {}, "bench/biggan_digits.py", LOGGED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0, help="training budget per run (default 600 s)")
    ap.add_argument("--n", type=int, default=1000, help="samples per evaluation (default 1000)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-biggan"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    reference, extractor = domain_scorer()
    results: dict = {}
    run_dir, facts = train("biggan-digits", args.out / "biggan-digits", args.seconds)
    model = ganforge.load(run_dir)
    curve = truncation_curve(model, args.n, reference, extractor, "biggan-digits")
    save_grid(torch.cat(truncation_rows(model)), args.out / "truncation.png", nrow=10, scale=2)
    results["biggan-digits"] = {**facts, "run_dir": str(run_dir), "truncation": curve}
    run_dir, facts = train("s3gan-digits", args.out / "s3gan-digits", args.seconds)
    s3 = score_labelled(ganforge.load(run_dir), args.n, None, reference, extractor)
    print("s3gan-digits", s3, facts, flush=True)
    results["s3gan-digits"] = {**facts, "run_dir": str(run_dir), **s3}
    results["side_by_side"] = {"biggan-digits (100 % labels)": curve["none"], "s3gan-digits (10 % labels)": s3}
    (args.out / "bench.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
