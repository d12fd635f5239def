"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each sample set is turned into a manifold estimate: the union of balls around its samples, the
radius of the ball around ``x_i`` being the distance to its k-th nearest neighbour in the same set
(the sample itself not counted).

* Precision (Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative
  Models", NeurIPS 2019, eq. 1-2, k = 3): share of fake samples inside the real manifold.
  Recall: share of real samples inside the fake manifold. A point on a ball's boundary counts as
  inside (``<=``), as in the authors' code.
* Density (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models",
  ICML 2020, eq. 3, k = 5): ``1 / (k M) * sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]`` over M fake
  samples Y_j and real samples X_i; about 1 when the fake samples follow the real distribution,
  and unbounded above. Coverage (eq. 4): share of real samples whose ball holds at least one fake
  sample. Balls are open here (``<``), as in the authors' ``prdc`` code.

Distances are computed in blocks of ``chunk_size`` rows with torch (``|a|^2 + |b|^2 - 2 a.b``), so
only a ``chunk_size x N`` block is ever held: 10k x 10k samples of 2048-d features need a few
hundred MB, not the 800 MB of a full float64 distance matrix per pair of sets. Float64 by default so
that ties (equal distances) are resolved the same way on every machine.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .fid import as_feature_matrix, check_same_dim

__all__ = ["kth_neighbour_radii", "precision_recall", "density_coverage"]

DEFAULT_CHUNK_SIZE = 1024


def _squared_distances(block: torch.Tensor, block_sq: torch.Tensor, others: torch.Tensor, others_sq: torch.Tensor) -> torch.Tensor:
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b; clamp the tiny negatives that cancellation can produce.
    return (block_sq[:, None] + others_sq[None, :] - 2.0 * block @ others.T).clamp_(min=0.0)


def _row_blocks(rows: torch.Tensor, chunk_size: int):
    for start in range(0, rows.shape[0], chunk_size):
        yield start, rows[start : start + chunk_size]


def _to_tensor(features: np.ndarray, dtype: torch.dtype, device: str | torch.device) -> torch.Tensor:
    return torch.from_numpy(features).to(device=device, dtype=dtype)


def _check_options(k: int, chunk_size: int) -> None:
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"k (nearest neighbours) must be a positive integer; got {k!r}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer; got {chunk_size!r}")


def kth_neighbour_radii(
    features: Any,
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Distance from each sample to its k-th nearest neighbour in the same set (self excluded), shape (N,).

    The sample's zero distance to itself is the smallest entry of its row, so the k-th neighbour is
    the (k + 1)-th smallest value; an exact duplicate of a sample counts as a neighbour at distance 0.
    """
    _check_options(k, chunk_size)
    array = as_feature_matrix(features, "features", min_samples=k + 1)
    points = _to_tensor(array, dtype, device)
    return _radii(points, (points * points).sum(1), k, chunk_size)


def _radii(points: torch.Tensor, points_sq: torch.Tensor, k: int, chunk_size: int) -> torch.Tensor:
    radii = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    for start, block in _row_blocks(points, chunk_size):
        squared = _squared_distances(block, points_sq[start : start + block.shape[0]], points, points_sq)
        # The diagonal is exactly 0 in theory; force it so round-off never reorders self and a true neighbour.
        rows = torch.arange(block.shape[0], device=points.device)
        squared[rows, start + rows] = 0.0
        radii[start : start + block.shape[0]] = squared.kthvalue(k + 1, dim=1).values.sqrt()
    return radii


def _inside_counts(
    queries: torch.Tensor,
    centres: torch.Tensor,
    radii: torch.Tensor,
    chunk_size: int,
    inside: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every query: how many balls B(centre_i, radius_i) hold it; for every centre: whether any query is in its ball."""
    centres_sq = (centres * centres).sum(1)
    queries_sq = (queries * queries).sum(1)
    radii_sq = radii * radii
    counts = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    centre_hit = torch.zeros(centres.shape[0], dtype=torch.bool, device=queries.device)
    for start, block in _row_blocks(queries, chunk_size):
        squared = _squared_distances(block, queries_sq[start : start + block.shape[0]], centres, centres_sq)
        membership = inside(squared, radii_sq[None, :])
        counts[start : start + block.shape[0]] = membership.sum(1)
        centre_hit |= membership.any(0)
    return counts, centre_hit


def _prepare(real: Any, fake: Any, k: int, chunk_size: int, dtype: torch.dtype, device: str | torch.device):
    _check_options(k, chunk_size)
    real_array = as_feature_matrix(real, "real features", min_samples=k + 1)
    fake_array = as_feature_matrix(fake, "fake features", min_samples=1)
    check_same_dim(real_array, fake_array, "real features", "fake features")
    return _to_tensor(real_array, dtype, device), _to_tensor(fake_array, dtype, device)


def precision_recall(
    real: Any,
    fake: Any,
    k: int = 3,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``{"precision", "recall"}`` of Kynkäänniemi et al. (2019) with k-NN balls (k = 3 as in the paper).

    Both sets need more than k samples (each builds a manifold) and the same feature dimension.
    """
    real_points, fake_points = _prepare(real, fake, k, chunk_size, dtype, device)
    if fake_points.shape[0] < k + 1:
        raise DataError(f"fake features have {fake_points.shape[0]} samples; recall with k={k} needs at least {k + 1}")
    real_radii = _radii(real_points, (real_points * real_points).sum(1), k, chunk_size)
    fake_radii = _radii(fake_points, (fake_points * fake_points).sum(1), k, chunk_size)
    closed_ball = torch.le
    fake_in_real, _ = _inside_counts(fake_points, real_points, real_radii, chunk_size, closed_ball)
    real_in_fake, _ = _inside_counts(real_points, fake_points, fake_radii, chunk_size, closed_ball)
    return {
        "precision": float((fake_in_real > 0).double().mean()),
        "recall": float((real_in_fake > 0).double().mean()),
    }


def density_coverage(
    real: Any,
    fake: Any,
    k: int = 5,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``{"density", "coverage"}`` of Naeem et al. (2020) with k-NN balls around real samples (k = 5 as in the paper).

    The real set needs more than k samples; the fake set at least one.
    """
    real_points, fake_points = _prepare(real, fake, k, chunk_size, dtype, device)
    real_radii = _radii(real_points, (real_points * real_points).sum(1), k, chunk_size)
    open_ball = torch.lt
    balls_per_fake, real_covered = _inside_counts(fake_points, real_points, real_radii, chunk_size, open_ball)
    return {
        "density": float(balls_per_fake.double().sum() / (k * fake_points.shape[0])),
        "coverage": float(real_covered.double().mean()),
    }
