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
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.data import to_uint8
from ganforge.metrics.evaluate import Samples, evaluate, load_reference, make_extractor
from ganforge.report import save_grid

REF = "mnist5k?split=train"
PSIS = (None, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3)
METRICS = ["fid", "pr", "classes"]


def train(recipe: str, out: Path, seconds: float) -> tuple[Path, dict[str, Any]]:
    t0 = time.time()
    run = ganforge.train(recipe, out=out, force=True, progress=False, time_limit_s=seconds,
                         overrides={"train.threads": 1}, command=f"bench/biggan_digits.py ({recipe}, {seconds:.0f} s)")
    wall = time.time() - t0
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if r.get("kind") == "train"][-1]
    logged = {k: round(v, 4) for k, v in last.items() if k.startswith(("pseudo", "class_acc", "rotation_acc", "sigma0"))}
    return run.run_dir, {"recipe": recipe, "steps": run.steps, "train_wall_s": round(wall, 1),
                         "steps_per_s": round(run.steps / wall, 3), "last_logged": logged}


def score(model: Any, n: int, psi: float | None, reference: Any, extractor: Any) -> dict[str, Any]:
    images, labels = model.sample_with_inputs(n, seed=123, labels=list(range(10)), per_row=n // 10, truncation=psi)
    samples = Samples("image", to_uint8(images, model.value_range), labels, f"psi={psi}")
    result = evaluate(samples, METRICS, reference=reference, extractor=extractor)
    probs, _ = extractor.clf.predict(samples.data)
    keys = ("fid", "precision", "recall", "modes", "label_accuracy")
    out = {k: round(result[k], 4) if isinstance(result.get(k), float) else result.get(k) for k in keys if k in result}
    return {**out, "mean_confidence": round(float(probs.max(1).values.mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0, help="training budget per run (default 600 s)")
    ap.add_argument("--n", type=int, default=1000, help="samples per evaluation (default 1000)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-biggan"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    extractor = make_extractor("domain", REF, channels=1)
    reference = load_reference(REF)
    print(f"domain classifier held-out accuracy {extractor.info['test_accuracy']:.4f}", flush=True)
    results: dict[str, Any] = {}
    run_dir, facts = train("biggan-digits", args.out / "biggan-digits", args.seconds)
    model = ganforge.load(run_dir)
    curve = {}
    for psi in PSIS:
        curve["none" if psi is None else str(psi)] = score(model, args.n, psi, reference, extractor)
        print("biggan-digits psi", psi, curve["none" if psi is None else str(psi)], flush=True)
    rows = [to_uint8(model.sample(10, seed=7, labels=list(range(10)), per_row=1, truncation=psi), model.value_range)
            for psi in PSIS]
    save_grid(torch.cat(rows), args.out / "truncation.png", nrow=10, scale=2)
    results["biggan-digits"] = {**facts, "run_dir": str(run_dir), "truncation": curve}
    run_dir, facts = train("s3gan-digits", args.out / "s3gan-digits", args.seconds)
    s3 = score(ganforge.load(run_dir), args.n, None, reference, extractor)
    print("s3gan-digits", s3, facts, flush=True)
    results["s3gan-digits"] = {**facts, "run_dir": str(run_dir), **s3}
    results["side_by_side"] = {"biggan-digits (100 % labels)": curve["none"], "s3gan-digits (10 % labels)": s3}
    (args.out / "bench.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
