"""The ResNet generator and discriminator of SNGAN (Miyato et al. 2018, appendix B.4 / table 4) and SAGAN (Zhang et
al. 2019), as torch-mimicry builds them at 32 x 32 (``torch_mimicry/nets/sngan/sngan_32.py``, ``nets/gan/blocks.py``).

``sngan-resnet`` generator (32 px defaults):
  z (128) -> Linear -> 4 x 4 x 256 -> 3 x up-ResBlock(256) -> BN -> ReLU -> conv3x3 -> tanh.
  up-ResBlock: BN -> ReLU -> nearest upsample x2 -> conv3x3 -> BN -> ReLU -> conv3x3, plus the shortcut
  upsample -> conv1x1 (a learned shortcut where the block resizes or changes width, the identity elsewhere).
``sngan-resnet`` discriminator:
  optimized block (conv3x3 -> ReLU -> conv3x3 -> avgpool 2, shortcut avgpool -> conv1x1) -> down-ResBlock(128) ->
  2 x ResBlock(128) -> ReLU -> global sum pooling -> Linear(1); ResBlock: ReLU -> conv3x3 -> ReLU -> conv3x3
  (-> avgpool 2), shortcut conv1x1 (-> avgpool 2). Spectral normalisation on every layer (on by default).
  Initialisation as the authors' chainer code and torch-mimicry: Glorot-uniform with gain sqrt(2) on the residual
  convolutions, gain 1 on the shortcuts, the first linear layer, the output conv and the heads; zero biases.

Options, all off in ``sngan-resnet`` (the unconditional CIFAR-10 model):
* ``attention: R`` -- SAGAN's self-attention block (``nn/self_attention.py``, ``attention_form``) after the block
  whose output is R x R, in G and in D (D: the first such block).
* a class condition in G: the conditional algorithm hands G the one-hot label as ``cond``; ``cond_input: bn`` (the
  default) feeds it to class-conditional BatchNorm in every up-block (``nn/conditional_norm.py``, the SNGAN-projection
  and SAGAN generators; the last BN stays unconditional, as in both codes), ``concat`` joins it to z instead (CGAN).
* ``projection: true`` in D -- the projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) +
  <V y, phi(x)>, phi the sum-pooled features, V a bias-free Linear (classes x features), as ``projection-book``
  (``models/conditional.py``) adds it to the book trunk.
* ``spectral_norm`` in G (SAGAN: both G and D), ``widths`` (G: the 4 x 4 map's width then one per up-block; D: one
  per block), ``downsample`` (D: which blocks halve the map), ``data.image_size`` (G's start is image_size /
  2^blocks: 32 px -> 4 x 4; 28 px digits are resized with ``data.image_size: 32``), channels from the data.

``sagan`` registers the same networks with SAGAN's defaults: spectral norm in G too, and self-attention on the
16 x 16 maps (see ``SAGAN_ATTENTION``).
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.conditional_norm import ConditionalBatchNorm2d, ConditionKind
from ..nn.self_attention import AttentionForm, SelfAttention
from ..nn.spectral import apply_spectral_norm
from .common import (GeneratorBase, OutputActivation, check_image_size, check_widths, output_activation,
                     up_block_count)
from .registry import register_network

SNGAN = ("Miyato et al. 2018 (SNGAN) ResNet for 32 px (appendix B.4), as torch-mimicry's sngan_32; options: SAGAN "
         "self-attention, conditional BN, projection D (Miyato & Koyama 2018)")
SAGAN = ("Zhang et al. 2019 (SAGAN): the SNGAN ResNet with self-attention in G and D and spectral norm in both "
         "(seed 002 part 2 section 3; spec 11)")
# SAGAN puts attention on the middle-to-high feature maps: its ablation (table 1) is best at 32 x 32 and 64 x 64 of
# 128 px images, a quarter and a half of the image side. At 32 px that is 8 or 16; 16 (half the side) is also where
# StudioGAN's CIFAR-10 SAGAN config places it (G after its second up-block, D after its first block).
SAGAN_ATTENTION = 16

CondInput = Literal["bn", "concat"]


def _xavier(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


class Norm(nn.Module):
    """BatchNorm2d, or class-conditional BN when ``cond_dim`` > 0; ``forward(x, cond)`` either way."""

    def __init__(self, channels: int, cond_dim: int = 0, kind: ConditionKind = "table") -> None:
        super().__init__()
        self.norm = ConditionalBatchNorm2d(channels, cond_dim, kind) if cond_dim else nn.BatchNorm2d(channels)
        self.conditional = cond_dim > 0

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.norm(x, cond) if self.conditional else self.norm(x)


class UpBlock(nn.Module):
    """The generator's residual block (torch-mimicry ``GBlock``, SNGAN's chainer ``Block``), upsampling x2."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int = 0, kind: ConditionKind = "table") -> None:
        super().__init__()
        self.b1, self.b2 = Norm(in_ch, cond_dim, kind), Norm(out_ch, cond_dim, kind)
        self.c1 = _xavier(nn.Conv2d(in_ch, out_ch, 3, padding=1), math.sqrt(2))
        self.c2 = _xavier(nn.Conv2d(out_ch, out_ch, 3, padding=1), math.sqrt(2))
        self.shortcut = _xavier(nn.Conv2d(in_ch, out_ch, 1))       # learned: the block always resizes

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x, cond)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """The discriminator's residual block (torch-mimicry ``DBlock``); ``optimized``: the first block
    (``DBlockOptimized``: no ReLU before the first conv, shortcut pooled before its conv)."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, optimized: bool = False) -> None:
        super().__init__()
        hidden = out_ch if optimized else in_ch
        self.optimized, self.downsample = optimized, downsample
        self.c1 = _xavier(nn.Conv2d(in_ch, hidden, 3, padding=1), math.sqrt(2))
        self.c2 = _xavier(nn.Conv2d(hidden, out_ch, 3, padding=1), math.sqrt(2))
        learned = optimized or downsample or in_ch != out_ch
        self.shortcut = _xavier(nn.Conv2d(in_ch, out_ch, 1)) if learned else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x if self.optimized else F.relu(x))
        h = self.c2(F.relu(h))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.optimized:
            s = self.shortcut(F.avg_pool2d(s, 2) if self.downsample else s)
        elif self.shortcut is not None:
            s = self.shortcut(s)
            s = F.avg_pool2d(s, 2) if self.downsample else s
        return h + s


def _attention_at(resolution: int | None, sides: Sequence[int], what: str) -> int | None:
    """The index into ``sides`` (feature-map side after each stage) after which attention goes, or None."""
    if resolution is None:
        return None
    if resolution not in sides:
        raise ConfigError(f"{what}.attention={resolution}: the feature maps here are {sorted(set(sides))} pixels "
                          f"wide; choose one of them (or null for no attention)")
    return list(sides).index(resolution)


@register_network("generator", "sngan-resnet", SNGAN)
class ResNetGenerator(GeneratorBase):
    def __init__(self, latent_dim: int = 128, image_size: int = 32, channels: int = 3, cond_dim: int = 0,
                 widths: Sequence[int] = (256, 256, 256, 256), attention: int | None = None,
                 attention_form: AttentionForm = "paper", cond_input: CondInput = "bn",
                 cond_norm: ConditionKind = "table", spectral_norm: bool = False, spectral_norm_iterations: int = 1,
                 out_activation: OutputActivation = "tanh") -> None:
        """``widths``: the start map's channels, then each up-block's (len - 1 up-blocks, image_size / 2^(len - 1)
        the start side). ``cond_norm``: how conditional BN makes its gains from the label (``table``: one per
        class, SNGAN-projection/SAGAN; ``linear``: BigGAN's linear map)."""
        super().__init__()
        blocks = up_block_count(widths, image_size, "sngan-resnet", "widths")
        if cond_input not in ("bn", "concat"):
            raise ConfigError(f"cond_input must be bn (conditional BatchNorm) or concat (joined to z), got {cond_input!r}")
        self.latent_dim, self.out_activation, self.cond_dim = latent_dim, out_activation, cond_dim
        self.start = image_size // 2 ** blocks
        self.bn_cond = cond_dim if cond_input == "bn" else 0
        self.fc = _xavier(nn.Linear(latent_dim + (cond_dim - self.bn_cond), self.start ** 2 * widths[0]))
        self.blocks = nn.ModuleList(UpBlock(widths[i], widths[i + 1], self.bn_cond, cond_norm) for i in range(blocks))
        sides = [self.start * 2 ** (i + 1) for i in range(blocks)]
        self.attention_after = _attention_at(attention, sides, "networks.G")
        self.attention = (SelfAttention(widths[self.attention_after + 1], attention_form)
                          if self.attention_after is not None else None)
        self.bn_out = nn.BatchNorm2d(widths[-1])            # unconditional in SNGAN-projection's and SAGAN's code
        self.conv_out = _xavier(nn.Conv2d(widths[-1], channels, 3, padding=1))
        self.act = output_activation(out_activation)
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=spectral_norm_iterations)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim and cond is None:
            raise ValueError(f"this generator takes a condition of {self.cond_dim} dimensions (the one-hot label)")
        h = self.fc(z if self.bn_cond else self.join_inputs(z, cond)).view(len(z), -1, self.start, self.start)
        bn_cond = cond if self.bn_cond else None
        for i, block in enumerate(self.blocks):
            h = block(h, bn_cond)
            if i == self.attention_after:
                h = self.attention(h)
        return self.act(self.conv_out(F.relu(self.bn_out(h))))


