"""PatchGAN discriminator: a fully convolutional critic that scores every overlapping patch of its input.

Isola et al. 2017 (pix2pix, arXiv 1611.07004) section 3.2.2 and appendix 6.1.2; used unchanged by CycleGAN (Zhu et
al. 2017) and, without normalisation, by StarGAN (Choi et al. 2018). Seed 001's pix2pix section (spec 25.2): "the
discriminator is given the source image and the target image"; the pairing (concatenating input and output along
channels) is the algorithm's, so here ``channels`` is whatever the algorithm feeds (pix2pix: input + output).

Layers, for ``filters`` = 64 and ``n_layers`` = 3 (the paper's 70 x 70 PatchGAN):
  C64 (k4 s2, no norm) -> C128 (k4 s2) -> C256 (k4 s2) -> C512 (k4 s1) -> conv k4 s1 to 1 channel
where Ck = Conv -> norm -> LeakyReLU(0.2); widths double per layer up to 8 x filters. The output is a map of raw
scores, one per patch (the loss averages it): 30 x 30 for 256 px inputs. ``n_layers`` = 1 is the 16 x 16 patch
variant, 4 or 5 the 142 / 286 px ones (appendix 6.1.2). Weights N(0, 0.02), as the official code.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import Norm2d, check_widths, norm2d, uses_bias
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = "Isola et al. 2017 (pix2pix) section 3.2.2 and appendix 6.1.2: the 70x70 PatchGAN"


def receptive_field(n_layers: int, kernel_size: int = 4) -> int:
    """Side in pixels of the input patch that one output score sees (70 for n_layers 3 and kernel 4)."""
    strides = [2] * n_layers + [1, 1]
    field = 1
    for s in reversed(strides):
        field = (field - 1) * s + kernel_size
    return field


@register_network("discriminator", "patchgan", SOURCE)
class PatchGANDiscriminator(nn.Module):
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    def __init__(self, channels: int = 3, image_size: int = 256, filters: int = 64, n_layers: int = 3,
                 norm: Norm2d = "batch", leaky_slope: float = 0.2, init: InitScheme = "dcgan"):
        super().__init__()
        check_widths([filters], "filters")
        if n_layers < 1:
            raise ConfigError(f"networks.D.n_layers must be >= 1 (3 is the 70x70 PatchGAN), got {n_layers}")
        # Each stride-2 layer halves the map; k4 s1 layers then take 1 pixel off twice: at least a 1 x 1 output.
        smallest = 2 ** n_layers * 3
        if image_size < smallest:
            fit = max([n for n in range(1, n_layers) if image_size >= 2 ** n * 3] or [1])
            raise ConfigError(f"a PatchGAN with n_layers={n_layers} needs images of at least {smallest} px, got "
                              f"{image_size}; use --set networks.D.n_layers={fit}")
        bias = uses_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(channels, filters, 4, 2, 1), nn.LeakyReLU(leaky_slope, inplace=True)]
        width = filters
        for i in range(1, n_layers + 1):
            out = filters * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(width, out, 4, stride, 1, bias=bias), norm2d(norm, out),
                       nn.LeakyReLU(leaky_slope, inplace=True)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers
        init_weights(self, init)

    @property
    def patch_size(self) -> int:
        return receptive_field(self.n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw scores N x 1 x H' x W', one per patch."""
        return self.model(x)
