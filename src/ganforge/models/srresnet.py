"""SRResNet, the super-resolution generator, and SRGAN's VGG-style discriminator (Ledig et al. 2017, figure 4).

Generator ``srresnet`` (the paper's G, named the same in SRResNet and SRGAN runs so that SRGAN starts from an SRResNet
run with ``--init-from``, as the paper initialises it):

  conv 9x9-f + PReLU -> B residual blocks (conv 3x3-f, BN, PReLU, conv 3x3-f, BN, + skip) -> conv 3x3-f + BN,
  + the skip from the first conv -> log2(scale) sub-pixel blocks (conv 3x3-4f, PixelShuffle(2), PReLU)
  -> conv 9x9 to C channels -> tanh

with f = 64 and B = 16 in the paper, scale 4 (x2, x4, x8: any power of two). PReLU has one slope per channel. The
paper feeds LR inputs in [0, 1] and produces HR images in [-1, 1]: here the ``lowres`` field arrives in the model's
value range like every image field (make_batch), so G maps it back to [0, 1] as its first operation
(``(x - lo) / (hi - lo)``, with (lo, hi) its output range: (-1, 1) for tanh), and the rest is the paper's network.

Discriminator ``srgan-vgg``: eight conv 3x3 layers of widths f x (1, 1, 2, 2, 4, 4, 8, 8) (f = 64: 64 ... 512), stride
2 on the second of each pair (where the width repeats), BN on all but the first, LeakyReLU 0.2, then Dense 1024 ->
LeakyReLU 0.2 -> Dense 1, a raw score (the paper's sigmoid is in the objective's BCE). The paper's dense layer sees
the 6 x 6 x 512 map of a 96 px crop; here an adaptive average pooling to ``head_pool`` x ``head_pool`` (default 6)
comes first, which is the identity on 96 px inputs (the paper's network exactly) and lets D judge any image size.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import VALUE_RANGES, GeneratorBase, Norm2d, OutputActivation, check_widths, norm2d, output_activation, uses_bias
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = "Ledig et al. 2017 (SRGAN), figure 4: SRResNet generator (residual blocks, sub-pixel x2 upsampling)"
D_SOURCE = "Ledig et al. 2017 (SRGAN), figure 4: the VGG-style discriminator (8 conv 3x3, Dense 1024, Dense 1)"
SCALES = (2, 4, 8, 16)


def upsampling_blocks(scale: int) -> int:
    """The number of x2 sub-pixel blocks for ``scale`` (a power of two), or a ConfigError line."""
    if scale not in SCALES:
        raise ConfigError(f"SRResNet upsamples by powers of two (x2 sub-pixel blocks): scale must be one of "
                          f"{', '.join(map(str, SCALES))}, got {scale}")
    return int(math.log2(scale))


class ResidualBlock(nn.Module):
    """conv 3x3 - BN - PReLU - conv 3x3 - BN, plus the input (figure 4's B residual blocks)."""

    def __init__(self, width: int, norm: Norm2d):
        super().__init__()
        bias = uses_bias(norm)
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=bias), norm2d(norm, width),
                                  nn.PReLU(width), nn.Conv2d(width, width, 3, 1, 1, bias=bias), norm2d(norm, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SubPixelBlock(nn.Module):
    """conv 3x3 to 4x the width, PixelShuffle(2) (Shi et al. 2016: each 2x2 output block from 4 channels), PReLU."""

    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Conv2d(width, 4 * width, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


@register_network("generator", "srresnet", SOURCE)
class SRResNet(GeneratorBase):
    """LR images (N x C x H/scale x W/scale, in the model's range) -> HR images (N x C x H x W)."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    latent_dim = 0

    def __init__(self, channels: int = 3, scale: int = 4, filters: int = 64, blocks: int = 16,
                 norm: Norm2d = "batch", out_activation: OutputActivation = "tanh", init: InitScheme = "pytorch"):
        super().__init__()
        check_widths([filters], "networks.G.filters")
        if blocks < 0:
            raise ConfigError(f"networks.G.blocks must be >= 0 (the paper: 16), got {blocks}")
        if out_activation == "none":
            raise ConfigError("networks.G.out_activation must be tanh (the paper: HR in [-1, 1]) or sigmoid; "
                              "SRResNet's input is rescaled from the model's range, which 'none' does not fix")
        self.channels, self.scale, self.out_activation = channels, scale, out_activation
        n_up = upsampling_blocks(scale)
        bias = uses_bias(norm)
        self.head = nn.Sequential(nn.Conv2d(channels, filters, 9, 1, 4), nn.PReLU(filters))
        self.blocks = nn.Sequential(*[ResidualBlock(filters, norm) for _ in range(blocks)])
        self.post = nn.Sequential(nn.Conv2d(filters, filters, 3, 1, 1, bias=bias), norm2d(norm, filters))
        self.upsample = nn.Sequential(*[SubPixelBlock(filters) for _ in range(n_up)])
        self.tail = nn.Conv2d(filters, channels, 9, 1, 4)
        self.out = output_activation(out_activation)
        init_weights(self, init)

    def forward(self, lowres: torch.Tensor) -> torch.Tensor:
        lo, hi = VALUE_RANGES[self.out_activation]
        x = (lowres - lo) / (hi - lo)          # the paper's LR input range, [0, 1]
        head = self.head(x)
        x = head + self.post(self.blocks(head))   # the global skip around the residual blocks
        return self.out(self.tail(self.upsample(x)))


@register_network("discriminator", "srgan-vgg", D_SOURCE)
class SRGANDiscriminator(nn.Module):
    """HR images N x C x H x W -> raw scores N x 1 (any H, W >= 1: see ``head_pool`` in the module docstring)."""

    def __init__(self, channels: int = 3, filters: int = 64, dense: int = 1024, head_pool: int = 6,
                 norm: Norm2d = "batch", leaky_slope: float = 0.2, init: InitScheme = "pytorch"):
        super().__init__()
        check_widths([filters, dense], "networks.D.filters and networks.D.dense")
        if head_pool < 1:
            raise ConfigError(f"networks.D.head_pool must be >= 1 (6: the paper's 6 x 6 map of a 96 px crop), "
                              f"got {head_pool}")
        widths = [filters * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        layers: list[nn.Module] = []
        width = channels
        for i, out in enumerate(widths):
            stride = 2 if i % 2 else 1            # the second of each pair, where the width repeats
            first = i == 0
            layers.append(nn.Conv2d(width, out, 3, stride, 1, bias=first or uses_bias(norm)))
            if not first:
                layers.append(norm2d(norm, out))
            layers.append(nn.LeakyReLU(leaky_slope, inplace=True))
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(head_pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * head_pool * head_pool, dense),
                                  nn.LeakyReLU(leaky_slope, inplace=True), nn.Linear(dense, 1))
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))
