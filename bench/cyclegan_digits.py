"""Benchmark: CycleGAN between plain digits (A) and a derived digit domain (B, default edges), trained unpaired.

Trains ``cyclegan-digits`` (A = ``mnist5k?split=train``, B = the same 4,000 training digits in domain ``--domain``,
drawn in an independent order, so no pair is ever seen), then measures on the 1,000 held-out digits
(``mnist5k?split=test``), whose true counterpart in domain B is known (``?domain=D&paired=1``) but was never used:

* content preservation, honestly in each direction: G_AB(a) is read by a domain classifier trained on *real* domain-B
  digits (``mnist5k?domain=D``, its 4,000 training digits; a LeNet, cached), G_BA(b) by the one trained on plain
  digits; each against the label of the digit it was translated from, beside that classifier's accuracy on the
  true counterparts (the ceiling). The cycle A -> B -> A is also read by the plain classifier, but is no evidence of
  translation: CycleGAN can hide the input in an output that looks nothing like it (spec 26.3, "a master of
  steganography"), so it is printed for information only;
* L1 to the true counterpart (mean absolute difference, 0..1 of the data range) in both directions, against the
  baselines "copy the input", "blank" (every pixel the background value) and the untrained generator (the run's
  initial weights, rebuilt from its seed);
* a grid ``grid.png``: input a | G_AB(a) | G_BA(G_AB(a)) | true b, and ``grid-BtoA.png``: b | G_BA(b) | true a.

Not a test; run it by hand, e.g. (one thread, about 10 minutes; ``--run DIR`` evaluates a finished run instead):

    .venv/bin/python bench/cyclegan_digits.py --threads 1 --out runs/bench-cyclegan
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.config import parse_set
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.metrics.content import content_classifier, content_preservation
from ganforge.metrics.paired import l1
from ganforge.report import save_panels


@torch.no_grad()
def run_net(net: nn.Module, images: torch.Tensor, value_range: tuple[float, float],
            batch_size: int = 250) -> torch.Tensor:
    """uint8 images through ``net`` in inference mode -> uint8 outputs."""
    with eval_mode(net):
        outs = [net(to_model_range(images[i:i + batch_size], value_range)) for i in range(0, len(images), batch_size)]
    return to_uint8(torch.cat(outs).float(), value_range)


def accuracy(classifier: Any, images: torch.Tensor, labels: torch.Tensor) -> float:
    return round(content_preservation(classifier, images, labels)["content_accuracy"], 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="cyclegan-digits")
    ap.add_argument("--domain", default="edges", help="digit domain B: edges, negative, thick, thin (1 channel)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--rows", type=int, default=20, help="digits in the grids (spread over the classes)")
    ap.add_argument("--run", default=None, help="evaluate this finished run instead of training one")
    ap.add_argument("--out", default="runs/bench-cyclegan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(args.threads)
    d = args.domain

    overrides = {"train.threads": args.threads, "data.streams.b.source": f"mnist5k?split=train&domain={d}",
                 "data.held_out": f"mnist5k?split=test&domain={d}&paired=1", **parse_set(args.set)}
    if args.steps:
        overrides["train.steps"] = args.steps
    t0 = time.time()
    if args.run is None:
        run_dir = ganforge.train(args.recipe, out=out / "run", force=True, progress=False, overrides=overrides,
                                 command=f"bench/cyclegan_digits.py --domain {d} " +
                                 " ".join(f"--set {s}" for s in args.set)).run_dir
    else:
        run_dir = Path(args.run)
    wall = time.time() - t0
    model = ganforge.load(run_dir)
    vr = model.value_range
    G_AB, G_BA = model.nets["G_AB"], model.nets["G_BA"]
    initial = build_algorithm(model.config, model.info).nets         # the weights training started from (its seed)

    test = load_source(f"mnist5k?split=test&domain={d}&paired=1")
    if test.fields["target"].shape[1] != 1:
        raise SystemExit(f"--domain {d}: this benchmark compares 1-channel domains with the plain digits")
    a, b, y = test.x, test.fields["target"], test.y
    fake_b, fake_a = run_net(G_AB, a, vr), run_net(G_BA, b, vr)
    rec_a = run_net(G_BA, fake_b, vr)
    init_b, init_a = run_net(initial["G_AB"], a, vr), run_net(initial["G_BA"], b, vr)
    blank_b = torch.full_like(b, int(b.flatten().mode().values))
    blank_a = torch.full_like(a, int(a.flatten().mode().values))

    plain_clf, domain_clf = content_classifier("mnist5k"), content_classifier(f"mnist5k?domain={d}")

    def l1_of(x: torch.Tensor, target: torch.Tensor) -> float:
        return round(float(l1(x, target).mean()), 4)

    rows = [
        ("content A->B: domain-B classifier on G_AB(a)", accuracy(domain_clf, fake_b, y)),
        ("  ceiling: domain-B classifier on the true b", accuracy(domain_clf, b, y)),
        ("  untrained G_AB", accuracy(domain_clf, init_b, y)),
        ("content B->A: plain classifier on G_BA(b)", accuracy(plain_clf, fake_a, y)),
        ("  ceiling: plain classifier on the true a", accuracy(plain_clf, a, y)),
        ("  untrained G_BA", accuracy(plain_clf, init_a, y)),
        ("cycle A->B->A: plain classifier (no evidence of translation)", accuracy(plain_clf, rec_a, y)),
        ("L1 A->B: G_AB(a) vs true b", l1_of(fake_b, b)),
        ("  copy the input a", l1_of(a, b)),
        ("  blank (background)", l1_of(blank_b, b)),
        ("  untrained G_AB", l1_of(init_b, b)),
        ("L1 B->A: G_BA(b) vs true a", l1_of(fake_a, a)),
        ("  copy the input b", l1_of(b, a)),
        ("  blank (background)", l1_of(blank_a, a)),
        ("  untrained G_BA", l1_of(init_a, a)),
        ("L1 cycle: G_BA(G_AB(a)) vs a", l1_of(rec_a, a)),
    ]
    pick = torch.linspace(0, len(y) - 1, args.rows).round().long()     # the held-out digits are sorted by class
    out.mkdir(parents=True, exist_ok=True)
    grid = save_panels({"input a": a[pick], "G_AB(a)": fake_b[pick], "G_BA(G_AB(a))": rec_a[pick], "true b": b[pick]},
                       out / "grid.png", scale=3)
    grid_ba = save_panels({"input b": b[pick], "G_BA(b)": fake_a[pick], "true a": a[pick]}, out / "grid-BtoA.png",
                          scale=3)

    steps = model.step
    result = {"recipe": model.config.name, "domain": d, "steps": steps, "batch_size": model.config.train.batch_size,
              "threads": args.threads, "train_wall_s": round(wall, 1) if args.run is None else None,
              "heldout": len(y), "figures": dict(rows), "grid": str(grid), "grid_BtoA": str(grid_ba),
              "run_dir": str(run_dir), "overrides": args.set}
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    trained = f"{steps} steps in {wall:.0f} s at {args.threads} thread(s)" if args.run is None else f"{steps} steps"
    print(f"\n{model.config.name}, A = plain digits, B = {d}; {trained}; {len(y)} held-out digits")
    print("\n| figure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\ngrids: {grid}, {grid_ba}")


if __name__ == "__main__":
    main()
