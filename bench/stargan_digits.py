"""StarGAN on three digit domains (plain, negative, edges): does G(x, c) reach the target domain, and keep the digit?

Usage: python bench/stargan_digits.py [RUN_DIR]   (default: trains `stargan-digits` at one thread into a temp dir)

On the 1,000 held-out digits (each shown in one domain, ``mnist5k?split=test&domains=plain,negative,edges``), every
input is translated to each of the three domains. Two figures, independent of the trained D:
* target-domain accuracy: the true counterpart of every held-out digit in every domain is known (``derive`` of the
  original digit), so an output counts as in the target domain when, among the digit's three true versions (plain,
  negative, edges), the target's is the nearest in mean absolute difference. Identity (outputs = inputs) scores
  about 1/3 (right only when the target is the input's own domain).
* content preservation: the mnist5k digit classifier (metrics/content.py) reads the digit on translations to the
  plain domain, against the inputs' labels (inputs from all three domains).
"""
from __future__ import annotations

import sys
import tempfile

import torch

import ganforge
from ganforge.data import load_source
from ganforge.data.mnist5k import derive
from ganforge.metrics.content import content_preservation

DOMAINS = ["plain", "negative", "edges"]


def true_versions(digits: torch.Tensor) -> torch.Tensor:
    """uint8 3 x N x 1 x 28 x 28: each digit in each domain."""
    return torch.stack([digits if d == "plain" else derive(digits, d) for d in DOMAINS])


def evaluate(model, inputs: torch.Tensor, digits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    versions = true_versions(digits).float()
    figures: dict[str, float] = {}
    hits = []
    for k, name in enumerate(DOMAINS):
        out = model.translate(inputs, to=name).float()
        nearest = (out.unsqueeze(0) - versions).abs().flatten(2).mean(2).argmin(0)
        hits.append((nearest == k).float())
        figures[f"to_{name}_domain_acc"] = float(hits[-1].mean())
        if name == "plain":
            figures["content_acc_to_plain"] = content_preservation("mnist5k", out.to(torch.uint8), labels)["content_accuracy"]
    figures["domain_acc"] = float(torch.cat(hits).mean())
    return figures


def main() -> None:
    run = sys.argv[1] if len(sys.argv) > 1 else ganforge.train("stargan-digits", out=tempfile.mkdtemp(), progress=False,
                                                               overrides={"train.threads": 1}).run_dir
    held = load_source("mnist5k?split=test&domains=plain,negative,edges", seed=0)
    plain = load_source("mnist5k?split=test", seed=0)
    model = ganforge.load(run)
    figures = evaluate(model, held.x, plain.x, plain.y)
    identity = sum(float((held.fields["domain"] == k).float().mean()) for k in range(3)) / 3
    print(f"run {run}")
    print(f"identity baseline domain_acc {identity:.3f}")
    for key, value in figures.items():
        print(f"{key} {value:.3f}")


if __name__ == "__main__":
    main()
