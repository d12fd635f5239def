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
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.data import to_uint8
from ganforge.metrics.evaluate import Samples, evaluate, load_reference, load_target, make_extractor
from ganforge.report import save_grid

REF = "mnist5k?split=train"
PSIS = (None, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3)
METRICS = ["fid", "pr", "classes"]


def train(recipe: str, out: Path, seconds: float, overrides: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    t0 = time.time()
    run = ganforge.train(recipe, out=out, force=True, progress=False, time_limit_s=seconds,
                         overrides={"train.threads": 1, **overrides},
                         command=f"bench/resnet_gans.py ({recipe}, {seconds:.0f} s)")
    wall = time.time() - t0
    return run.run_dir, {"recipe": recipe, "steps": run.steps, "train_wall_s": round(wall, 1),
                         "steps_per_s": round(run.steps / wall, 3)}


def brief(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("fid", "precision", "recall", "modes", "confident_share", "label_accuracy")
    return {k: round(r[k], 4) if isinstance(r.get(k), float) else r.get(k) for k in keys if k in r}


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


def labelled_samples(model: Any, n: int, psi: float | None) -> Samples:
    images, labels = model.sample_with_inputs(n, seed=123, labels=list(range(10)), per_row=n // 10, truncation=psi)
    return Samples("image", to_uint8(images, model.value_range), labels, f"psi={psi}")


def part_sagan(args: argparse.Namespace, reference: Any, extractor: Any) -> dict[str, Any]:
    if args.run_sagan:
        run_dir, facts = Path(args.run_sagan), {"recipe": "sagan-digits (given run)"}
    else:
        run_dir, facts = train("sagan-digits", args.out / "sagan-digits", args.seconds, {})
    model = ganforge.load(run_dir)
    curve = {}
    for psi in PSIS:
        samples = labelled_samples(model, args.n, psi)
        result = evaluate(samples, METRICS, reference=reference, extractor=extractor)
        probs, _ = extractor.clf.predict(samples.data)
        curve["none" if psi is None else str(psi)] = {**brief(result),
                                                     "mean_confidence": round(float(probs.max(1).values.mean()), 4)}
        print("psi", psi, curve["none" if psi is None else str(psi)], flush=True)
    # the grid: a row per psi (the same seeds and labels 0-9 in each row), then a latent walk per label
    rows = [to_uint8(model.sample(10, seed=7, labels=list(range(10)), per_row=1, truncation=psi), model.value_range)
            for psi in PSIS]
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
    extractor = make_extractor("domain", REF, channels=1)
    reference = load_reference(REF)
    print(f"domain classifier held-out accuracy {extractor.info['test_accuracy']:.4f}", flush=True)
    results: dict[str, Any] = {}
    if args.part in ("all", "sagan"):
        results.update(part_sagan(args, reference, extractor))
    if args.part in ("all", "sngan"):
        results.update(part_sngan(args, reference, extractor))
    (args.out / f"bench-{args.part}.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
