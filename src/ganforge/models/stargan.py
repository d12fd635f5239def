"""StarGAN discriminator: a PatchGAN trunk without normalisation and two heads, D_src (real/fake per patch) and D_cls
(the domain of the whole image).

Choi et al. 2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation"
(CVPR), section 3 and appendix table 5, in the official code's form (yunjey/stargan ``model.Discriminator``), with
``filters`` = 64 and ``n_layers`` = 6 at 128 px:

  trunk: conv k4 s2 p1 (C -> 64), LeakyReLU(0.01), then n_layers - 1 times conv k4 s2 p1 doubling the width,
         LeakyReLU(0.01); no normalisation (the gradient penalty is per sample). 128 px -> a 2 x 2 map of 2048.
  D_src: conv k3 s1 p1 to 1 channel, no bias: a map of raw real/fake scores, one per patch (2 x 2 at 128 px).
  D_cls: conv with kernel = the final map's side, no bias, to ``cond_dim`` logits: one score per domain / attribute.

Seed 002 chapter 3 part 2 (spec 27): "D has two outputs: the source (real or fake) and the domain classification".
The image side must be a multiple of 2 ** n_layers (28 px digits: n_layers 2, a 7 x 7 map). Weights: PyTorch's
default initialisation, as the official code (``init`` can pick another scheme).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import check_widths
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = ("Choi et al. 2018 (StarGAN) section 3 and appendix table 5; the official code's Discriminator "
          "(yunjey/stargan): a norm-free PatchGAN with a source head and a domain classification head")


class StarGANOutputs(NamedTuple):
    """``source``: N x 1 x h x w raw real/fake scores per patch; ``classes``: N x cond_dim domain logits."""
    source: torch.Tensor
    classes: torch.Tensor


@register_network("discriminator", "stargan", SOURCE)
class StarGANDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, image_size: int = 128, cond_dim: int = 5, filters: int = 64,
                 n_layers: int = 6, leaky_slope: float = 0.01, max_width: int | None = None,
                 init: InitScheme = "pytorch"):
        super().__init__()
        check_widths([filters], "filters")
        if cond_dim < 1:
            raise ConfigError(f"the stargan discriminator classifies into cond_dim >= 1 domains, got {cond_dim}")
        if n_layers < 1 or image_size % 2 ** n_layers or image_size < 2 ** n_layers:
            fits = [n for n in range(1, 8) if image_size % 2 ** n == 0 and image_size >= 2 ** n]
            hint = f"use --set networks.D.n_layers={max(fits)}" if fits else "use an even image size"
            raise ConfigError(f"a stargan discriminator with n_layers={n_layers} halves the image {n_layers} times, "
                              f"so the image side must be a multiple of {2 ** max(n_layers, 1)}, got {image_size}; "
                              f"{hint}")
        layers: list[nn.Module] = [nn.Conv2d(channels, filters, 4, 2, 1), nn.LeakyReLU(leaky_slope)]
        width = filters
        for _ in range(1, n_layers):
            out = width * 2 if max_width is None else min(width * 2, max_width)
            layers += [nn.Conv2d(width, out, 4, 2, 1), nn.LeakyReLU(leaky_slope)]
            width = out
        self.trunk = nn.Sequential(*layers)
        self.final_size = image_size // 2 ** n_layers
        self.source_head = nn.Conv2d(width, 1, 3, 1, 1, bias=False)
        self.class_head = nn.Conv2d(width, cond_dim, self.final_size, bias=False)
        self.cond_dim, self.n_layers = cond_dim, n_layers
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> StarGANOutputs:
        h = self.trunk(x)
        return StarGANOutputs(self.source_head(h), self.class_head(h).flatten(1))
