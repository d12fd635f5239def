"""Benchmark: CoGAN between plain digits (A) and a derived digit domain (B, default edges), trained unpaired.

Trains ``cogan-digits`` (A = ``mnist5k?split=train``, B = the same 4,000 training digits in domain ``--domain``, drawn
in an independent order, so no pair is ever seen), then draws ``--n`` pairs (x_A, x_B) = (g_A(z), g_B(z)) from one
noise each and asks whether the two images of a pair show the same digit, which only the weight sharing can make
them do (Liu & Tuzel 2016, section 5: "the same digit in the two domains"):

* class agreement: the plain-digit classifier reads x_A, the classifier trained on real domain-B digits
  (``mnist5k?domain=D``, a LeNet, cached) reads x_B; the share of pairs read as the same class, beside the agreement
  two independent draws with these class frequencies would have (sum_k p_A(k) p_B(k): about 0.1 for varied samples,
  1.0 if both collapsed onto one class), and the agreement of the two classifiers on true held-out pairs (a, D(a)),
  the ceiling;
* how well each side is read: mean top-class probability, and the share read with probability >= 0.9 ("read as a
  digit"); the largest class's share of the x_A (a collapse shows here);
* pixel correspondence, the paper's Figure 4 measure: domain B is a fixed function of A (``derive``: edges,
  negative, ...), so D(x_A) should be x_B. The pixel agreement ratio (both binarised at 128) and the L1 (0..1) of
  D(x_A) to x_B, against the same figures with the pairs shuffled (what no correspondence gives);
* the untrained networks (the run's initial weights, rebuilt from its seed) for the same figures;
* a grid ``grid.png``: x_A | x_B | D(x_A), a row per z.

Run it twice, coupled (the recipe: G shares all but its last layer, D all but its first) and uncoupled
(``--uncoupled``: ``shared_layers: 0`` in both networks, two independent GANs, the paper's baseline); the
difference between the two is the evidence. Not a test; run it by hand (one thread, about 10 minutes each;
``--run DIR`` evaluates a finished run instead):

    .venv/bin/python bench/cogan_digits.py --threads 1 --out runs/bench-cogan
    .venv/bin/python bench/cogan_digits.py --threads 1 --uncoupled --out runs/bench-cogan-uncoupled
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
from ganforge.data import load_source, to_uint8
from ganforge.data.mnist5k import derive
from ganforge.metrics.content import content_classifier
from ganforge.report import save_panels

CONFIDENT = 0.9     # a classifier "reads a digit" when its top class has at least this probability


@torch.no_grad()
def pairs(G: nn.Module, z: torch.Tensor, value_range: tuple[float, float],
          batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (x_A, x_B) of each z, G in inference mode."""
    outs_a, outs_b = [], []
    with eval_mode(G):
        for i in range(0, len(z), batch_size):
            a, b = G(z[i:i + batch_size])
            outs_a.append(to_uint8(a.float(), value_range))
            outs_b.append(to_uint8(b.float(), value_range))
    return torch.cat(outs_a), torch.cat(outs_b)


def read(classifier: Any, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, its probability) of each uint8 image."""
    probs, _ = classifier.predict(images)
    conf, pred = probs.max(1)
    return pred, conf


def pixel_agreement(x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of pixels on the same side of 128 in both (uint8) images, averaged over the pairs."""
    return round(float(((x >= 128) == (y >= 128)).float().mean()), 4)


def l1(x: torch.Tensor, y: torch.Tensor) -> float:
    return round(float((x.float() - y.float()).abs().mean() / 255), 4)


