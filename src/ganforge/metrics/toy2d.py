"""Mode-collapse metrics for the 2-D toy mixtures ``ring8`` and ``grid25``.

The protocol of the mode-collapse literature (Metz et al. 2017 "Unrolled GANs" for the ring;
Srivastava et al. 2017 "VEEGAN", section 5.1; Lin et al. 2018 "PacGAN", section 3.1 for both):

* every generated sample is assigned to its nearest mode centre;
* it is *high quality* when it lies within 3 standard deviations of that centre (Euclidean
  distance ``<= 3 * std``; for a 2-D isotropic Gaussian this holds for ``1 - exp(-9/2)`` = 98.9 %
  of true samples, so real data scores ~0.989, not 1);
* a mode is *covered* when at least ``min_count`` high-quality samples are assigned to it;
* ``reverse_kl`` = KL(p_gen || p_data) between the histogram of high-quality samples over the
  modes and the uniform mode distribution of the data (PacGAN reports this reverse KL).

``min_count`` defaults to 20, a ganforge choice: the papers evaluate 2,500 generated samples and
count a mode only when enough high-quality samples land in it, so that a few stray points do not
count as covering it. 20 of 2,500 is 0.8 % of the samples, a fifth of the 100 an ideal generator
puts in each of the 25 grid modes. Pass ``min_count=1`` for the loosest reading ("any
high-quality sample"). Reported values depend on N, so compare runs at the same N.

Centres and std come from :func:`ganforge.data.toy2d.mode_centers` (ring: radius 2, std 0.02;
grid: 5 x 5 at {-4, ..., 4}, std 0.05).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..data.toy2d import mode_centers
from ..errors import ConfigError, DataError

__all__ = ["toy_mode_metrics", "QUALITY_STDS", "DEFAULT_MIN_COUNT", "KL_EPSILON"]

# A sample is high quality within this many standard deviations of its nearest mode (VEEGAN, PacGAN).
QUALITY_STDS = 3.0
DEFAULT_MIN_COUNT = 20
# Floor inside the logarithm: only makes the 0 * log 0 terms of empty modes evaluate to 0 instead of
# NaN; for a non-empty mode (p >= 1/N) it changes nothing.
KL_EPSILON = 1e-12


def _as_points(samples: Any) -> torch.Tensor:
    if isinstance(samples, np.ndarray):
        if not (np.issubdtype(samples.dtype, np.floating) or np.issubdtype(samples.dtype, np.integer)):
            raise DataError(f"toy samples must hold real numbers; got an array of dtype {samples.dtype}")
        samples = torch.from_numpy(samples)
    if not isinstance(samples, torch.Tensor):
        raise DataError(f"toy samples must be a tensor or array of shape (N, 2); got {type(samples).__name__}")
    if samples.is_complex() or samples.dtype == torch.bool:
        raise DataError(f"toy samples must hold real numbers; got dtype {samples.dtype}")
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise DataError(f"toy samples must have shape (N, 2); got {tuple(samples.shape)}")
    if samples.shape[0] == 0:
        raise DataError("toy samples are empty; generate at least one sample (the papers use 2,500)")
    points = samples.detach().to("cpu", torch.float64)
    if not torch.isfinite(points).all():
        raise DataError("toy samples contain NaN or inf; the generator diverged")
    return points


def toy_mode_metrics(samples: Any, toy: str, min_count: int = DEFAULT_MIN_COUNT) -> dict[str, Any]:
    """Mode coverage and sample quality of ``samples`` (N x 2) against the ``toy`` mixture.

    ``toy`` is ``"ring8"`` or ``"grid25"`` (a ``"toy:"`` prefix is accepted). Returns a dict:

    * ``modes_covered`` (int): modes with at least ``min_count`` high-quality samples;
    * ``num_modes`` (int): K, the number of modes of the mixture;
    * ``high_quality`` (float): share of all samples within 3 std of their nearest mode;
    * ``reverse_kl`` (float): KL(p || uniform) = sum_k p_k log(K p_k) over the high-quality
      histogram; 0 for perfectly balanced modes, log K when all mass sits in one mode. With no
      high-quality sample at all the histogram is undefined and the worst value, log K, is reported;
    * ``mode_histogram`` (list[int]): high-quality samples assigned to each mode, in the order of
      :func:`ganforge.data.toy2d.mode_centers`.
    """
    if not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"min_count must be a positive integer; got {min_count!r}")
    name = toy.removeprefix("toy:") if isinstance(toy, str) else toy
    if name not in ("ring8", "grid25"):
        raise ConfigError(f"unknown toy mixture {toy!r} for mode metrics; use 'ring8' or 'grid25'")
    centres, std = mode_centers(name)
    centres = centres.to(torch.float64)
    points = _as_points(samples)

    distances = torch.cdist(points, centres)
    nearest_distance, nearest_mode = distances.min(dim=1)
    high_quality = nearest_distance <= QUALITY_STDS * std
    num_modes = centres.shape[0]
    histogram = torch.bincount(nearest_mode[high_quality], minlength=num_modes)

    total = int(histogram.sum())
    if total == 0:
        reverse_kl = math.log(num_modes)
    else:
        p_gen = histogram.double() / total
        reverse_kl = float((p_gen * torch.log(p_gen.clamp(min=KL_EPSILON) * num_modes)).sum())
    return {
        "modes_covered": int((histogram >= min_count).sum()),
        "num_modes": num_modes,
        "high_quality": float(high_quality.double().mean()),
        "reverse_kl": reverse_kl,
        "mode_histogram": [int(count) for count in histogram],
    }
