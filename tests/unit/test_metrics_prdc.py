"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) on constructed sets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import ConfigError, DataError
from ganforge.metrics.prdc import density_coverage, kth_neighbour_radii, precision_recall


def on_x_axis(*xs: float) -> np.ndarray:
    return np.array([[x, 0.0] for x in xs])


def reference_prdc(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> dict[str, float]:
    """Full-matrix numpy version of both papers' definitions."""

    def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(points: np.ndarray, k: int) -> np.ndarray:
        return np.sort(pairwise(points, points), axis=1)[:, k]  # column 0 is the point itself

    real_fake = pairwise(real, fake)  # real x fake
    real_r3, fake_r3, real_r5 = radii(real, k_pr), radii(fake, k_pr), radii(real, k_dc)
    return {
        "precision": float((real_fake <= real_r3[:, None]).any(0).mean()),
        "recall": float((real_fake <= fake_r3[None, :]).any(1).mean()),
        "density": float((real_fake < real_r5[:, None]).sum(0).mean() / k_dc),
        "coverage": float((real_fake.min(1) < real_r5).mean()),
    }


def test_kth_neighbour_radii_exclude_the_point_itself() -> None:
    radii = kth_neighbour_radii(on_x_axis(0, 1, 3, 7), k=1)
    np.testing.assert_allclose(radii.numpy(), [1, 1, 2, 4])
    radii = kth_neighbour_radii(on_x_axis(0, 1, 3, 7), k=2)
    np.testing.assert_allclose(radii.numpy(), [3, 2, 3, 6])
    # An exact duplicate is a neighbour at distance 0.
    np.testing.assert_allclose(kth_neighbour_radii(on_x_axis(0, 0, 5), k=1).numpy(), [0, 0, 5])


def test_precision_recall_of_a_set_against_itself_is_one() -> None:
    features = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert precision_recall(features, features) == {"precision": 1.0, "recall": 1.0}
    assert density_coverage(features, features)["coverage"] == 1.0


def test_precision_recall_hand_computed() -> None:
    real = on_x_axis(0, 1, 2, 3, 4)  # k = 1: every real radius is 1
    # 0.5, 2.0 and 4.9 lie within 1 of a real point (closed balls); 10 does not.
    result = precision_recall(real, on_x_axis(0.5, 10, 4.9, 2.0), k=1)
    assert result["precision"] == pytest.approx(3 / 4)
    # fake {0, 0.5, 1} with k = 1 has radii 0.5: only real 0 and 1 are inside the fake manifold.
    result = precision_recall(real, on_x_axis(0, 0.5, 1), k=1)
    assert result == {"precision": 1.0, "recall": pytest.approx(2 / 5)}


def test_density_coverage_hand_computed() -> None:
    real = on_x_axis(0, 1, 2, 3, 4)  # k = 1: radii 1, open balls
    fake = on_x_axis(0.5, 2.5, 10)
    # 0.5 is inside the balls of 0 and 1, 2.5 inside those of 2 and 3, 10 in none: density = 4 / (1 * 3).
    # Real 0, 1, 2, 3 have a fake sample strictly within 1; real 4 (nearest fake 2.5) does not.
    result = density_coverage(real, fake, k=1)
    assert result["density"] == pytest.approx(4 / 3)
    assert result["coverage"] == pytest.approx(4 / 5)


def test_matches_full_matrix_reference_and_is_independent_of_chunk_size() -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((120, 8))
    fake = rng.standard_normal((90, 8)) * 1.3 + 0.4
    expected = reference_prdc(real, fake, k_pr=3, k_dc=5)
    for chunk_size in (7, 1024):
        got = {**precision_recall(real, fake, chunk_size=chunk_size), **density_coverage(real, fake, chunk_size=chunk_size)}
        assert got == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected["precision"] < 1.0 and 0.0 < expected["recall"] < 1.0


def test_shifted_fake_set_loses_precision_and_coverage() -> None:
    rng = np.random.default_rng(1)
    real = rng.standard_normal((300, 4))
    far = rng.standard_normal((300, 4)) + 10.0
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, far) == {"density": 0.0, "coverage": 0.0}


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (lambda: precision_recall(np.ones((3, 2)), np.ones((10, 2)), k=3), DataError, "needs at least 4"),
        (lambda: precision_recall(np.ones((10, 2)), np.ones((3, 2)), k=3), DataError, "recall with k=3 needs at least 4"),
        (lambda: density_coverage(np.ones((10, 2)), np.ones((10, 3))), DataError, "has 2 features per sample"),
        (lambda: density_coverage(np.ones((10, 2)), np.ones((10, 2)), k=0), ConfigError, "positive integer"),
        (lambda: precision_recall(np.ones((10, 2, 2)), np.ones((10, 2))), DataError, "2-D"),
    ],
)
def test_bad_input(call, error, fragment: str) -> None:
    with pytest.raises(error) as raised:
        call()
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
