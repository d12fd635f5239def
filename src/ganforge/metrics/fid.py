"""Fréchet Inception Distance (FID) from feature matrices, and the cached real-data statistics.

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium"; seed 001 section 8.2.2) fits a Gaussian to the Inception pool features of each image
set and takes the Fréchet (Wasserstein-2) distance between the two Gaussians::

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^{1/2} )

The reference tools (pytorch-fid, the TTUR code) evaluate the last term with ``scipy.linalg.sqrtm``
of the non-symmetric product ``S1 S2``: an iterative Schur-based method that is slow for d = 2048,
may return a complex result that must be truncated, and needs an ``eps * I`` retry when ``S1 S2`` is
singular. :func:`frechet_distance` computes the same trace from one symmetric eigenvalue problem:

* ``S1 = L L^T`` (Cholesky; S1 is symmetric positive definite when there are more samples than
  feature dimensions and no feature is constant).
* ``M = L^T S2 L`` is symmetric PSD, and it has the same eigenvalues as ``S1 S2``, because
  ``S1 S2 = L (L^T S2)`` and ``M = (L^T S2) L``, and ``AB``, ``BA`` always share their eigenvalues.
* The principal square root of ``S1 S2`` (what ``sqrtm`` returns) therefore has eigenvalues
  ``sqrt(eig(M))``, and ``tr((S1 S2)^{1/2}) = sum_i sqrt(eig_i(M))`` (``eigvalsh``, no vectors).

A Cholesky factor costs a tenth of an eigen decomposition with vectors, so this is about twice as fast as taking
``sqrt(S1)`` from ``eigh`` (the same argument with ``M = sqrt(S1) S2 sqrt(S1)``), which stays as the path for a
singular S1 (fewer samples than dimensions, a constant feature), where Cholesky fails.

Statistics files use the pytorch-fid layout: an ``.npz`` with ``mu`` (d,) and ``sigma`` (d, d).
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch

from ..errors import DataError

__all__ = [
    "as_feature_matrix",
    "check_same_dim",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_scipy",
    "fid_from_features",
    "save_stats",
    "load_stats",
]


def as_feature_matrix(features: Any, name: str = "features", min_samples: int = 1) -> np.ndarray:
    """Validate an N x d feature matrix (numpy array or torch tensor) and return it as float64 numpy.

    Raises a one-line :class:`DataError` when it is not 2-D, not a real number type, holds NaN/inf,
    or has fewer than ``min_samples`` rows.
    """
    if isinstance(features, torch.Tensor):
        if features.is_complex() or features.dtype == torch.bool:
            raise DataError(f"{name} must hold real numbers; got a tensor of dtype {features.dtype}")
        array = features.detach().to("cpu", torch.float64).numpy()
    elif isinstance(features, np.ndarray):
        if not (np.issubdtype(features.dtype, np.floating) or np.issubdtype(features.dtype, np.integer)):
            raise DataError(f"{name} must hold real numbers; got an array of dtype {features.dtype}")
        array = features.astype(np.float64, copy=False)
    else:
        raise DataError(f"{name} must be a numpy array or torch tensor of shape (N, d); got {type(features).__name__}")
    if array.ndim != 2:
        raise DataError(f"{name} must be a 2-D matrix (N samples x d features); got shape {tuple(array.shape)}")
    if array.shape[1] < 1:
        raise DataError(f"{name} has no feature columns (shape {tuple(array.shape)}); expected (N, d) with d >= 1")
    if array.shape[0] < min_samples:
        raise DataError(f"{name} has {array.shape[0]} samples; this metric needs at least {min_samples}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise DataError(f"{name} contains NaN or inf in {bad} of {array.shape[0]} rows; check the generator / feature extractor")
    return array


def check_same_dim(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> None:
    """Raise DataError when two feature matrices do not have the same number of columns."""
    if first.shape[1] != second.shape[1]:
        raise DataError(
            f"{first_name} has {first.shape[1]} features per sample but {second_name} has {second.shape[1]};"
            " both sets must come from the same feature extractor layer"
        )


def feature_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of an N x d feature matrix, both float64.

    The covariance uses the N - 1 denominator, as ``np.cov(rowvar=False)`` in pytorch-fid / TTUR.
    N >= 2 is required. N <= d is accepted (the covariance is then rank-deficient, which
    :func:`frechet_distance` handles exactly), but the FID estimate is strongly biased at small N:
    seed 001 section 8.2.2 recommends about 50,000 samples.
    """
    array = as_feature_matrix(features, "features", min_samples=2)
    mu = array.mean(axis=0)
    centred = array - mu
    sigma = centred.T @ centred / (array.shape[0] - 1)
    # Symmetrise: the matmul result is symmetric only up to round-off, and eigh reads one triangle.
    sigma = (sigma + sigma.T) / 2
    return mu, sigma


