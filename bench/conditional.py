"""Benchmark: train the class-conditional MNIST recipes for a stated budget, then measure what the labels control.

For each recipe (``cgan-mnist``, ``cgan-projection-mnist``, ``acgan-mnist`` by default): train on the bundled digits
for ``--steps`` steps (wall time reported), draw 1000 digits with balanced requested labels (100 per class, fixed
seed), classify them with ganforge's own digit classifier (a LeNet trained on 4000 bundled digits; its held-out
accuracy is printed) and print

- label accuracy: the share whose classifier argmax equals the requested label, and its minimum over classes;
- classes present: classes receiving at least 2.5% of the predictions (a quarter of the uniform share, the
  ``ganforge eval`` mode convention);
- domain FID (classifier features) of the 1000 generated digits against the 1000 held-out real digits
  (``split_train_test(mnist5k, test_per_class=100, seed=0)``, the classifier's test split), with the floor: 1000
  real training digits against the same held-out ones;

and save the book's figure, a 10 x 10 grid with a row per digit (``ganforge sample RUN --labels 0-9``), and the
same with ``--share-noise`` (one z per column: "same style, other digit"). Not a test; run it by hand:

    .venv/bin/python bench/conditional.py --steps 1500 --threads 1 --out runs/bench-conditional

The CPU budget. The book's networks cost about 150 GFLOP per training step at batch 64 (the generator's 5x5
transposed convolutions at 28 px dominate): on a 2-core CPU without AVX-512, fp32, that is seconds per step, and
bf16 is emulated there (slower, not faster). So by default the recipes run with a quarter of the book's channel
widths (G 32-16-8, D 8-16-32-64; same layers, kernels, strides, losses, batch, RMSprop with Keras decay) and RMSprop
lr 1e-3 for both players instead of 2e-4 / 1e-4 (``CPU_BUDGET``; ``--book`` drops it). Measured with these tiny
networks on mnist5k, 500 balanced samples: with the book's learning rates label accuracy after 800 steps was 0.60
(ACGAN), 0.22 (projection) and 0.12 (CGAN); with lr 1e-3, 0.92 (ACGAN) and 0.90 (CGAN) at 800 steps.
``--seconds S`` stops each recipe after S seconds of training with a checkpoint; ``--resume`` continues it (the
reported wall time is the sum).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import ganforge
from ganforge.data import load_source, to_uint8
from ganforge.data.mnist5k import split_train_test
from ganforge.metrics.domain import domain_classifier
from ganforge.metrics.fid import fid_from_features
from ganforge.report import save_grid

RECIPES = ("cgan-mnist", "cgan-projection-mnist", "acgan-mnist")
MODE_SHARE = 0.025
# The CPU budget settings (see the module docstring); --book trains the recipes exactly as they are.
CPU_BUDGET = ("networks.G.filters=[32,16,8]", "networks.D.filters=[8,16,32,64]", "optim.D.lr=1e-3", "optim.G.lr=1e-3")


def label_figures(probs: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> dict[str, object]:
    pred = probs.argmax(1)
    correct = pred == labels
    per_class = [float(correct[labels == c].float().mean()) for c in range(num_classes)]
    hist = torch.bincount(pred, minlength=num_classes)
    return {"label_accuracy": round(float(correct.float().mean()), 4),
            "label_accuracy_min_class": round(min(per_class), 4),
            "label_accuracy_per_class": [round(a, 3) for a in per_class],
            "predicted_histogram": hist.tolist(),
            "classes_present": int((hist >= MODE_SHARE * len(labels)).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--steps", type=int, default=3000, help="training steps per recipe (the budget)")
    ap.add_argument("--seconds", type=float, default=0.0, help="optional wall-clock cap per recipe (0: none)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--samples", type=int, default=1000, help="generated digits to evaluate (balanced labels)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench-conditional")
    ap.add_argument("--book", action="store_true", help="the recipes' own widths and learning rates (no CPU_BUDGET)")
    ap.add_argument("--resume", action="store_true", help="continue runs already under --out up to --steps")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every recipe")
    args = ap.parse_args()
    sets = ([] if args.book else list(CPU_BUDGET)) + args.set
    if args.samples % 10:
        ap.error("--samples must be a multiple of 10 (balanced labels)")

    t0 = time.time()
    clf = domain_classifier("mnist5k")
    print(f"domain classifier: held-out accuracy {clf.test_accuracy:.4f} on {clf.test_size} bundled digits "
          f"({time.time() - t0:.0f} s incl. training if not cached)")
    train_split, test_split = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)
    _, real_feats = clf.predict(test_split.x)
    pick = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(0))[:len(test_split)]
    _, train_feats = clf.predict(train_split.x[pick])
    floor = fid_from_features(train_feats.double().numpy(), real_feats.double().numpy())

    from ganforge.config import parse_set
    out_root = Path(args.out)
    results = []
    for recipe in args.recipes.split(","):
        overrides = {"train.checkpoint_every": 250, "train.threads": args.threads,
                     "train.sample_every": max(250, args.steps // 4), **parse_set(sets)}
        run_dir = out_root / recipe
        clock = run_dir / "bench-train-seconds.json"     # training wall time summed over --resume'd chunks
        t0 = time.time()
        if args.resume and (run_dir / "checkpoints" / "latest").exists():
            before = json.loads(clock.read_text())["seconds"] if clock.exists() else 0.0
            run = ganforge.train(resume=run_dir, steps=args.steps, time_limit_s=args.seconds or None, progress=False,
                                 command=f"bench/conditional.py --recipes {recipe} --steps {args.steps} --resume")
        else:
            before = 0.0
            run = ganforge.train(recipe, out=run_dir, force=True, steps=args.steps, seed=args.seed,
                                 precision=args.precision, time_limit_s=args.seconds or None, overrides=overrides,
                                 progress=False,
                                 command=f"bench/conditional.py --recipes {recipe} --steps {args.steps} "
                                         f"--precision {args.precision} " + " ".join(f"--set {s}" for s in sets))
        train_s = before + time.time() - t0
        clock.write_text(json.dumps({"seconds": train_s, "steps": run.steps}))
        if run.steps < args.steps:
            print(f"{recipe}: stopped by --seconds at step {run.steps} of {args.steps} "
                  f"({train_s:.0f} s so far); run again with --resume to continue")
            continue

        model = ganforge.load(run.run_dir)
        per_class = args.samples // 10
        fake, labels = model.sample_with_inputs(args.samples, seed=123, labels=list(range(10)), per_row=per_class)
        probs, feats = clf.predict(fake, model.value_range)
        figures = label_figures(probs, labels)
        fid = fid_from_features(feats.double().numpy(), real_feats.double().numpy())

        grids = {}
        for name, controls in (("labels-0-9", {}), ("labels-0-9-share-noise", {"share_noise": True})):
            images = model.sample(100, seed=7, labels=list(range(10)), per_row=10, **controls)
            path = out_root / f"{recipe}-{name}.png"
            save_grid(to_uint8(images, model.value_range), path, nrow=10, scale=2)
            grids[name] = str(path)
        result = {"recipe": recipe, "precision": args.precision, "steps": run.steps, "train_wall_s": round(train_s, 1),
                  "steps_per_s": round(run.steps / train_s, 3), **figures,
                  "domain_fid_vs_heldout": round(fid, 3), "domain_fid_real_train_vs_heldout": round(floor, 3),
                  "classifier_test_accuracy": round(clf.test_accuracy, 4), "grids": grids,
                  "run_dir": str(run.run_dir), "overrides": sets}
        (Path(run.run_dir) / "bench.json").write_text(json.dumps(result, indent=1))
        results.append(result)
        print(json.dumps(result))

    print("\n| recipe | steps | wall s | label acc | min class acc | classes present | domain FID (floor) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['recipe']} | {r['steps']} | {r['train_wall_s']} | {r['label_accuracy']:.3f} | "
              f"{r['label_accuracy_min_class']:.3f} | {r['classes_present']} | "
              f"{r['domain_fid_vs_heldout']:.2f} ({r['domain_fid_real_train_vs_heldout']:.2f}) |")


if __name__ == "__main__":
    main()
