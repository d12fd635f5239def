"""Benchmark: Triple-GAN's classifier with 100 labels vs the same classifier trained on the 100 labels alone.

Trains ``triplegan-mnist`` on the 4,000 training digits of the bundled MNIST (``mnist5k?split=train``; 100 of them
labelled, class-balanced, chosen from the run seed), then trains a baseline: the *same* classifier network, from
the *same* initial weights (the builder is re-run with the run's config and seed), with the same optimizer
settings, the same labelled subset, the same labelled batch size and the same number of updates as Triple-GAN's C
got, on the cross-entropy of the labelled batch alone (R_L, no unlabelled or generated data). When the run keeps
an EMA of C (``train.ema.enabled``), the baseline keeps one with the same decay. Both are evaluated on the 1,000
held-out bundled digits (``mnist5k?split=test``, never trained on). Also measured: the label accuracy of G's
samples, by ganforge's own digit classifier (a LeNet trained on the same 4,000 training digits), their variety
within a class (mean pairwise pixel distance of G's samples of one label over that of the held-out real digits of
that class: ~0 when G ignores z), and a grid of G with a row per class (``--labels 0-9``). Not a test; run it by hand, e.g.:

    .venv/bin/python bench/triplegan.py --steps 3000 --threads 1 --out runs/bench-triplegan
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.config import parse_set
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.metrics.domain import domain_classifier
from ganforge.report import save_grid
from ganforge.train.ema import EMA
from ganforge.train.trainer import lr_factor, make_optimizer

from disentangle_common import within_class_spread


@torch.no_grad()
def accuracy(C: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    with eval_mode(C):
        pred = torch.cat([C(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    return float((pred == y).float().mean())


def train_baseline(cfg: Any, info: Any, x_lab: torch.Tensor, y_lab: torch.Tensor, updates: int, batch: int,
                   test: tuple[torch.Tensor, torch.Tensor], eval_every: int) -> dict[str, Any]:
    """C alone on the labelled subset: same initial weights, optimizer, batch size, number of updates."""
    torch.manual_seed(cfg.train.seed)
    C = build_algorithm(cfg, info).nets["C"]          # the very weights Triple-GAN's C started from
    C.train()
    ocfg = cfg.optim["C"]
    opt = make_optimizer(ocfg, list(C.parameters()))
    ema = EMA({"C": C}, cfg.train.ema.decay, cfg.train.ema.start) if cfg.train.ema.enabled else None
    torch.manual_seed(cfg.train.seed + 7)
    curve, t0 = [], time.time()
    for step in range(updates):
        for pg in opt.param_groups:
            pg["lr"] = ocfg.lr * lr_factor(ocfg, step, step, updates)
        pick = torch.randint(len(y_lab), (batch,))
        loss = F.cross_entropy(C(x_lab[pick]), y_lab[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update({"C": C}, step + 1)
        if eval_every and (step + 1) % eval_every == 0:
            curve.append((step + 1, round(accuracy(C, *test), 4)))
    wall = time.time() - t0
    out = {"accuracy": accuracy(C, *test), "wall_s": round(wall, 1), "updates": updates, "curve": curve}
    if ema is not None:
        out["accuracy_ema"] = accuracy(ema.shadow["C"], *test)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="triplegan-mnist")
    ap.add_argument("--steps", type=int, default=None, help="Triple-GAN steps (default: the recipe's)")
    ap.add_argument("--seconds", type=float, default=0.0, help="also stop Triple-GAN after this much training time")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--eval-every", type=int, default=0, help="print held-out accuracy curves every K steps")
    ap.add_argument("--samples", type=int, default=1000, help="G samples for the label accuracy (balanced)")
    ap.add_argument("--skip-baseline", action="store_true", help="only Triple-GAN (for quick experiments)")
    ap.add_argument("--out", default="runs/bench-triplegan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(args.threads)

    clf = domain_classifier("mnist5k")
    test_ds = load_source("mnist5k?split=test")

    overrides = {"train.threads": args.threads, **parse_set(args.set)}
    if args.steps:
        overrides["train.steps"] = args.steps
    curve: list[tuple[int, float]] = []
    test_state: dict[str, Any] = {}

    def on_step(trainer: Any) -> None:
        if not args.eval_every or trainer.step % args.eval_every:
            return
        if "x" not in test_state:
            test_state["x"] = to_model_range(test_ds.x, trainer.value_range).to(trainer.device)
            test_state["y"] = test_ds.y.to(trainer.device)
        acc = accuracy(trainer.algorithm.nets["C"], test_state["x"], test_state["y"])
        curve.append((trainer.step, round(acc, 4)))
        print(f"  step {trainer.step}: Triple-GAN C held-out accuracy {acc:.4f}", flush=True)

    t0 = time.time()
    run = ganforge.train(args.recipe, out=out / "run", force=True, progress=False, overrides=overrides,
                         time_limit_s=args.seconds or None, on_step=on_step,
                         command="bench/triplegan.py " + " ".join(f"--set {s}" for s in args.set))
    train_wall = time.time() - t0
    cfg = run.config

    model = ganforge.load(run.run_dir)                       # EMA weights of G and C when the run kept them
    raw = ganforge.load(run.run_dir, use_ema=False)
    algo = model.algorithm
    vr = model.value_range
    x_test, y_test = to_model_range(test_ds.x, vr), test_ds.y
    index, x_lab_u8, y_lab = algo.labelled_data()
    x_lab = to_model_range(x_lab_u8, vr)
    distinct = len(set(index.tolist()))  # indices into the training split, which is disjoint from the test split
    triple_acc = accuracy(raw.nets["C"], x_test, y_test)
    triple_ema = accuracy(model.nets["C"], x_test, y_test) if cfg.train.ema.enabled else None

    batch = cfg.algorithm.params.get("labelled_batch") or cfg.train.batch_size
    base = ({"accuracy": float("nan"), "wall_s": 0.0, "updates": 0, "curve": []} if args.skip_baseline else
            train_baseline(cfg, model.info, x_lab, y_lab, run.steps, batch, (x_test, y_test), args.eval_every))

    # G: label accuracy of balanced samples by the domain classifier, and a row-per-class grid.
    per = max(1, args.samples // 10)
    samples, labels = model.sample_with_inputs(per * 10, seed=123, labels=list(range(10)), per_row=per)
    probs, _ = clf.predict(samples, vr)
    g_label_acc = float((probs.argmax(1) == labels).float().mean())
    # within-class variety of G against held-out real digits: a G that ignores z (one image per class) gives ~0
    x01 = (samples - vr[0]) / (vr[1] - vr[0])
    g_spread = within_class_spread(x01, labels, 10)
    real_spread = within_class_spread(test_ds.x.float() / 255, test_ds.y, 10)
    grid_images, _ = model.sample_with_inputs(100, seed=0, labels=list(range(10)))
    grid = save_grid(to_uint8(grid_images, vr), out / "grid-labels-0-9.png", nrow=10, scale=2)

    result = {
        "recipe": args.recipe, "steps": run.steps, "batch_size": cfg.train.batch_size, "labelled": len(y_lab),
        "labelled_distinct": distinct, "labelled_batch": batch, "threads": args.threads,
        "triplegan_train_wall_s": round(train_wall, 1),
        "triplegan_C_heldout_accuracy": round(triple_acc, 4),
        "triplegan_C_ema_heldout_accuracy": None if triple_ema is None else round(triple_ema, 4),
        "baseline_C_heldout_accuracy": round(base["accuracy"], 4),
        "baseline_C_ema_heldout_accuracy": round(base["accuracy_ema"], 4) if "accuracy_ema" in base else None,
        "baseline_updates": base["updates"], "baseline_wall_s": base["wall_s"],
        "G_label_accuracy_by_domain_classifier": round(g_label_acc, 4),
        "G_within_class_pairwise_l2": g_spread["pairwise_l2"], "real_within_class_pairwise_l2": real_spread["pairwise_l2"],
        "G_within_class_spread_ratio_to_real": round(g_spread["pairwise_l2"] / real_spread["pairwise_l2"], 3),
        "domain_classifier_heldout_accuracy": round(clf.test_accuracy, 4),
        "heldout_size": len(y_test), "triplegan_curve": curve, "baseline_curve": base["curve"],
        "grid": str(grid), "run_dir": str(run.run_dir),
        "overrides": args.set,
    }
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    print("\n| figure | value |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
