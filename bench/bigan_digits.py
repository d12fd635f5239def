"""Benchmark: what a BiGAN / ALI encoder learns about digits (issue 14's acceptance), by linear probes and
reconstructions.

Trains a recipe (default ``bigan-digits``; ``--run DIR`` reads a finished run instead), then on the mnist5k digits
(train split: 4,000 digits for the probes' fitting, test split: 1,000 held out; both sorted by class, so any subset is
drawn shuffled):

* linear probes (the BiGAN paper's evaluation, Donahue et al. 2017 section 4.1, with logistic regression): sklearn's
  ``LogisticRegression`` (same settings for every feature set: L2, C = ``--C``, lbfgs, standardised features, the
  scaler fitted on the train features) fitted on features of the train digits, accuracy on the held-out ones, for
  - E(x): the code (a stochastic encoder's mean), and E's last hidden layer (the trunk's output: the BiGAN paper
    probes several of E's layers),
  - the same two for a randomly initialised E of the same architecture (the run's initial weights, rebuilt from its
    seed): what the architecture alone gives,
  - raw pixels (784 values);
* reconstructions G(E(x)) of the held-out digits: the share the cached mnist5k domain classifier
  (``metrics/content.py``) reads as the input's label, beside its accuracy on the inputs themselves (the ceiling) and
  on G(E_random(x)) (the trained G fed the random encoder's codes: what no inference gives), and the pixel MSE
  (images in [0, 1]) of each to its input;
* for a run with EMA copies of G and E (``train.ema``; what ``ganforge.load`` gives), the probes and reconstructions
  of the trained weights too ("without EMA"; ``--no-ema`` evaluates only those);
* a grid ``grid.png``: x | G(E(x)) | G(E_random(x)) [| G(E(x)) without EMA], a row per held-out digit (two per
  class).

Not a test; run it by hand, one at a time (one thread; ``--steps`` to budget it):

    .venv/bin/python bench/bigan_digits.py --threads 1 --out runs/bench-bigan
    .venv/bin/python bench/bigan_digits.py --threads 1 --recipe ali-digits --out runs/bench-ali
    .venv/bin/python bench/bigan_digits.py --run runs/bench-bigan/run --out runs/bench-bigan
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.config import parse_set
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.metrics.content import content_classifier
from ganforge.report import save_panels


@torch.no_grad()
def encoder_features(E: nn.Module, x: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(code, last hidden layer) of each image (model range), E in inference mode; the code is a stochastic
    encoder's mean."""
    codes, hidden = [], []
    with eval_mode(E):
        for i in range(0, len(x), batch_size):
            h = E.trunk(x[i:i + batch_size])
            hidden.append(h.flatten(1))
            mean = E.head(h)
            codes.append(mean.chunk(2, dim=1)[0] if E.stochastic else mean)
    return torch.cat(codes).numpy(), torch.cat(hidden).numpy()


