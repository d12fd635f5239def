"""StarGAN's networks: the generator G(x, c) and the discriminator with two heads, D_src (real/fake per patch) and D_cls
(the domain of the whole image).

Choi et al. 2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation"
(CVPR), section 3 and appendix tables 4 and 5, in the official code's form (yunjey/stargan ``model.py``).

Generator (table 4, ``model.Generator``), with ``filters`` = 64 and ``n_blocks`` = 6:

  input: the image with the condition c (N x cond_dim) replicated over the plane as cond_dim extra channels;
  conv k7 s1 p3 (-> 64), IN, ReLU; two convs k4 s2 p1 doubling the width (128, 256), IN, ReLU;
  n_blocks residual blocks x + [conv k3 s1 p1, IN, ReLU, conv k3 s1 p1, IN];
  two transposed convs k4 s2 p1 halving the width (128, 64), IN, ReLU; conv k7 s1 p3 to the image's channels, tanh.
  Every conv without bias (IN's affine shift replaces it); IN with a learned scale and shift (affine).

The padding is ZERO padding, and it matters: the condition's planes are constant, so the first conv maps them to a
constant per channel except within 3 px of the border, where the zero padding cuts the kernel off; instance norm
then removes each channel's constant, and what carries c on is that border pattern (and, through it, every
channel's statistics, so c reaches the whole image). With reflection padding (the CycleGAN translator's) the planes
stay exactly constant and instance norm erases the condition entirely: G(x, c) does not depend on c
(``resnet-translator`` with ``cond_dim`` and instance norm, which the digit recipe once used and which is why it did
not learn; the stargan algorithm now refuses a G whose output ignores c). Deviation: IN keeps no running statistics
(the official code's ``track_running_stats=True`` would make an eval-mode G use averages over every domain's
images; its test code runs G in training mode, i.e. on each image's own statistics, as here). Weights: PyTorch's
default initialisation, as the official code (``init`` picks another scheme). The image side must be a multiple of
4 (two halvings).

Discriminator (table 5, ``model.Discriminator``), with ``filters`` = 64 and ``n_layers`` = 6 at 128 px:

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
from .common import check_image_size, check_widths
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = ("Choi et al. 2018 (StarGAN) section 3 and appendix table 5; the official code's Discriminator "
          "(yunjey/stargan): a norm-free PatchGAN with a source head and a domain classification head")
G_SOURCE = ("Choi et al. 2018 (StarGAN) section 3 and appendix table 4; the official code's Generator "
            "(yunjey/stargan): G(x, c) with c replicated over the plane, zero-padded convs, affine instance norm")
DOWNSAMPLINGS = 2


def instance_norm(width: int) -> nn.InstanceNorm2d:
    """StarGAN's instance norm: a learned scale and shift per channel, each image's own statistics (no running
    averages; the module docstring says why)."""
    return nn.InstanceNorm2d(width, affine=True, track_running_stats=False)


class StarGANResidualBlock(nn.Module):
    """x + [conv k3 s1 p1, IN, ReLU, conv k3 s1 p1, IN](x), convs without bias (the official ResidualBlock)."""

    def __init__(self, width: int):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), instance_norm(width),
                                   nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, 1, 1, bias=False),
                                   instance_norm(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


@register_network("generator", "stargan", G_SOURCE)
class StarGANGenerator(nn.Module):
    """Image and condition in, image of the same size out, in [-1, 1]."""

    value_range = (-1.0, 1.0)
    out_activation = "tanh"

    def __init__(self, channels: int = 3, image_size: int = 128, sample_shape: tuple[int, ...] | None = None,
                 cond_dim: int = 5, filters: int = 64, n_blocks: int = 6, init: InitScheme = "pytorch"):
        super().__init__()
        check_widths([filters], "filters")
        check_image_size(image_size, 2 ** DOWNSAMPLINGS, "stargan generator")
        if cond_dim < 1:
            raise ConfigError(f"the stargan generator takes a condition of cond_dim >= 1 entries, got {cond_dim}")
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0 (the paper: 6), got {n_blocks}")
        out_channels = int(sample_shape[0]) if sample_shape else channels
        self.channels, self.out_channels, self.cond_dim, self.n_blocks = channels, out_channels, cond_dim, n_blocks
        layers: list[nn.Module] = [nn.Conv2d(channels + cond_dim, filters, 7, 1, 3, bias=False),
                                   instance_norm(filters), nn.ReLU(inplace=True)]
        width = filters
        for _ in range(DOWNSAMPLINGS):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), instance_norm(width * 2),
                       nn.ReLU(inplace=True)]
            width *= 2
        layers += [StarGANResidualBlock(width) for _ in range(n_blocks)]
        for _ in range(DOWNSAMPLINGS):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), instance_norm(width // 2),
                       nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.Conv2d(width, out_channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x``: N x channels x H x W; ``cond``: N x cond_dim, replicated over H x W and concatenated to x."""
        if cond is None or cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            got = "none" if cond is None else f"shape {tuple(cond.shape)}"
            raise ValueError(f"this generator takes a condition of N x {self.cond_dim}, got {got}")
        plane = cond.to(x.dtype).view(*cond.shape, 1, 1).expand(-1, -1, *x.shape[-2:])
        return self.model(torch.cat([x, plane], 1))


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
