"""KID (unbiased cubic-kernel MMD) and Inception Score on hand-computed and analytic cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.errors import ConfigError, DataError
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance, mmd2_unbiased


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator written out with explicit loops over pairs."""
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + 1.0) ** 3

    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return within_x + within_y - 2 * across


def test_kid_hand_computed_two_point_sets() -> None:
    # d = 2. X = {(2,0), (2,0)}: k(x1,x2) = (4/2 + 1)^3 = 27.  Y = {0, 0}: every kernel value is 1.
    # MMD^2 = 27 (X pairs) + 1 (Y pairs) - 2 * 1 (cross pairs) = 26. Subsets of size 2 are the whole sets.
    x = np.array([[2.0, 0.0], [2.0, 0.0]])
    y = np.zeros((2, 2))
    mean, std = kernel_inception_distance(x, y, num_subsets=3, subset_size=2)
    assert mean == pytest.approx(26.0, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_matches_brute_force_estimator() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 5))
    y = rng.standard_normal((12, 5)) * 1.5 + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)
    # subset_size >= both sizes: each subset is a permutation of the whole set, and MMD^2 ignores order.
    mean, std = kernel_inception_distance(x, y, num_subsets=4, subset_size=1000)
    assert mean == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_is_near_zero_for_identical_and_same_distribution_sets() -> None:
    rng = np.random.default_rng(1)
    features = rng.standard_normal((2000, 16))
    other_draw = rng.standard_normal((2000, 16))
    shifted_kid, _ = kernel_inception_distance(features, features + 0.3, num_subsets=20, subset_size=200)
    identical_kid, _ = kernel_inception_distance(features, features, num_subsets=20, subset_size=200)
    same_distribution_kid, _ = kernel_inception_distance(features, other_draw, num_subsets=20, subset_size=200)
    assert shifted_kid > 0.1
    assert abs(identical_kid) < 0.1 * shifted_kid
    assert abs(same_distribution_kid) < 0.1 * shifted_kid


def test_kid_subset_size_is_clipped_to_smaller_set_and_seeded() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 4))
    y = rng.standard_normal((45, 4)) + 0.5
    clipped = kernel_inception_distance(x, y, num_subsets=5, subset_size=1000, seed=7)
    explicit = kernel_inception_distance(x, y, num_subsets=5, subset_size=30, seed=7)
    assert clipped == explicit
    assert kernel_inception_distance(x, y, num_subsets=5, subset_size=20, seed=3) == kernel_inception_distance(
        torch.from_numpy(x), y, num_subsets=5, subset_size=20, seed=3
    )
    assert clipped[1] > 0.0  # subsets of y differ, so the estimates spread


@pytest.mark.parametrize(
    "x, y, options, error, fragment",
    [
        (np.ones((5, 3)), np.ones((5, 4)), {}, DataError, "has 3 features per sample"),
        (np.ones((1, 3)), np.ones((5, 3)), {}, DataError, "needs at least 2"),
        (np.ones((5, 3)), np.ones((5, 3)), {"num_subsets": 0}, ConfigError, "num_subsets"),
        (np.ones((5, 3)), np.ones((5, 3)), {"subset_size": 1}, ConfigError, "subset_size"),
    ],
)
def test_kid_bad_input(x, y, options, error, fragment: str) -> None:
    with pytest.raises(error) as raised:
        kernel_inception_distance(x, y, **options)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_is_of_confident_uniform_predictions_equals_class_count() -> None:
    classes = 7
    probs = np.eye(classes)[np.arange(10 * classes) % classes]  # every split holds each class once
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(classes, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_is_of_uninformative_predictions_is_one() -> None:
    probs = torch.full((40, 1008), 1.0 / 1008)
    mean, std = inception_score(probs, splits=4)
    assert mean == pytest.approx(1.0, abs=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_is_hand_computed_single_split() -> None:
    # p1 = (1/2, 1/2), p2 = (1, 0); marginal (3/4, 1/4).
    # KL1 = 1/2 ln(2/3) + 1/2 ln 2, KL2 = ln(4/3); IS = exp((KL1 + KL2) / 2).
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    kl1 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl2 = math.log(1.0 / 0.75)
    mean, std = inception_score(probs, splits=1)
    assert mean == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)
    assert mean == pytest.approx(1.240806, abs=1e-6)
    assert std == 0.0


def test_is_splits_are_consecutive_parts_with_population_std() -> None:
    # First half: two confident, different classes (IS 2); second half: uniform rows (IS 1).
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    mean, std = inception_score(probs, splits=2)
    assert mean == pytest.approx(1.5, rel=1e-12)
    assert std == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize(
    "probs, splits, error, fragment",
    [
        (np.array([[2.0, -1.0]] * 10), 10, DataError, "non-negative"),
        (np.full((10, 4), 0.3), 10, DataError, "row 0 sums to 1.2"),
        (np.full((5, 2), 0.5), 10, DataError, "needs at least 10 samples"),
        (np.full(10, 0.1), 1, DataError, "2-D"),
        (np.full((10, 2), np.nan), 1, DataError, "NaN"),
        (np.full((10, 2), 0.5), 0, ConfigError, "splits"),
    ],
)
def test_is_bad_input(probs, splits, error, fragment: str) -> None:
    with pytest.raises(error) as raised:
        inception_score(probs, splits=splits)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
