"""Benchmark: SNGAN-ResNet and SAGAN on the bundled digits at 32 px, one CPU thread, a wall-clock budget per run.

Parts (``--part``, default all, run one after the other in this one process):

* ``sngan``: trains ``sngan-resnet-digits`` (unconditional) and the DCGAN baseline of the same data and budget
  (``dcgan-mnist-quick`` with ``data.image_size=32``: the book's DCGAN at a quarter width, the project's 10-minute
  CPU baseline), each for at most ``--seconds`` of training (``train.time_limit_s``) or its recipe's steps, and
  compares them on ``--n`` samples: domain FID, precision / recall (k=3), modes and confident share, against the
  4,000 training digits (``mnist5k?split=train``, the domain classifier's 128-d features; it resizes to 28 px).
* ``sagan``: trains ``sagan-digits`` (class-conditional) the same way, then the truncation curve: ``--n`` samples
  with balanced labels (seed 123) without truncation and at psi 1.0 .. 0.3 (BigGAN's resampling,
  ``algorithms/latent_walk.py``), each scored for label accuracy (the domain classifier's reading against the
  requested label), mean top-class confidence, domain FID, precision and recall. Writes ``truncation.png``: a row per
  psi (the same seeds and labels in every row) and a latent walk.

Not a test; run it by hand (about 10 minutes a run plus evaluation):

    OMP_NUM_THREADS=1 .venv/bin/python bench/resnet_gans.py --out runs/bench-resnet-gans
    OMP_NUM_THREADS=1 .venv/bin/python bench/resnet_gans.py --part sagan --run-sagan runs/x   # evaluate a run only
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.data import to_uint8
from ganforge.metrics.evaluate import evaluate, load_target
from ganforge.report import save_grid

from conditional_digits_common import METRICS, brief, domain_scorer, train_for, truncation_curve, truncation_rows


def train(recipe: str, out: Path, seconds: float, overrides: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    return train_for(recipe, out, seconds, overrides, "bench/resnet_gans.py")


def part_sngan(args: argparse.Namespace, reference: Any, extractor: Any) -> dict[str, Any]:
    rows = {}
    for name, recipe, extra in (("sngan-resnet-digits", "sngan-resnet-digits", {}),
                                ("dcgan-mnist-quick @32px", "dcgan-mnist-quick", {"data.image_size": 32})):
        run_dir, facts = train(recipe, args.out / recipe, args.seconds, extra)
        result = evaluate(load_target(str(run_dir), args.n, seed=123), METRICS, reference=reference,
                          extractor=extractor)
        rows[name] = {**facts, **brief(result), "run_dir": str(run_dir)}
        print(name, rows[name], flush=True)
    return rows


def part_sagan(args: argparse.Namespace, reference: Any, extractor: Any) -> dict[str, Any]:
    if args.run_sagan:
        run_dir, facts = Path(args.run_sagan), {"recipe": "sagan-digits (given run)"}
    else:
        run_dir, facts = train("sagan-digits", args.out / "sagan-digits", args.seconds, {})
    model = ganforge.load(run_dir)
    curve = truncation_curve(model, args.n, reference, extractor, "sagan-digits")
    # the grid: a row per psi (the same seeds and labels 0-9 in each row), then a latent walk per label
    rows = truncation_rows(model)
    walk = to_uint8(model.sample(100, seed=7, labels=list(range(10)), per_row=10, interpolate=(1, 2)),
                    model.value_range)
    save_grid(torch.cat(rows + [walk]), args.out / "truncation.png", nrow=10, scale=2)
    return {"sagan-digits": {**facts, "run_dir": str(run_dir), "truncation": curve,
                             "grid": str(args.out / "truncation.png")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["all", "sngan", "sagan"], default="all")
    ap.add_argument("--seconds", type=float, default=600.0, help="training budget per run (default 600 s)")
    ap.add_argument("--n", type=int, default=1000, help="samples per evaluation (default 1000)")
    ap.add_argument("--run-sagan", help="evaluate this sagan-digits run instead of training one")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-resnet-gans"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    reference, extractor = domain_scorer()
    results: dict[str, Any] = {}
    if args.part in ("all", "sagan"):
        results.update(part_sagan(args, reference, extractor))
    if args.part in ("all", "sngan"):
        results.update(part_sngan(args, reference, extractor))
    (args.out / f"bench-{args.part}.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
