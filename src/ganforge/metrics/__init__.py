"""Sample-quality metrics: FID, KID, IS, precision/recall, density/coverage, 2-D toy mode metrics; paired metrics
(L1, PSNR, SSIM) where a true target exists, and content preservation of translations.

The metric functions here are pure: they take feature matrices (or class probabilities, or 2-D
samples) and return numbers. The Inception network that produces the features lives in
:mod:`ganforge.metrics.inception` and is imported lazily (``FIDInceptionV3``, ``load_inception``
resolve on first access), so computing a toy metric never builds a 24M-parameter network.
"""
from __future__ import annotations

from typing import Any

from .content import content_classifier, content_preservation
from .fid import feature_stats, fid_from_features, frechet_distance, frechet_distance_scipy, load_stats, save_stats
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .paired import l1, paired_metrics, psnr, psnr_set, ssim
from .prdc import density_coverage, precision_recall
from .toy2d import toy_mode_metrics

_LAZY_INCEPTION = ("FIDInceptionV3", "load_inception", "WEIGHTS_FILENAME", "WEIGHTS_ENV_VAR", "WEIGHTS_URL")

__all__ = [
    "feature_stats",
    "frechet_distance",
    "frechet_distance_scipy",
    "fid_from_features",
    "save_stats",
    "load_stats",
    "kernel_inception_distance",
    "inception_score",
    "precision_recall",
    "density_coverage",
    "toy_mode_metrics",
    "l1",
    "psnr",
    "psnr_set",
    "ssim",
    "paired_metrics",
    "content_classifier",
    "content_preservation",
    *_LAZY_INCEPTION,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_INCEPTION:
        from . import inception

        return getattr(inception, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