@register_network("discriminator", "sngan-resnet", SNGAN)
class ResNetDiscriminator(nn.Module):
    def __init__(self, image_size: int = 32, channels: int = 3, num_classes: int = 0,
                 widths: Sequence[int] = (128, 128, 128, 128), downsample: Sequence[bool] = (True, True, False, False),
                 attention: int | None = None, attention_form: AttentionForm = "paper", projection: bool = False,
                 spectral_norm: bool = True, spectral_norm_iterations: int = 1) -> None:
        """``widths`` / ``downsample``: one entry per block, the first the optimized block. ``projection``: the
        class projection term (needs labelled data and ``algorithm.name: conditional``)."""
        super().__init__()
        check_widths(widths, "widths")
        if len(downsample) != len(widths):
            raise ConfigError(f"networks.D.downsample needs one entry per block ({len(widths)}), got {list(downsample)}")
        check_image_size(image_size, 2 ** sum(map(bool, downsample)), "sngan-resnet discriminator")
        if projection and num_classes < 2:
            raise ConfigError("networks.D.projection needs labelled data (a class per sample); use a labelled "
                              "source or projection: false")
        self.takes_labels, self.num_classes = projection, num_classes
        blocks, sides, side, in_ch = [], [], image_size, channels
        for i, (out_ch, down) in enumerate(zip(widths, downsample)):
            blocks.append(DownBlock(in_ch, out_ch, bool(down), optimized=i == 0))
            side //= 2 if down else 1
            sides.append(side)
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.attention_after = _attention_at(attention, sides, "networks.D")
        self.attention = (SelfAttention(widths[self.attention_after], attention_form)
                          if self.attention_after is not None else None)
        self.feature_dim = widths[-1]
        self.head = _xavier(nn.Linear(widths[-1], 1))
        self.embed = _xavier(nn.Linear(widths[-1], num_classes, bias=False)) if projection else None
        if spectral_norm:
            apply_spectral_norm(self, n_power_iterations=spectral_norm_iterations)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): ReLU then global sum pooling of the last block's map (B x widths[-1])."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.attention_after:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))

    def forward_with_features(self, x: torch.Tensor, cond: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        out = self.head(h).squeeze(1)
        if self.embed is not None:
            if cond is None:
                raise ConfigError("networks.D.projection scores (image, label) pairs but was given no labels; use "
                                  "algorithm.name=conditional, or projection: false")
            out = out + (self.embed(h) * cond.to(h.dtype)).sum(1)          # <V y, phi(x)>
        return out, h

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_features(x, cond)[0]


@register_network("generator", "sagan", SAGAN)
class SAGANGenerator(ResNetGenerator):
    def __init__(self, latent_dim: int = 128, image_size: int = 32, channels: int = 3, cond_dim: int = 0,
                 widths: Sequence[int] = (256, 256, 256, 256), attention: int | None = SAGAN_ATTENTION,
                 attention_form: AttentionForm = "paper", cond_input: CondInput = "bn",
                 cond_norm: ConditionKind = "table", spectral_norm: bool = True, spectral_norm_iterations: int = 1,
                 out_activation: OutputActivation = "tanh") -> None:
        """SAGAN's defaults: spectral norm in G, attention on the 16 x 16 maps; labels through conditional BN."""
        super().__init__(latent_dim, image_size, channels, cond_dim, widths, attention, attention_form, cond_input,
                         cond_norm, spectral_norm, spectral_norm_iterations, out_activation)


@register_network("discriminator", "sagan", SAGAN)
class SAGANDiscriminator(ResNetDiscriminator):
    def __init__(self, image_size: int = 32, channels: int = 3, num_classes: int = 0,
                 widths: Sequence[int] = (128, 128, 128, 128), downsample: Sequence[bool] = (True, True, False, False),
                 attention: int | None = SAGAN_ATTENTION, attention_form: AttentionForm = "paper",
                 projection: bool = False, spectral_norm: bool = True, spectral_norm_iterations: int = 1) -> None:
        """SAGAN's defaults: attention on the 16 x 16 maps (after the optimized block at 32 px)."""
        super().__init__(image_size, channels, num_classes, widths, downsample, attention, attention_form,
                         projection, spectral_norm, spectral_norm_iterations)
