"""Shared pieces of ``bench/infogan.py`` and ``bench/stackedgan.py``: training a recipe for a step budget (with
resume, so a long budget can be spent in several sittings), the grids through the ``ganforge sample`` command,
and stroke measurements that say which visible property a code traversal changes.

Stroke measurements of a digit image x in [0, 1] (ink-weighted moments over the 28 x 28 pixels):
- ``ink``: mean intensity -- for one digit shape, more ink means thicker strokes;
- ``slant``: cov(column, height) / var(height) with height measured upwards -- the horizontal shift per unit of
  height, > 0 when the digit leans right (top to the right of the bottom);
- ``width`` / ``height``: ink-weighted standard deviation of the column / row (spread in pixels).
For a traversal grid (a row per digit, the code swept along the row) the bench reports, per property, the mean over
rows of the Pearson correlation between the code value and the property: |r| near 1 with a consistent sign means
the code controls that property.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.cli import main as cli_main
from ganforge.config import parse_set

PROPERTIES = ("ink", "slant", "width", "height")


def bench_arguments(doc: str, recipe: str, out: str) -> argparse.Namespace:
    """The command line shared by the disentanglement benches."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=recipe)
    ap.add_argument("--steps", type=int, default=1000, help="total training steps (the budget)")
    ap.add_argument("--seconds", type=float, default=0.0, help="also stop after this much training time (0: none)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    ap.add_argument("--eval-only", action="store_true", help="measure the run in --out without training")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--out", default=out)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    return args


def announced_classifier() -> Any:
    """ganforge's digit classifier (trained on first use, then cached), with its held-out accuracy printed."""
    from ganforge.metrics.domain import domain_classifier
    t0 = time.time()
    clf = domain_classifier("mnist5k")
    print(f"domain classifier: held-out accuracy {clf.test_accuracy:.4f} on {clf.test_size} bundled digits "
          f"({time.time() - t0:.0f} s incl. training if not cached)")
    return clf


def trained_run(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume) as the arguments say, or with ``--eval-only`` read what the earlier sittings cost."""
    out = Path(args.out)
    if args.eval_only:
        history = json.loads((out / "bench-training.json").read_text())
        return {"run_dir": out, "steps": history[-1]["until_step"],
                "train_wall_s": round(sum(h["wall_s"] for h in history), 1), "sittings": len(history)}
    return train_budget(args.recipe, out, args.steps, args.threads, args.precision, args.set, args.seconds,
                        args.resume)


def train_budget(recipe: str, out: Path, steps: int, threads: int, precision: str, sets: list[str],
                 seconds: float = 0.0, resume: bool = False) -> dict[str, Any]:
    """Train ``recipe`` to ``steps`` total steps (continuing ``out`` with ``resume``); returns what it cost."""
    overrides = {"train.checkpoint_every": 250, "train.threads": threads, **parse_set(sets)}
    t0 = time.time()
    if resume:
        run = ganforge.train(resume=out, steps=steps, time_limit_s=seconds or None,
                             overrides={"train.threads": threads}, progress=False)
    else:
        run = ganforge.train(recipe, out=out, force=True, steps=steps, precision=precision, overrides=overrides,
                             time_limit_s=seconds or None, progress=False,
                             command=f"bench: {recipe} steps={steps} {' '.join(sets)}")
    wall = time.time() - t0
    history_path = Path(run.run_dir) / "bench-training.json"
    history = json.loads(history_path.read_text()) if resume and history_path.is_file() else []
    history.append({"until_step": run.steps, "wall_s": round(wall, 1), "resumed": resume})
    history_path.write_text(json.dumps(history, indent=1))
    wall_total = round(sum(h["wall_s"] for h in history), 1)
    return {"run_dir": Path(run.run_dir), "steps": run.steps, "train_wall_s": wall_total, "sittings": len(history)}


def setup_facts(run_dir: Path) -> dict[str, Any]:
    """The ``kind: setup`` row of metrics.jsonl (StackedGAN's encoder pretraining facts)."""
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "setup":
            return rec
    return {}


def sample_grid(run_dir: Path, out: Path, *args: str) -> Path:
    """A grid written by the ``ganforge sample`` command itself (what a user runs)."""
    code = cli_main(["sample", str(run_dir), "--out", str(out), *args])
    if code != 0:
        raise SystemExit(f"ganforge sample {' '.join(args)} failed with status {code}")
    return out


def stroke_properties(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ink, slant, width and height (see the module docstring) of N x 1 x H x W images in [0, 1]."""
    x = images.float().clamp(0, 1)[:, 0]
    n, h, w = x.shape
    mass = x.sum((1, 2)).clamp_min(1e-6)
    up = (h - 1 - torch.arange(h, dtype=torch.float32)).view(1, h, 1).expand(n, h, w)
    col = torch.arange(w, dtype=torch.float32).view(1, 1, w).expand(n, h, w)
    mu_up = (x * up).sum((1, 2)) / mass
    mu_col = (x * col).sum((1, 2)) / mass
    d_up, d_col = up - mu_up.view(n, 1, 1), col - mu_col.view(n, 1, 1)
    var_up = (x * d_up ** 2).sum((1, 2)) / mass
    var_col = (x * d_col ** 2).sum((1, 2)) / mass
    cov = (x * d_up * d_col).sum((1, 2)) / mass
    return {"ink": x.mean((1, 2)), "slant": cov / var_up.clamp_min(1e-6), "width": var_col.sqrt(),
            "height": var_up.sqrt()}


def traversal_effects(images: torch.Tensor, values: torch.Tensor, rows: int) -> dict[str, dict[str, float]]:
    """For a grid of ``rows`` rows sweeping ``values`` along each row: per property, the mean over rows of the
    correlation with the code value, and the mean change of the property from the row's first to last image."""
    props = stroke_properties(images)
    v = values.float().view(rows, -1)
    out = {}
    for name, p in props.items():
        p = p.view(rows, -1)
        pc, vc = p - p.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
        r = (pc * vc).sum(1) / (pc.norm(dim=1) * vc.norm(dim=1)).clamp_min(1e-9)
        same_sign = int((torch.sign(r) == torch.sign(r.mean())).sum())
        out[name] = {"mean_r": round(float(r.mean()), 3), "rows_same_sign": same_sign,
                     "mean_change": round(float((p[:, -1] - p[:, 0]).mean()), 4)}
    return out


def within_class_spread(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """How much images of one class differ from each other, averaged over the classes present: the mean pairwise
    L2 distance between images (pixels in [0, 1], so 0 for copies of one image), and per stroke property its
    standard deviation within the class. Compare a generator's figures with those of real digits of each class:
    a ratio near 1 is real-like variety, near 0 one image per class."""
    props = stroke_properties(images)
    flat = images.float().clamp(0, 1).flatten(1)
    pairwise, spread = [], {name: [] for name in PROPERTIES}
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()
        if len(members) < 2:
            continue
        d = torch.cdist(flat[members], flat[members])
        m = len(members)
        pairwise.append(float(d.sum() / (m * (m - 1))))          # the diagonal is 0: mean over distinct pairs
        for name in PROPERTIES:
            spread[name].append(float(props[name][members].std()))
    return {"pairwise_l2": round(sum(pairwise) / len(pairwise), 3),
            "pairwise_l2_per_class": [round(v, 2) for v in pairwise],
            "stroke_std": {name: round(sum(v) / len(v), 4) for name, v in spread.items()}}


def print_table(result: dict[str, Any]) -> None:
    print("\n| figure | value |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {json.dumps(v) if isinstance(v, (dict, list)) else v} |")
