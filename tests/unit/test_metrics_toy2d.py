"""2-D toy mode metrics on constructed samples with known mode assignments."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data.toy2d import mode_centers, sample_mixture
from ganforge.errors import ConfigError, DataError
from ganforge.metrics.toy2d import toy_mode_metrics


def at_modes(toy: str, counts: dict[int, int], offset: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    centres, _ = mode_centers(toy)
    rows = [centres[mode] + torch.tensor(offset) for mode, count in counts.items() for _ in range(count)]
    return torch.stack(rows)


def test_ring8_constructed_histogram_coverage_quality_and_reverse_kl() -> None:
    on_modes = at_modes("ring8", {0: 25, 3: 25, 5: 5})
    far_away = torch.zeros(10, 2)  # the ring's centre is 2 = 100 std from every mode
    result = toy_mode_metrics(torch.cat([on_modes, far_away]), "ring8")
    assert result["mode_histogram"] == [25, 0, 0, 25, 0, 5, 0, 0]
    assert result["modes_covered"] == 2  # mode 5 has 5 < 20 high-quality samples
    assert result["num_modes"] == 8
    assert result["high_quality"] == pytest.approx(55 / 65)
    p = np.array([25, 25, 5]) / 55
    assert result["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(8 * p))), rel=1e-12)
    assert toy_mode_metrics(torch.cat([on_modes, far_away]), "ring8", min_count=5)["modes_covered"] == 3


def test_three_std_boundary_of_high_quality() -> None:
    _, std = mode_centers("ring8")  # 0.02: the radius is 0.06
    inside = at_modes("ring8", {1: 1}, offset=(0.0, 2.9 * std))
    outside = at_modes("ring8", {1: 1}, offset=(3.1 * std, 0.0))
    result = toy_mode_metrics(torch.cat([inside, outside]), "ring8", min_count=1)
    assert result["high_quality"] == 0.5
    assert result["mode_histogram"][1] == 1


def test_true_grid25_samples_cover_every_mode_with_expected_quality() -> None:
    points, _ = sample_mixture("grid25", 2500, torch.Generator().manual_seed(0))
    result = toy_mode_metrics(points, "toy:grid25")
    assert result["modes_covered"] == 25
    # P(|x - mu| <= 3 std) for a 2-D isotropic Gaussian is 1 - exp(-9/2) = 0.9889.
    assert result["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    # A balanced multinomial histogram of 2,500 draws has reverse KL about (K - 1) / (2 N) = 0.005.
    assert 0.0 < result["reverse_kl"] < 0.03
    assert sum(result["mode_histogram"]) == round(result["high_quality"] * 2500)


def test_total_collapse_and_no_high_quality_samples() -> None:
    collapsed = toy_mode_metrics(at_modes("grid25", {12: 100}), "grid25")
    assert collapsed["modes_covered"] == 1
    assert collapsed["reverse_kl"] == pytest.approx(math.log(25))
    nowhere = toy_mode_metrics(np.full((40, 2), 1.0), "grid25")  # (1, 1): sqrt(2) = 28 std from the nearest mode
    assert nowhere["high_quality"] == 0.0 and nowhere["modes_covered"] == 0
    assert nowhere["reverse_kl"] == pytest.approx(math.log(25))
    assert nowhere["mode_histogram"] == [0] * 25


@pytest.mark.parametrize(
    "samples, toy, options, error, fragment",
    [
        (torch.zeros(10, 3), "ring8", {}, DataError, "shape (N, 2)"),
        (torch.zeros(0, 2), "ring8", {}, DataError, "empty"),
        (torch.full((4, 2), float("nan")), "ring8", {}, DataError, "NaN"),
        (torch.zeros(4, 2), "ring16", {}, ConfigError, "use 'ring8' or 'grid25'"),
        (torch.zeros(4, 2), "ring8", {"min_count": 0}, ConfigError, "min_count"),
        ([[0.0, 0.0]], "ring8", {}, DataError, "tensor or array"),
    ],
)
def test_bad_input(samples, toy: str, options, error, fragment: str) -> None:
    with pytest.raises(error) as raised:
        toy_mode_metrics(samples, toy, **options)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
