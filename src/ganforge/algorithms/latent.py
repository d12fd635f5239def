"""Latent noise distributions of the seeds: U(-1, 1) (seed 000/003/004 book code) and N(0, std^2) (seed 001)."""
from __future__ import annotations

from typing import Literal

import torch

LatentDist = Literal["uniform", "normal"]


def draw_latent(n: int, dim: int, dist: LatentDist, std: float, device: torch.device | str,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``generator`` (a CPU generator) makes the draw reproducible across devices (sample grids, ``sample``);
    without it, training noise comes from the device's global RNG, which checkpoints save and restore."""
    if generator is not None:
        z = torch.rand(n, dim, generator=generator) if dist == "uniform" else torch.randn(n, dim, generator=generator)
        z = z.to(device)
    else:
        z = torch.rand(n, dim, device=device) if dist == "uniform" else torch.randn(n, dim, device=device)
    return z * 2 - 1 if dist == "uniform" else z * std
