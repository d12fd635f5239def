"""FID: eigen-decomposition trace vs the scipy sqrtm formula, analytic Gaussian cases, stats files, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.errors import DataError, GanforgeError
from ganforge.metrics.fid import (
    feature_stats,
    fid_from_features,
    frechet_distance,
    frechet_distance_scipy,
    load_stats,
    save_stats,
)


def correlated_features(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    mixing = rng.standard_normal((d, d)) / math.sqrt(d)
    return rng.standard_normal((n, d)) @ mixing + shift


def samples_with_exact_moments(rng: np.random.Generator, n: int, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Rows whose sample mean is exactly mu and unbiased sample covariance exactly sigma."""
    raw = rng.standard_normal((n, mu.shape[0]))
    raw -= raw.mean(0)
    whitening = np.linalg.cholesky(raw.T @ raw / (n - 1))
    white = np.linalg.solve(whitening, raw.T).T  # sample covariance = I
    return white @ np.linalg.cholesky(sigma).T + mu


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("n, d", [(400, 64), (40, 64)])  # full rank (Cholesky) and rank-deficient (N < d: eigh)
def test_eigen_trace_matches_scipy_sqrtm_formula(n: int, d: int) -> None:
    rng = np.random.default_rng(0)
    mu1, sigma1 = feature_stats(correlated_features(rng, n, d))
    mu2, sigma2 = feature_stats(correlated_features(rng, n, d, shift=0.1))
    fast = frechet_distance(mu1, sigma1, mu2, sigma2)
    reference = frechet_distance_scipy(mu1, sigma1, mu2, sigma2)
    assert fast > 1.0
    assert fast == pytest.approx(reference, rel=1e-6)


def test_identical_sets_give_zero() -> None:
    rng = np.random.default_rng(1)
    features = correlated_features(rng, 300, 32)
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-9)
    assert fid_from_features(features, features.copy()) >= 0.0


def test_two_by_two_non_commuting_covariances_match_closed_form() -> None:
    # For 2x2 A = S1 S2 with eigenvalues l1, l2 >= 0: tr sqrt(A) = sqrt(l1 + l2 + 2 sqrt(l1 l2))
    # = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    sigma1 = np.array([[2.0, 1.0], [1.0, 2.0]])
    sigma2 = np.array([[1.0, 0.0], [0.0, 4.0]])
    mu1, mu2 = np.array([0.0, 0.0]), np.array([1.0, 2.0])
    trace_sqrt = math.sqrt(np.trace(sigma1 @ sigma2) + 2 * math.sqrt(3.0 * 4.0))  # sqrt(10 + 2 sqrt 12)
    expected = 5.0 + 4.0 + 5.0 - 2 * trace_sqrt  # |mu1-mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)
    assert expected == pytest.approx(5.7712204, abs=1e-6)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-12)


def test_diagonal_gaussians_match_analytic_wasserstein() -> None:
    variances1 = np.array([1.0, 4.0, 9.0, 0.25])
    variances2 = np.array([4.0, 1.0, 9.0, 1.0])
    mu1 = np.array([0.0, 1.0, 2.0, 3.0])
    mu2 = np.array([1.0, 1.0, 0.0, 3.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(variances1) - np.sqrt(variances2)) ** 2)
    assert expected == pytest.approx(5.0 + 1.0 + 1.0 + 0.0 + 0.25)
    assert frechet_distance(mu1, np.diag(variances1), mu2, np.diag(variances2)) == pytest.approx(expected, rel=1e-12)


def test_fid_from_features_of_two_gaussian_samples_equals_analytic_value() -> None:
    rng = np.random.default_rng(2)
    sigma1 = np.array([[2.0, 1.0], [1.0, 2.0]])
    sigma2 = np.array([[1.0, 0.0], [0.0, 4.0]])
    first = samples_with_exact_moments(rng, 500, np.array([0.0, 0.0]), sigma1)
    second = samples_with_exact_moments(rng, 700, np.array([1.0, 2.0]), sigma2)
    expected = 14.0 - 2 * math.sqrt(10.0 + 2 * math.sqrt(12.0))
    assert fid_from_features(first, second) == pytest.approx(expected, rel=1e-9)
    assert fid_from_features(torch.from_numpy(first).float(), second) == pytest.approx(expected, rel=1e-5)


def test_feature_stats_are_float64_mean_and_unbiased_covariance() -> None:
    features = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]])
    mu, sigma = feature_stats(features)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, [3.0, 4.0])
    # deviations (-2,-2), (0,2), (2,0): sums of products / (N - 1) = 2
    np.testing.assert_allclose(sigma, [[8.0 / 2, 4.0 / 2], [4.0 / 2, 8.0 / 2]])


def test_stats_file_round_trip_uses_pytorch_fid_keys(tmp_path) -> None:
    rng = np.random.default_rng(3)
    mu, sigma = feature_stats(correlated_features(rng, 50, 8))
    path = tmp_path / "stats" / "mnist_train_stats"  # no .npz suffix: written exactly there
    save_stats(path, mu, sigma)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    with np.load(path) as archive:
        assert sorted(archive.files) == ["mu", "sigma"]
    loaded_mu, loaded_sigma = load_stats(path)
    np.testing.assert_array_equal(loaded_mu, mu)
    np.testing.assert_array_equal(loaded_sigma, sigma)


def test_load_stats_reads_a_file_written_like_pytorch_fid(tmp_path) -> None:
    path = tmp_path / "cifar.npz"
    np.savez(path, mu=np.zeros(3, dtype=np.float32), sigma=np.eye(3, dtype=np.float32))
    mu, sigma = load_stats(path)
    assert mu.dtype == np.float64 and sigma.shape == (3, 3)


@pytest.mark.parametrize(
    "writer, fragment",
    [
        (None, "not found"),
        (lambda p: np.savez(p, mean=np.zeros(2), sigma=np.eye(2)), "lacks key(s) mu"),
        (lambda p: p.write_bytes(b"this is not a zip archive at all"), "not a readable .npz"),
        (lambda p: np.save(p.open("wb"), np.zeros(3)), "single array"),
        (lambda p: np.savez(p, mu=np.zeros(3), sigma=np.eye(2)), "sigma must have shape (3, 3)"),
        (lambda p: np.savez(p, mu=np.array([np.nan, 0.0]), sigma=np.eye(2)), "NaN or inf"),
    ],
)
def test_bad_stats_files_raise_one_line_data_error(tmp_path, writer, fragment: str) -> None:
    path = tmp_path / "real_stats.npz"
    if writer is not None:
        writer(path)
    with pytest.raises(DataError) as error:
        load_stats(path)
    assert fragment in one_line(error)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "first, second, fragment",
    [
        (np.zeros(10), np.zeros((10, 2)), "must be a 2-D matrix"),
        (np.ones((1, 4)), np.ones((5, 4)), "has 1 samples; this metric needs at least 2"),
        (np.full((5, 4), np.nan), np.ones((5, 4)), "NaN or inf in 5 of 5 rows"),
        (np.ones((5, 4)), np.ones((5, 3)), "has 4 features per sample but second feature set has 3"),
        (np.array([["a", "b"], ["c", "d"]]), np.ones((2, 2)), "must hold real numbers"),
        ([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2)), "numpy array or torch tensor"),
    ],
)
def test_bad_features_raise_one_line_data_error(first, second, fragment: str) -> None:
    with pytest.raises(DataError) as error:
        fid_from_features(first, second)
    assert fragment in one_line(error)
    assert isinstance(error.value, GanforgeError)


def test_mismatched_statistics_raise_data_error() -> None:
    with pytest.raises(DataError, match="different feature dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