def _check_stats(mu: Any, sigma: Any, label: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1:
        raise DataError(f"{label}: mu must be a vector of shape (d,); got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DataError(f"{label}: sigma must have shape ({mu.shape[0]}, {mu.shape[0]}) to match mu; got {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise DataError(f"{label}: mu/sigma contain NaN or inf; recompute the statistics")
    return mu, sigma


def _check_pair(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> tuple[np.ndarray, ...]:
    mu1, sigma1 = _check_stats(mu1, sigma1, "first statistics")
    mu2, sigma2 = _check_stats(mu2, sigma2, "second statistics")
    if mu1.shape != mu2.shape:
        raise DataError(
            f"statistics have different feature dimensions ({mu1.shape[0]} vs {mu2.shape[0]});"
            " compute both with the same feature extractor"
        )
    return mu1, sigma1, mu2, sigma2


def _product_eigenvalues(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """The eigenvalues of ``S1 S2`` (both symmetric PSD) as those of a symmetric matrix congruent to S2."""
    try:
        lower = scipy.linalg.cholesky(sigma1, lower=True)
    except np.linalg.LinAlgError:   # singular S1: its square root from the eigen decomposition instead
        eigvals1, eigvecs1 = np.linalg.eigh(sigma1)
        root = (eigvecs1 * np.sqrt(np.clip(eigvals1, 0.0, None))) @ eigvecs1.T
        middle = root @ sigma2 @ root
    else:
        # L^T (S2 L) with two triangular products (BLAS trmm: half the work of general products).
        s2_l = scipy.linalg.blas.dtrmm(1.0, lower, sigma2, side=1, lower=1)
        middle = scipy.linalg.blas.dtrmm(1.0, lower, s2_l, side=0, lower=1, trans_a=1)
    return np.linalg.eigvalsh((middle + middle.T) / 2)


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """FID between N(mu1, sigma1) and N(mu2, sigma2) via one symmetric eigenvalue problem.

    ``tr((S1 S2)^{1/2}) = sum sqrt(eigvalsh(L^T S2 L))`` with ``S1 = L L^T``; see the module docstring for
    why this equals the ``scipy.linalg.sqrtm`` formula of pytorch-fid (Heusel et al. 2017).
    The result is clipped at 0 (it is a squared distance; round-off can give -1e-12 for equal inputs).
    """
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = (sigma2 + sigma2.T) / 2
    trace_sqrt_product = np.sqrt(np.clip(_product_eigenvalues(sigma1, sigma2), 0.0, None)).sum()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product
    return float(max(distance, 0.0))


def frechet_distance_scipy(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Reference FID with ``scipy.linalg.sqrtm(S1 S2)``, the formula of pytorch-fid / TTUR.

    Kept for tests and ``bench/fid_speed.py`` only. As in those tools: if the square root is not
    finite, ``eps * I`` is added to both covariances and it is retried; a complex result (from
    round-off) is truncated to its real part.
    """
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(features1: Any, features2: Any) -> float:
    """FID between two N x d feature sets (each N >= 2, same d)."""
    first = as_feature_matrix(features1, "first feature set", min_samples=2)
    second = as_feature_matrix(features2, "second feature set", min_samples=2)
    check_same_dim(first, second, "first feature set", "second feature set")
    return frechet_distance(*feature_stats(first), *feature_stats(second))


def save_stats(path: str | os.PathLike[str], mu: Any, sigma: Any) -> None:
    """Write ``mu``/``sigma`` to ``path`` as an ``.npz`` (pytorch-fid layout), atomically.

    The file is written to a temporary name in the same folder and renamed, so a crash never leaves
    a truncated statistics file behind. The path is used exactly as given (no ``.npz`` is appended).
    """
    mu, sigma = _check_stats(mu, sigma, f"statistics for {path}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, mu=mu, sigma=sigma)
        os.replace(temp_name, target)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_stats(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(mu, sigma)`` (float64) from a pytorch-fid style ``.npz``; DataError on a bad file."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"FID statistics file {source} not found; compute it first or check the path")
    try:
        loaded = np.load(source, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"FID statistics file {source} is not a readable .npz ({_first_line(exc)}); recompute it") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(
            f"FID statistics file {source} holds a single array, not an .npz with 'mu' and 'sigma'; recompute it"
        )
    with loaded as archive:
        missing = [key for key in ("mu", "sigma") if key not in archive.files]
        if missing:
            raise DataError(
                f"FID statistics file {source} lacks key(s) {', '.join(missing)} (has: {', '.join(archive.files) or 'none'});"
                " expected an .npz with 'mu' (d,) and 'sigma' (d, d) as written by pytorch-fid or ganforge"
            )
        try:
            mu, sigma = archive["mu"], archive["sigma"]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"FID statistics file {source} is corrupt ({_first_line(exc)}); recompute it") from None
    if mu.dtype.kind not in "fiu" or sigma.dtype.kind not in "fiu":
        raise DataError(f"FID statistics file {source}: mu and sigma must be numeric arrays; recompute it")
    return _check_stats(mu, sigma, f"FID statistics file {source}")
