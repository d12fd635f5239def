"""Benchmark: train ``dcgan-mnist`` on the bundled MNIST digits for a fixed CPU budget, then measure learning.

Prints steps/s and what ganforge's own digit classifier (a LeNet trained on the bundled digits, held-out accuracy
printed) says about the generated samples: the share it classifies confidently (max softmax >= 0.9), the class
histogram of the confident ones, the classes present, and a domain FID (classifier features) against held-out
real digits, with the real-vs-real FID of two held-out halves as the floor. Not a test; run it by hand:

    .venv/bin/python bench/dcgan_mnist.py --seconds 600 --out runs/bench-dcgan-mnist
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import ganforge
from ganforge.data import load_source
from ganforge.data.mnist5k import split_train_test
from ganforge.metrics.domain import domain_classifier
from ganforge.metrics.fid import fid_from_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="dcgan-mnist")
    ap.add_argument("--seconds", type=float, default=600.0, help="training time budget (default 600 = 10 min)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--out", default="runs/bench-dcgan-mnist")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    t0 = time.time()
    clf = domain_classifier("mnist5k")
    print(f"domain classifier: held-out accuracy {clf.test_accuracy:.4f} on {clf.test_size} bundled digits "
          f"({time.time() - t0:.0f} s incl. training if not cached)")

    from ganforge.config import parse_set
    overrides = {"train.checkpoint_every": 500, "train.threads": args.threads, **parse_set(args.set)}
    t0 = time.time()
    run = ganforge.train(args.recipe, out=args.out, force=True, time_limit_s=args.seconds,
                         precision=args.precision, overrides=overrides,
                         command=f"bench/dcgan_mnist.py --seconds {args.seconds} --precision {args.precision}")
    train_s = time.time() - t0
    steps = run.steps

    model = ganforge.load(run.run_dir)
    fake = model.sample(args.samples, seed=123)
    probs, feats = clf.predict(fake, model.value_range)
    conf, pred = probs.max(1)
    confident = conf >= 0.9
    hist = torch.bincount(pred[confident], minlength=10)
    present = int((hist >= max(1, int(0.02 * args.samples))).sum())

    _, test = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)
    _, real_feats = clf.predict(test.x)
    half = len(test) // 2
    perm = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    rr = fid_from_features(real_feats[perm[:half]].double().numpy(), real_feats[perm[half:]].double().numpy())
    fid = fid_from_features(feats[:len(test)].double().numpy(), real_feats.double().numpy())

    grid = sorted((run.run_dir / "samples").glob("step-*.png"))[-1]
    result = {
        "recipe": args.recipe, "precision": args.precision, "budget_s": args.seconds, "train_wall_s": round(train_s, 1),
        "steps": steps, "steps_per_s": round(steps / train_s, 3),
        "classifier_test_accuracy": round(clf.test_accuracy, 4),
        "confident_share": round(float(confident.float().mean()), 4),
        "class_histogram_confident": hist.tolist(), "classes_present_2pct": present,
        "domain_fid_vs_heldout": round(fid, 3), "domain_fid_real_vs_real": round(rr, 3),
        "grid": str(grid), "run_dir": str(run.run_dir),
    }
    (Path(run.run_dir) / "bench.json").write_text(json.dumps(result, indent=1))
    print("\n| figure | value |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