def probe(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray, C: float) -> float:
    """Held-out accuracy of a logistic regression on standardised features (the scaler fitted on ``train``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(C=C, max_iter=2000)
    clf.fit(scaler.transform(train), y_train)
    return round(float((clf.predict(scaler.transform(test)) == y_test).mean()), 4)


@torch.no_grad()
def reconstruct(G: nn.Module, codes: np.ndarray, value_range: tuple[float, float],
                batch_size: int = 500) -> torch.Tensor:
    """uint8 G(code) of each code, G in inference mode."""
    z = torch.from_numpy(codes)
    out = []
    with eval_mode(G):
        for i in range(0, len(z), batch_size):
            out.append(to_uint8(G(z[i:i + batch_size]).float(), value_range))
    return torch.cat(out)


def class_share(classifier: Any, images: torch.Tensor, labels: torch.Tensor) -> float:
    probs, _ = classifier.predict(images)
    return round(float((probs.argmax(1) == labels).float().mean()), 4)


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(float(((a.float() - b.float()) / 255).pow(2).mean()), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="bigan-digits")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of every probe (default 1.0)")
    ap.add_argument("--run", default=None, help="evaluate this finished run instead of training one")
    ap.add_argument("--no-ema", action="store_true",
                    help="evaluate the trained weights of G and E, not their EMA copies (when the run keeps them)")
    ap.add_argument("--out", default="runs/bench-bigan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(args.threads)

    overrides: dict[str, Any] = {"train.threads": args.threads, **parse_set(args.set)}
    if args.steps:
        overrides["train.steps"] = args.steps
    t0 = time.time()
    if args.run is None:
        flags = " ".join([f"--recipe {args.recipe}"] + [f"--set {s}" for s in args.set])
        run_dir = ganforge.train(args.recipe, out=out / "run", force=True, progress=False, overrides=overrides,
                                 command=f"bench/bigan_digits.py {flags}").run_dir
    else:
        run_dir = Path(args.run)
    wall = time.time() - t0
    model = ganforge.load(run_dir, use_ema=not args.no_ema)
    vr = model.value_range
    ema = model.config.train.ema.enabled and not args.no_ema
    E, G = model.nets["E"], model.nets["G"]
    E_random = build_algorithm(model.config, model.info).nets["E"]     # the weights training started from
    # with EMA copies, the trained weights too: the average gives better reconstructions, the probes differ
    raw = ganforge.load(run_dir, use_ema=False) if ema else None

    # mnist5k's splits are sorted by class: shuffle (the probes do not care; the grid and any subset do)
    train, test = load_source("mnist5k?split=train"), load_source("mnist5k?split=test")
    p_tr = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(0))
    p_te = torch.randperm(len(test.x), generator=torch.Generator().manual_seed(1))
    x_tr, y_tr = train.x[p_tr], train.y[p_tr]
    x_te, y_te = test.x[p_te], test.y[p_te]
    m_tr, m_te = to_model_range(x_tr, vr), to_model_range(x_te, vr)
    ytr, yte = y_tr.numpy(), y_te.numpy()
    classifier = content_classifier("mnist5k")

    t1 = time.time()
    probes: dict[str, float] = {}
    recon: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    encoders = {"E": (E, G), "random E": (E_random, G)}
    if raw is not None:
        encoders["E without EMA"] = (raw.nets["E"], raw.nets["G"])
    for name, (enc, dec) in encoders.items():
        (code_tr, hid_tr), (code_te, hid_te) = encoder_features(enc, m_tr), encoder_features(enc, m_te)
        probes[f"{name}: code ({code_tr.shape[1]}-d)"] = probe(code_tr, ytr, code_te, yte, args.C)
        probes[f"{name}: last hidden layer ({hid_tr.shape[1]}-d)"] = probe(hid_tr, ytr, hid_te, yte, args.C)
        label = {"E": "G(E(x))", "random E": "G(E_random(x))", "E without EMA": "G(E(x)) without EMA"}[name]
        outputs[label] = reconstruct(dec, code_te, vr)
        recon[f"class kept: {label}"] = class_share(classifier, outputs[label], y_te)
        recon[f"pixel MSE of {label} to x"] = mse(outputs[label], x_te)
    probes["raw pixels (784-d)"] = probe(x_tr.flatten(1).float().numpy(), ytr, x_te.flatten(1).float().numpy(),
                                         yte, args.C)
    recon["classifier on the inputs x (ceiling)"] = class_share(classifier, x_te, y_te)
    eval_wall = time.time() - t1

    out.mkdir(parents=True, exist_ok=True)
    rows = torch.cat([torch.nonzero(y_te == k)[:2, 0] for k in range(10)])     # two held-out digits per class
    grid = save_panels({"x": x_te[rows], **{k: v[rows] for k, v in outputs.items()}}, out / "grid.png", scale=3)
    result = {"recipe": model.config.name, "algorithm": model.config.algorithm.name, "steps": model.step, "ema": ema,
              "batch_size": model.config.train.batch_size, "threads": args.threads,
              "train_wall_s": round(wall, 1) if args.run is None else None, "eval_wall_s": round(eval_wall, 1),
              "probe": {"C": args.C, "train_digits": len(x_tr), "test_digits": len(x_te)},
              "probes": probes, "reconstruction": recon, "grid": str(grid), "run_dir": str(run_dir),
              "overrides": args.set}
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    how = (f"{model.step} steps in {wall:.0f} s at {args.threads} thread(s)" if args.run is None
           else f"{model.step} steps")
    weights = ", EMA weights of G and E" if ema else ""
    print(f"\n{model.config.name} ({model.config.algorithm.name}{weights}); {how}; probes: logistic regression "
          f"(C {args.C}) fitted on {len(x_tr)} mnist5k train digits, accuracy on {len(x_te)} held out")
    print("\n| features | held-out accuracy |\n|---|---|")
    for k, v in probes.items():
        print(f"| {k} | {v} |")
    print("\n| reconstruction of held-out digits | value |\n|---|---|")
    for k, v in recon.items():
        print(f"| {k} | {v} |")
    print(f"\ngrid: {grid}")


if __name__ == "__main__":
    main()
