"""The encoder, decoder and discriminator of VAE-GAN (Larsen et al. 2016).

Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a learned similarity metric" (ICML;
arXiv 1512.09300), the CelebA networks of its appendix table (as recalled, not checked against its text here; seed 002
chapter 3 part 3 and spec 30.2 give only encoder -> z -> decoder -> discriminator):

  Encoder: [Conv 5x5 s2 -> BN -> ReLU] x (64, 128, 256) -> Linear 2048 -> BN -> ReLU -> (mu, log sigma^2) of z.
  Decoder: Linear 8*8*256 -> BN -> ReLU -> [ConvTranspose 5x5 s2 -> BN -> ReLU] x (256, 128, 32) -> Conv 5x5 -> tanh.
  Discriminator: Conv 5x5 s1 (32) -> ReLU -> [Conv 5x5 s2 -> BN -> ReLU] x (128, 256, 256) -> Linear 512 -> BN ->
  ReLU -> Linear 1 (the probability of "real" through a sigmoid, folded into the loss here).

``encoder`` ``vaegan-conv``: the conv trunk above, on the stochastic ``Encoder`` of BiGAN / ALI (``models/bigan.py``:
``moments`` gives mu and the log-variance, ``forward`` the reparameterised sample, ``mean`` what ``ganforge encode``
writes), so VAE-GAN and ALI share one encoder vocabulary.
``generator`` ``vaegan-conv``: the decoder above; ``filters`` gives one 2x up-convolution per width, so 28 px digits
take two (7 -> 14 -> 28) and 64 px faces three (8 -> 16 -> 32 -> 64).
``discriminator`` ``vaegan-conv``: the discriminator above with ``outputs`` scores per image (1; 3 for the seed's
three-class variant, spec 30.4, set by the algorithm) and ``forward_with_layer(x)`` giving (scores, Dis_l(x)), the
flattened output of conv block ``feature_layer`` (1-based; the paper's "l-th layer", by default the last conv
block), the space in which VAE-GAN measures reconstructions.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from .bigan import Encoder
from .common import GeneratorBase, OutputActivation, check_widths, output_activation
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = "Larsen et al. 2016 (VAE-GAN), appendix network table (CelebA 64x64); spec 30"
KERNEL = 5     # every convolution of the paper's networks is 5x5


def _norm(kind: str, channels: int, where: str, dims: int = 2) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"{where}.norm must be batch or none, got {kind!r}")


def _check_halvings(image_size: int, halvings: int, where: str) -> int:
    """The side after ``halvings`` stride-2 steps; refuses sizes that do not divide."""
    if halvings < 1 or image_size % 2 ** halvings or image_size < 2 ** (halvings + 1):
        raise ConfigError(f"{where}: {halvings} stride-2 steps need data.image_size divisible by {2 ** halvings} (and "
                          f">= {2 ** (halvings + 1)}), got {image_size}; use {where}.filters with fewer widths")
    return image_size // 2 ** halvings


@register_network("encoder", "vaegan-conv", SOURCE)
def vaegan_encoder(latent_dim: int, channels: int = 3, image_size: int = 64, filters: Sequence[int] = (64, 128, 256),
                   hidden: int = 2048, norm: str = "batch", stochastic: bool = True,
                   init: InitScheme = "dcgan") -> Encoder:
    """``filters``: one 5x5 stride-2 conv (BN, ReLU) per width; ``hidden``: the BN-ReLU linear layer before the
    code's mean and log-variance (0: none); ``stochastic``: false gives a deterministic encoder (not a VAE)."""
    check_widths(filters, "networks.E.filters")
    size = _check_halvings(image_size, len(filters), "networks.E")
    if hidden < 0:
        raise ConfigError(f"networks.E.hidden must be >= 0 (0: no hidden layer), got {hidden}")
    layers: list[nn.Module] = []
    in_ch = channels
    for out_ch in filters:
        layers += [nn.Conv2d(in_ch, out_ch, KERNEL, 2, KERNEL // 2, bias=norm != "batch"),
                   _norm(norm, out_ch, "networks.E"), nn.ReLU()]
        in_ch = out_ch
    layers.append(nn.Flatten())
    width = in_ch * size * size
    if hidden:
        layers += [nn.Linear(width, hidden, bias=norm != "batch"), _norm(norm, hidden, "networks.E", dims=1), nn.ReLU()]
    return Encoder(nn.Sequential(*layers), hidden or width, latent_dim, stochastic, init)


@register_network("generator", "vaegan-conv", SOURCE)
class VAEGANDecoder(GeneratorBase):
    """z -> Linear (start^2 * filters[0]) -> BN -> ReLU -> [ConvTranspose 5x5 s2 -> BN -> ReLU] per width -> Conv 5x5
    to the image channels -> ``out_activation`` (the paper's tanh; sigmoid for [0, 1] digits)."""

    def __init__(self, latent_dim: int, image_size: int = 64, channels: int = 3,
                 filters: Sequence[int] = (256, 128, 32), norm: str = "batch",
                 out_activation: OutputActivation = "tanh", init: InitScheme = "dcgan"):
        super().__init__()
        check_widths(filters, "networks.G.filters")
        self.latent_dim, self.out_activation = latent_dim, out_activation
        self.start = _check_halvings(image_size, len(filters), "networks.G")
        self.first = filters[0]
        self.fc = nn.Sequential(nn.Linear(latent_dim, self.first * self.start ** 2, bias=norm != "batch"),
                                _norm(norm, self.first * self.start ** 2, "networks.G", dims=1), nn.ReLU())
        layers: list[nn.Module] = []
        in_ch = self.first
        for out_ch in filters:
            layers += [nn.ConvTranspose2d(in_ch, out_ch, KERNEL, 2, KERNEL // 2, output_padding=1,
                                          bias=norm != "batch"),
                       _norm(norm, out_ch, "networks.G"), nn.ReLU()]
            in_ch = out_ch
        layers.append(nn.Conv2d(in_ch, channels, KERNEL, 1, KERNEL // 2))
        self.blocks = nn.Sequential(*layers)
        self.act = output_activation(out_activation)
        init_weights(self, init)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(self.join_inputs(z, cond)).view(len(z), self.first, self.start, self.start)
        return self.act(self.blocks(h))


@register_network("discriminator", "vaegan-conv", SOURCE)
class VAEGANDiscriminator(nn.Module):
    """Conv 5x5 s1 (``filters[0]``) -> ReLU -> [Conv 5x5 s2 -> BN -> ReLU] per further width -> Linear ``hidden`` ->
    BN -> ReLU -> Linear ``outputs``; ``forward_with_layer`` also gives Dis_l(x), the features of conv block
    ``feature_layer``."""

    def __init__(self, image_size: int = 64, channels: int = 3, filters: Sequence[int] = (32, 128, 256, 256),
                 hidden: int = 512, norm: str = "batch", feature_layer: int | None = None, outputs: int = 1,
                 init: InitScheme = "dcgan"):
        super().__init__()
        check_widths(filters, "networks.D.filters")
        if len(filters) < 2:
            raise ConfigError(f"networks.D.filters needs at least two widths (a stride-1 conv, then stride-2 ones), "
                              f"got {list(filters)}")
        size = _check_halvings(image_size, len(filters) - 1, "networks.D")
        layer = len(filters) if feature_layer is None else feature_layer
        if not 1 <= layer <= len(filters):
            raise ConfigError(f"networks.D.feature_layer must be a conv block 1..{len(filters)} (the layer l of "
                              f"Dis_l), got {feature_layer}")
        if outputs < 1 or hidden < 1:
            raise ConfigError(f"networks.D.hidden and outputs must be >= 1, got {hidden} and {outputs}")
        self.feature_layer, self.outputs = layer, outputs
        blocks: list[nn.Module] = []
        in_ch = channels
        for i, out_ch in enumerate(filters):
            if i == 0:   # the paper's first conv keeps the resolution and has no BN
                blocks.append(nn.Sequential(nn.Conv2d(in_ch, out_ch, KERNEL, 1, KERNEL // 2), nn.ReLU()))
            else:
                blocks.append(nn.Sequential(nn.Conv2d(in_ch, out_ch, KERNEL, 2, KERNEL // 2, bias=norm != "batch"),
                                            _norm(norm, out_ch, "networks.D"), nn.ReLU()))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * size * size, hidden, bias=norm != "batch"),
                                  _norm(norm, hidden, "networks.D", dims=1), nn.ReLU(), nn.Linear(hidden, outputs))
        init_weights(self, init)

    def forward_with_layer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw scores: (B,) for one output, (B, outputs) otherwise; Dis_l(x) flattened, (B, features))."""
        h, features = x, None
        for i, block in enumerate(self.blocks, 1):
            h = block(h)
            if i == self.feature_layer:
                features = h.flatten(1)
        scores = self.head(h)
        return (scores.squeeze(1) if self.outputs == 1 else scores), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_layer(x)[0]
