"""``toy:ring8`` and ``toy:grid25``: the 2-D Gaussian mixtures of the mode-collapse literature.

ring8: 8 modes evenly spaced on a circle of radius 2, std 0.02 (Unrolled GAN, VEEGAN, PacGAN).
grid25: a 5x5 grid of modes at {-4,-2,0,2,4}^2, std 0.05 (VEEGAN, PacGAN).
The points are drawn once from the run seed (a pool large enough that sampling from it with
replacement is indistinguishable from fresh draws); labels are the index of the mode.
"""
from __future__ import annotations

import math

import torch

from ..errors import DataError
from .base import Dataset, register_source

POOL_SIZE = 100_000


def mode_centers(name: str) -> tuple[torch.Tensor, float]:
    """Centres (K x 2) and standard deviation of a toy mixture."""
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles)], 1).float(), 0.02
    if name == "grid25":
        ticks = torch.arange(-4.0, 5.0, 2.0)
        gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
        return torch.stack([gx.flatten(), gy.flatten()], 1), 0.05
    raise DataError(f"unknown toy data 'toy:{name}'; use toy:ring8 or toy:grid25")


def sample_mixture(name: str, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centers, std = mode_centers(name)
    k = torch.randint(len(centers), (n,), generator=generator)
    x = centers[k] + std * torch.randn(n, 2, generator=generator)
    return x, k


@register_source("toy", "2-D Gaussian mixtures: toy:ring8 (8 modes, r=2, std 0.02), toy:grid25 (5x5, std 0.05)",
                 keys=("vector",))
def _toy(arg: str, seed: int) -> Dataset:
    centers, _ = mode_centers(arg)
    g = torch.Generator().manual_seed(10_007 * seed + 17)
    x, k = sample_mixture(arg, POOL_SIZE, g)
    return Dataset(x=x, y=k, name=f"toy:{arg}", kind="vector", class_names=[f"mode{i}" for i in range(len(centers))],
                   meta={"toy": arg})