def figures(x_a: torch.Tensor, x_b: torch.Tensor, plain: Any, other: Any, domain: str,
            shuffle: torch.Tensor) -> dict[str, float]:
    pred_a, conf_a = read(plain, x_a)
    pred_b, conf_b = read(other, x_b)
    p_a = torch.bincount(pred_a, minlength=10).float() / len(pred_a)
    p_b = torch.bincount(pred_b, minlength=10).float() / len(pred_b)
    both = (conf_a >= CONFIDENT) & (conf_b >= CONFIDENT)
    mapped = derive(x_a, domain)
    return {
        "class agreement": round(float((pred_a == pred_b).float().mean()), 4),
        "  chance from the class frequencies": round(float((p_a * p_b).sum()), 4),
        "  agreement among pairs read confidently on both sides": (
            round(float((pred_a == pred_b)[both].float().mean()), 4) if bool(both.any()) else float("nan")),
        "A: mean top-class probability (plain classifier)": round(float(conf_a.mean()), 4),
        f"A: share read as a digit (p >= {CONFIDENT})": round(float((conf_a >= CONFIDENT).float().mean()), 4),
        "A: largest class share": round(float(p_a.max()), 4),
        f"B: mean top-class probability ({domain} classifier)": round(float(conf_b.mean()), 4),
        f"B: share read as a digit (p >= {CONFIDENT})": round(float((conf_b >= CONFIDENT).float().mean()), 4),
        "B: largest class share": round(float(p_b.max()), 4),
        f"pixel agreement of {domain}(x_A) and x_B": pixel_agreement(mapped, x_b),
        "  pixel agreement, pairs shuffled": pixel_agreement(mapped, x_b[shuffle]),
        f"L1 of {domain}(x_A) to x_B": l1(mapped, x_b),
        "  L1, pairs shuffled": l1(mapped, x_b[shuffle]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="cogan-digits")
    ap.add_argument("--domain", default="edges", help="digit domain B: edges, negative, thick, thin (1 channel)")
    ap.add_argument("--uncoupled", action="store_true",
                    help="no weight sharing (networks.G/D.shared_layers=0): two independent GANs, the baseline")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--n", type=int, default=2000, help="pairs drawn for the figures")
    ap.add_argument("--rows", type=int, default=24, help="pairs in the grid")
    ap.add_argument("--run", default=None, help="evaluate this finished run instead of training one")
    ap.add_argument("--out", default="runs/bench-cogan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(args.threads)
    d = args.domain

    overrides: dict[str, Any] = {"train.threads": args.threads,
                                 "data.streams.b.source": f"mnist5k?split=train&domain={d}"}
    if args.uncoupled:
        overrides.update({"networks.G.shared_layers": 0, "networks.D.shared_layers": 0})
    overrides.update(parse_set(args.set))
    if args.steps:
        overrides["train.steps"] = args.steps
    t0 = time.time()
    if args.run is None:
        flags = " ".join([f"--domain {d}"] + (["--uncoupled"] if args.uncoupled else []) +
                         [f"--set {s}" for s in args.set])
        run_dir = ganforge.train(args.recipe, out=out / "run", force=True, progress=False, overrides=overrides,
                                 command=f"bench/cogan_digits.py {flags}").run_dir
    else:
        run_dir = Path(args.run)
    wall = time.time() - t0
    model = ganforge.load(run_dir)
    vr = model.value_range
    G = model.nets["G"]
    initial = build_algorithm(model.config, model.info).nets["G"]        # the weights training started from

    z = model.algorithm.noise(args.n, torch.device("cpu"), torch.Generator().manual_seed(1234))
    shuffle = torch.randperm(args.n, generator=torch.Generator().manual_seed(99))
    plain, other = content_classifier("mnist5k"), content_classifier(f"mnist5k?domain={d}")
    x_a, x_b = pairs(G, z, vr)
    trained = figures(x_a, x_b, plain, other, d, shuffle)
    untrained = figures(*pairs(initial, z, vr), plain, other, d, shuffle)

    test = load_source(f"mnist5k?split=test&domain={d}&paired=1")
    true_a, true_b = test.x, test.fields["target"]
    ceiling = figures(true_a, true_b, plain, other, d, torch.randperm(len(true_a),
                                                                       generator=torch.Generator().manual_seed(99)))

    out.mkdir(parents=True, exist_ok=True)
    rows = min(args.rows, args.n)
    grid = save_panels({"x_A": x_a[:rows], "x_B": x_b[:rows], f"{d}(x_A)": derive(x_a[:rows], d)},
                       out / "grid.png", scale=3)
    shared = {k: model.nets[k].shared_layers for k in ("G", "D")}
    result = {"recipe": model.config.name, "domain": d, "steps": model.step, "shared_layers": shared,
              "batch_size": model.config.train.batch_size, "threads": args.threads,
              "train_wall_s": round(wall, 1) if args.run is None else None, "pairs": args.n,
              "figures": trained, "untrained": untrained, "true_pairs": ceiling, "grid": str(grid),
              "run_dir": str(run_dir), "overrides": args.set}
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    how = (f"{model.step} steps in {wall:.0f} s at {args.threads} thread(s)" if args.run is None
           else f"{model.step} steps")
    print(f"\n{model.config.name}, A = plain digits, B = {d}; shared layers G {shared['G']}, D {shared['D']}; {how}; "
          f"{args.n} pairs from one z each")
    print("\n| figure | trained | untrained | true held-out pairs |\n|---|---|---|---|")
    for k in trained:
        print(f"| {k} | {trained[k]} | {untrained[k]} | {ceiling[k]} |")
    print(f"\ngrid: {grid}")


if __name__ == "__main__":
    main()
