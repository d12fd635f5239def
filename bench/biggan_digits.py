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
* ``s2gan-digits`` (10 % of the labels, S2GAN: a classifier pretrained with rotation self-supervision labels every
  image, ``algorithms/label_pretraining.py``) and ``biggan-clusters-digits`` (no labels: k-means clusters of a
  rotation-pretrained network) trained the same way, with their pretraining's facts (from the run's setup row: the
  classifier's accuracy on the digits held out of pretraining and on all unlabelled ones; the clusters' purity and
  Hungarian-matched accuracy). The GAN's label accuracy for clusters is read after mapping each cluster to a class:
  by the matching of the training data's clusters to its labels (``data-matched``, fixed before the GAN) and by the
  best one-to-one matching of the generated samples' clusters to their predicted classes (``sample-matched``).
  Writes ``<recipe>-rows.png``: a row per label (cluster), ten seeds each.
All sample from the EMA of G (the recipes' train.ema), as BigGAN does. ``--runs`` picks the recipes (default all four),
``--steps`` sets their train.steps (a budget by steps under load), ``--seconds`` a wall-clock cap.

Not a test; run it by hand (about 4 x 10 minutes plus evaluation):

    OMP_NUM_THREADS=1 .venv/bin/python bench/biggan_digits.py --out runs/bench-biggan
    OMP_NUM_THREADS=1 .venv/bin/python bench/biggan_digits.py --runs s2gan-digits,biggan-clusters-digits --steps 900
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import ganforge
from ganforge.report import save_grid

from conditional_digits_common import domain_scorer, score_labelled, train_for, truncation_curve, truncation_rows

LOGGED = ("pseudo", "class_acc", "rotation_acc", "sigma0")   # S3GAN's heads and the singular values, last logged


RECIPES = ("biggan-digits", "s3gan-digits", "s2gan-digits", "biggan-clusters-digits")


def train(recipe: str, out: Path, seconds: float, steps: int | None = None) -> tuple[Path, dict]:
    return train_for(recipe, out, seconds, {} if steps is None else {"train.steps": steps}, "bench/biggan_digits.py",
                     LOGGED)


def setup_facts(run_dir: Path) -> dict:
    """The run's pretraining facts (its setup row's pretrain_* values)."""
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == "setup":
            return {k: v for k, v in row.items() if k.startswith("pretrain_") or k.startswith("labelled")}
    return {}


def cluster_label_accuracy(model, n: int, extractor, data_mapping: list[int]) -> dict:
    """Generated samples' label accuracy after mapping clusters to classes (module docstring)."""
    from ganforge.data import to_uint8
    from ganforge.metrics.code_purity import code_purity
    k = model.algorithm.num_classes
    images, clusters = model.sample_with_inputs(n, seed=123, labels=list(range(k)), per_row=n // k)
    probs, _ = extractor.clf.predict(to_uint8(images, model.value_range))
    predicted = probs.argmax(1)
    matched = code_purity(clusters, predicted, num_codes=k, num_classes=probs.shape[1])
    mapped = torch.tensor(data_mapping)[clusters.cpu()]
    return {"data_matched_label_accuracy": round(float((mapped == predicted).float().mean()), 4),
            "sample_matched_label_accuracy": round(matched.purity, 4),
            "sample_mapping": [matched.mapping.get(c, -1) for c in range(k)]}


def rows_grid(model, path: Path, order: list[int] | None = None) -> None:
    """A row per label (in ``order``, default 0..K-1), ten seeds each."""
    from ganforge.data import to_uint8
    labels = order or list(range(model.algorithm.num_classes))
    save_grid(to_uint8(model.sample(10 * len(labels), seed=7, labels=labels, per_row=10), model.value_range), path,
              nrow=10, scale=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0, help="training budget per run (default 600 s)")
    ap.add_argument("--steps", type=int, default=None, help="train.steps of every run (default: the recipes')")
    ap.add_argument("--runs", default=",".join(RECIPES), help=f"recipes to run, comma-separated (default {RECIPES})")
    ap.add_argument("--n", type=int, default=1000, help="samples per evaluation (default 1000)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-biggan"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    reference, extractor = domain_scorer()
    results: dict = {}
    for recipe in args.runs.split(","):
        cpu = time.process_time()
        run_dir, facts = train(recipe, args.out / recipe, args.seconds, args.steps)
        facts["train_cpu_s"] = round(time.process_time() - cpu, 1)
        model = ganforge.load(run_dir)
        if recipe == "biggan-digits":
            curve = truncation_curve(model, args.n, reference, extractor, "biggan-digits")
            save_grid(torch.cat(truncation_rows(model)), args.out / "truncation.png", nrow=10, scale=2)
            results[recipe] = {**facts, "run_dir": str(run_dir), "truncation": curve}
            scores = curve["none"]
        else:
            scores = score_labelled(model, args.n, None, reference, extractor)
            facts.update(setup_facts(run_dir))
            order = None
            if recipe == "biggan-clusters-digits":
                mapping = facts["pretrain_cluster_to_class"]
                scores.update(cluster_label_accuracy(model, args.n, extractor, mapping))
                order = sorted(range(len(mapping)), key=lambda c: mapping[c])    # rows in the matched classes' order
            rows_grid(model, args.out / f"{recipe}-rows.png", order)
            results[recipe] = {**facts, "run_dir": str(run_dir), **scores}
        print(recipe, json.dumps(results[recipe]), flush=True)
        results.setdefault("side_by_side", {})[recipe] = scores
        (args.out / "bench.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
