"""GAN-INT-CLS networks: the text-conditional DCGAN of Reed et al. 2016, "Generative Adversarial Text to Image
Synthesis" (section 3.1, figure 2).

Both networks take phi(t), the frozen text encoder's sentence embedding (``text_dim``, the ``algorithm.text_dim``
context fact), and compress it with their own fully connected layer to ``proj_dim`` = 128 followed by leaky ReLU
(slope 0.2), as the paper does.

``gan-int-cls`` generator: ``concat[z, proj(phi(t))]`` -> a transposed conv to a 4 x 4 map of ``widths[0]`` channels
-> BN -> ReLU, then per doubling a transposed conv (k4, s2) -> BN -> ReLU through ``widths[1:]``, a last transposed
conv to ``channels`` -> tanh (Radford et al.'s DCGAN, which the paper builds on). 64 x 64 with ``widths`` (512, 256,
128, 64) is the paper's (ngf 64; recalled from Reed's Torch code, not checked against it). Any power-of-two image size
>= 8: the number of doublings follows from it, ``widths`` gives at least that many layers' widths.

``gan-int-cls`` discriminator: conv (k4, s2) -> leaky ReLU (no BN on the first layer), then conv (k4, s2) -> BN ->
leaky ReLU until the map is 4 x 4; there ``proj(phi(t))`` is replicated spatially and depth-concatenated, then a
1 x 1 conv -> BN -> leaky ReLU and a 4 x 4 conv to one raw score (the sigmoid is in the objective's loss).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..nn.spectral import apply_spectral_norm
from .common import GeneratorBase, OutputActivation, check_widths, output_activation
from .registry import register_network

REED = "Reed et al. 2016, Generative Adversarial Text to Image Synthesis (GAN-INT-CLS), section 3.1 / figure 2"


def _doublings(image_size: int, arch: str) -> int:
    """log2(image_size / 4): the networks go 4 x 4 <-> image_size by doublings."""
    k = int(round(math.log2(max(image_size, 1) / 4)))
    if image_size < 8 or 4 * 2 ** k != image_size:
        raise ConfigError(f"the {arch} networks need a power-of-two image size >= 8 (they double from 4 x 4), got "
                          f"{image_size}; use --set data.image_size=32 (or 64)")
    return k


def _widths(widths: Sequence[int], needed: int, where: str) -> list[int]:
    check_widths(widths, where)
    if len(widths) < needed:
        raise ConfigError(f"{where} needs at least {needed} widths for this image size, got {list(widths)}")
    return list(widths)[:needed]


class TextProjection(nn.Sequential):
    """phi(t) -> FC(proj_dim) -> leaky ReLU(0.2): the compression both of Reed's networks apply to the embedding."""

    def __init__(self, text_dim: int, proj_dim: int):
        if text_dim < 1 or proj_dim < 1:
            raise ConfigError(f"text_dim and proj_dim must be >= 1, got {text_dim} and {proj_dim}")
        super().__init__(nn.Linear(text_dim, proj_dim), nn.LeakyReLU(0.2))


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. 2016): weights N(0, 0.02), BN scales N(1, 0.02), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@register_network("generator", "gan-int-cls", REED)
class TextToImageGenerator(GeneratorBase):
    takes_text = True

    def __init__(self, latent_dim: int, text_dim: int, image_size: int = 64, channels: int = 3, proj_dim: int = 128,
                 widths: Sequence[int] = (512, 256, 128, 64), out_activation: OutputActivation = "tanh"):
        super().__init__()
        ups = _doublings(image_size, "gan-int-cls")
        w = _widths(widths, ups, "networks.G.widths")
        self.latent_dim, self.text_dim, self.out_activation = latent_dim, text_dim, out_activation
        self.project = TextProjection(text_dim, proj_dim)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim + proj_dim, w[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(w[0]), nn.ReLU(True)]
        for a, b in zip(w[:-1], w[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(w[-1], channels, 4, 2, 1), output_activation(out_activation)]
        self.body = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """z: N x latent_dim; text: N x text_dim, phi(t)."""
        h = torch.cat([z, self.project(text.to(z.dtype))], 1)
        return self.body(h.view(len(h), -1, 1, 1))


@register_network("discriminator", "gan-int-cls", REED)
class TextToImageDiscriminator(nn.Module):
    takes_text = True

    def __init__(self, text_dim: int, image_size: int = 64, channels: int = 3, proj_dim: int = 128,
                 widths: Sequence[int] = (64, 128, 256, 512), spectral_norm: bool = False):
        super().__init__()
        downs = _doublings(image_size, "gan-int-cls")
        w = _widths(widths, downs, "networks.D.widths")
        self.text_dim = text_dim
        layers: list[nn.Module] = [nn.Conv2d(channels, w[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for a, b in zip(w[:-1], w[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        self.trunk = nn.Sequential(*layers)                                   # -> N x w[-1] x 4 x 4
        self.project = TextProjection(text_dim, proj_dim)
        self.joint = nn.Sequential(nn.Conv2d(w[-1] + proj_dim, w[-1], 1, 1, 0, bias=False), nn.BatchNorm2d(w[-1]),
                                   nn.LeakyReLU(0.2, True))
        self.head = nn.Conv2d(w[-1], 1, 4, 1, 0)
        _dcgan_init(self)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Raw scores N of (image, phi(t)) pairs."""
        h = self.trunk(x)
        t = self.project(text.to(h.dtype)).view(len(x), -1, 1, 1).expand(-1, -1, h.shape[2], h.shape[3])
        return self.head(self.joint(torch.cat([h, t], 1))).view(len(x))
