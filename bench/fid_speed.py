"""Time FID's matrix square-root term: Cholesky + one symmetric eigenvalue problem vs scipy.linalg.sqrtm.

    .venv/bin/python bench/fid_speed.py            # 10,000 x 2048 features, the size of a usual FID
    .venv/bin/python bench/fid_speed.py --n 2000 --d 512

Features are synthetic but shaped like Inception pool features: non-negative (averages of ReLU
outputs), strongly correlated, with a power-law covariance spectrum. The "fake" set uses a
perturbed mixing matrix and spectrum so that the FID is clearly non-zero. Prints the time of each
method (best of --repeats), their ratio and the relative difference of the two FIDs.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ganforge.metrics.fid import feature_stats, frechet_distance, frechet_distance_scipy


def inception_like_features(
    rng: np.random.Generator, n: int, d: int, mixing: np.ndarray, decay: float, offset: float
) -> np.ndarray:
    spectrum = 50.0 * (1.0 + np.arange(d)) ** (-decay)
    latent = rng.standard_normal((n, d)) * np.sqrt(spectrum)
    # softplus keeps features positive and smooth, like pooled ReLU activations.
    return np.logaddexp(0.0, latent @ mixing + offset)


def best_time(function, repeats: int) -> tuple[float, float]:
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples per set")
    parser.add_argument("--d", type=int, default=2048, help="feature dimension")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method; the best is reported (shared machines are noisy)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    mixing, _ = np.linalg.qr(rng.standard_normal((args.d, args.d)))
    perturbed, _ = np.linalg.qr(mixing + 0.3 * rng.standard_normal((args.d, args.d)) / np.sqrt(args.d))
    start = time.perf_counter()
    mu1, sigma1 = feature_stats(inception_like_features(rng, args.n, args.d, mixing, decay=1.0, offset=-0.5))
    mu2, sigma2 = feature_stats(inception_like_features(rng, args.n, args.d, perturbed, decay=1.2, offset=-0.7))
    stats_seconds = time.perf_counter() - start

    eigen_seconds, eigen_fid = best_time(lambda: frechet_distance(mu1, sigma1, mu2, sigma2), args.repeats)
    scipy_seconds, scipy_fid = best_time(lambda: frechet_distance_scipy(mu1, sigma1, mu2, sigma2), args.repeats)

    print(f"features: 2 sets of {args.n} x {args.d} (statistics in {stats_seconds:.2f} s)")
    print(f"{'method':<28}{'seconds':>10}{'FID':>18}")
    print(f"{'frechet_distance':<28}{eigen_seconds:>10.3f}{eigen_fid:>18.10f}")
    print(f"{'scipy.linalg.sqrtm':<28}{scipy_seconds:>10.3f}{scipy_fid:>18.10f}")
    print(f"speed-up: {scipy_seconds / eigen_seconds:.1f}x")
    print(f"relative difference: {abs(eigen_fid - scipy_fid) / abs(scipy_fid):.2e}")


if __name__ == "__main__":
    main()
