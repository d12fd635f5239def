"""Inception Score (IS) from a matrix of class probabilities.

Salimans et al. 2016, "Improved Techniques for Training GANs", section 4; seed 001 section 8.2.1
(a good generator gives confident per-image predictions and a diverse marginal over classes)::

    IS = exp( E_x KL( p(y | x) || p(y) ) ),   p(y) = E_x p(y | x)

As in the authors' code (openai/improved-gan ``inception_score.py``): the N rows are cut into
``splits`` consecutive, equal parts (row ``i * N // splits`` to ``(i + 1) * N // splits``), the
marginal ``p(y)`` and the score are computed within each part, and the mean and (ddof=0) standard
deviation of the per-part scores are reported; 10 splits is the standard setting. No shuffling is
done, so the order of the rows matters only through how they fall into parts.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from ..errors import ConfigError, DataError
from .fid import as_feature_matrix

__all__ = ["inception_score"]

# Rows of a softmax in float32 sum to 1 within ~1e-6; 1e-3 still rejects logits or unnormalised scores.
ROW_SUM_TOLERANCE = 1e-3


def inception_score(probs: Any, splits: int = 10) -> tuple[float, float]:
    """IS mean and std over ``splits`` parts of an N x K probability matrix (N >= splits).

    ``probs`` must be non-negative with rows summing to 1 (within 1e-3); pass softmax outputs, not
    logits. Zero probabilities are allowed (``0 log 0 = 0``).
    """
    if not isinstance(splits, int) or splits < 1:
        raise ConfigError(f"inception_score splits must be a positive integer; got {splits!r}")
    matrix = as_feature_matrix(probs, "class probabilities", min_samples=1)
    if matrix.shape[0] < splits:
        raise DataError(
            f"inception score with {splits} splits needs at least {splits} samples; got {matrix.shape[0]}"
        )
    if (matrix < 0).any():
        raise DataError(
            f"class probabilities must be non-negative (min is {matrix.min():.4g}); pass softmax outputs, not logits"
        )
    row_sums = matrix.sum(axis=1)
    worst = int(np.argmax(np.abs(row_sums - 1.0)))
    if abs(row_sums[worst] - 1.0) > ROW_SUM_TOLERANCE:
        raise DataError(
            f"class probabilities must have rows summing to 1; row {worst} sums to {row_sums[worst]:.6g};"
            " apply softmax to the logits first"
        )
    count = matrix.shape[0]
    scores = np.empty(splits)
    for index in range(splits):
        part = matrix[index * count // splits : (index + 1) * count // splits]
        marginal = part.mean(axis=0, keepdims=True)
        # KL(p(y|x) || p(y)) per row; xlogy gives 0 for the 0 * log 0 terms.
        kl_per_row = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1)
        scores[index] = np.exp(kl_per_row.mean())
    return float(scores.mean()), float(scores.std())
