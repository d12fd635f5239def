"""Pixelwise feature vector normalisation (Karras et al. 2018, ProGAN section 4.2; spec 22.3).

    b_{x,y} = a_{x,y} / sqrt((1/N) sum_j (a^j_{x,y})^2 + eps),   eps = 1e-8, N the number of channels

applied in the generator after every convolution (and, in the authors' code, to the latent z: ``normalize_latents``),
so the feature vector at each pixel has unit mean square. It replaces batch normalisation: it has no parameters and no
batch statistics, and keeps signal magnitudes from escalating in the competition between G and D.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class PixelNorm(nn.Module):
    """Normalise dimension 1 (channels of (N, C, H, W), or features of (N, C)) to unit mean square."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"
