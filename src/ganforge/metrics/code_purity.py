"""Purity of a categorical latent code (InfoGAN): how well code values line up one-to-one with classes.

Sample generated images with balanced code values, classify them (e.g. with the domain classifier), and find the
one-to-one mapping of code value -> class that matches the most samples (the Hungarian algorithm on the
code x class count table). Purity is the share of samples whose predicted class is the one their code maps to:
1.0 when every code value makes a single, distinct class; about 1/K plus a small-sample bias for a code the
generator ignores. Unlike accuracy it needs no agreement on which code value means which class, so it also
scores the paper's unsupervised InfoGAN, whose code values come out in an arbitrary order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class CodePurity:
    purity: float                 # matched samples / all samples
    mapping: dict[int, int]       # code value -> class under the best one-to-one matching
    table: np.ndarray             # num_codes x num_classes counts

    @property
    def identity_accuracy(self) -> float:
        """Share with predicted class == code value (the accuracy of a supervised/conditional code)."""
        k = min(self.table.shape)
        return float(np.trace(self.table[:k, :k]) / max(self.table.sum(), 1))


def code_purity(codes: torch.Tensor, predicted: torch.Tensor, num_codes: int | None = None,
                num_classes: int | None = None) -> CodePurity:
    """Purity of integer ``codes`` (N) against integer class ``predicted`` (N)."""
    codes, predicted = torch.as_tensor(codes).long().cpu(), torch.as_tensor(predicted).long().cpu()
    if codes.shape != predicted.shape or codes.ndim != 1 or len(codes) == 0:
        raise ValueError(f"codes and predicted must be two equal-length 1-d tensors, got {tuple(codes.shape)} and "
                         f"{tuple(predicted.shape)}")
    k = num_codes or int(codes.max()) + 1
    c = num_classes or int(predicted.max()) + 1
    table = torch.zeros(k, c, dtype=torch.long)
    table.index_put_((codes, predicted), torch.ones_like(codes), accumulate=True)
    counts = table.numpy()
    rows, cols = linear_sum_assignment(-counts)
    matched = int(counts[rows, cols].sum())
    return CodePurity(matched / len(codes), {int(r): int(col) for r, col in zip(rows, cols)}, counts)
