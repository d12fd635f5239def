"""ProGAN networks: the generator and discriminator of progressive growing (Karras et al. 2018; seed 002 chapter 3
part 1; spec 22), built whole, every resolution's layers up front.

Both grow symmetrically from 4 x 4 to ``image_size`` (a power of two), a block per doubling (spec 22.2, the paper's
table 2 and the authors' ``networks.py`` G_paper / D_paper):

  G: z -> pixel norm (``normalize_latents``) -> dense to 4x4xC(4) (gain sqrt(2)/4) -> LReLU -> PN -> conv3x3 -> LReLU
     -> PN; then per resolution s = 8 .. image_size: nearest-neighbour 2x -> [conv3x3 C(s) -> LReLU -> PN] x 2; a
     1x1 toRGB (gain 1, linear) per resolution.
  D: a 1x1 fromRGB -> LReLU per resolution; per resolution s = image_size .. 8: conv3x3 C(s) -> LReLU -> conv3x3
     C(s/2) -> LReLU -> 2x2 average pooling; at 4x4: minibatch stddev (group 4, one feature map) -> conv3x3 ->
     LReLU -> dense 4x4xC(4) -> C(2) -> LReLU -> dense 1 (gain 1, linear).

C(s) = min(2 * fmap_base / s, fmap_max): 512 channels up to 32 x 32, then halving to 16 at 1024 with the paper's
fmap_base 8192 and fmap_max 512; smaller values make the CPU-budget widths. Every layer has equalized learning rate
(``nn/equalized.py``), LeakyReLU 0.2, no batch normalisation; the output is linear, images in [-1, 1] (the authors'
dynamic range; grids clamp).

The phase (train/phases.py) says which resolution trains and how far its fade-in has come: ``set_phase(resolution,
alpha)``, or ``resolution=`` / ``alpha=`` to ``forward``. With alpha < 1 the newest block is a residual branch
weighted alpha (spec 22.2):

  G(z) = (1 - alpha) * upsample_2x(toRGB_old(h)) + alpha * toRGB_new(block_new(h))
  D(x) = rest((1 - alpha) * fromRGB_old(avgpool_2x(x)) + alpha * block_new(fromRGB_new(x)))

so alpha = 1 is the new network alone (the old branch is not even computed) and alpha -> 0 the old one. Layers of
higher resolutions than the phase's are not used (they get no gradients, so Adam leaves them as built) but exist from
the start: optimizers, the EMA copy and checkpoints see one fixed set of parameters for the whole run. The phase is
not state of the network (it is a function of the step): nothing about it is saved in the weights.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.equalized import HE_GAIN, EqualizedConv2d, EqualizedLinear
from ..nn.minibatch import MinibatchStdDev
from ..nn.pixel_norm import PixelNorm
from .common import GeneratorBase
from .registry import register_network

SOURCE = ("Karras et al. 2018 (ProGAN), section 3-4, table 2 and the authors' networks.py; seed 002 chapter 3 part 1 "
          "(spec 22)")
START = 4    # the paper's first resolution


def resolutions(image_size: int, arch: str = "progan") -> list[int]:
    """4, 8, ..., image_size; refused in one line unless image_size is a power of two >= 4."""
    if image_size < START or image_size & (image_size - 1):
        up = max(START, 1 << max(0, image_size - 1).bit_length())
        raise ConfigError(f"the {arch} networks grow by doubling from 4 x 4, so data.image_size must be a power of two "
                          f">= 4, got {image_size}; use --set data.image_size={up}")
    return [START << i for i in range(int(math.log2(image_size // START)) + 1)]


def channels_at(size: int, fmap_base: int, fmap_max: int) -> int:
    """C(s) = min(2 fmap_base / s, fmap_max) (the authors' nf(log2(s) - 1)), at least 1."""
    return max(1, min(int(2 * fmap_base / size), fmap_max))


class _Phased(nn.Module):
    """What G and D share: the resolutions they can run at and the phase they run in."""

    sizes: list[int]

    def _init_phase(self, image_size: int) -> None:
        self.resolution, self.alpha = image_size, 1.0

    def set_phase(self, resolution: int | None, alpha: float = 1.0) -> None:
        """Run at ``resolution`` (None: the full image_size) with fade-in weight ``alpha`` of its newest block."""
        self.resolution, self.alpha = self._check_phase(resolution, alpha)

    def _check_phase(self, resolution: int | None, alpha: float | None) -> tuple[int, float]:
        resolution = self.sizes[-1] if resolution is None else int(resolution)
        alpha = self.alpha if alpha is None else float(alpha)
        if resolution not in self.sizes:
            raise ConfigError(f"train.phases: image_size {resolution} is not a resolution these ProGAN networks grow "
                              f"through; use one of {', '.join(map(str, self.sizes))}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"the fade-in alpha must be in [0, 1], got {alpha}")
        return resolution, alpha


@register_network("generator", "progan", SOURCE)
class ProGANGenerator(GeneratorBase, _Phased):
    def __init__(self, latent_dim: int, image_size: int = 32, channels: int = 3, fmap_base: int = 8192,
                 fmap_max: int = 512, normalize_latents: bool = True, leaky_slope: float = 0.2,
                 out_activation: Literal["none", "tanh"] = "none") -> None:
        """``out_activation: none`` is the paper's linear output (images in [-1, 1], clamped for display);
        ``tanh`` bounds it (not the paper's)."""
        super().__init__()
        if fmap_base < 1 or fmap_max < 1:
            raise ConfigError(f"networks.G: fmap_base and fmap_max must be >= 1, got {fmap_base} and {fmap_max}")
        if out_activation not in ("none", "tanh"):
            raise ConfigError(f"networks.G.out_activation must be none (the paper's linear output) or tanh, got "
                              f"{out_activation!r}")
        self.sizes = resolutions(image_size)
        self.latent_dim, self.out_activation, self.channels = latent_dim, out_activation, channels
        ch = [channels_at(s, fmap_base, fmap_max) for s in self.sizes]
        self.act = nn.LeakyReLU(leaky_slope)
        self.norm = PixelNorm()
        self.latent_norm = PixelNorm() if normalize_latents else nn.Identity()
        # 4x4: a dense layer from z (the authors' gain sqrt(2)/4, bias per channel after the reshape), then a conv.
        self.dense = EqualizedLinear(latent_dim, ch[0] * START * START, bias=False, gain=HE_GAIN / 4)
        self.dense_bias = nn.Parameter(torch.zeros(ch[0]))
        self.blocks = nn.ModuleList([nn.ModuleList([EqualizedConv2d(ch[0], ch[0], 3)])])
        for i in range(1, len(self.sizes)):
            self.blocks.append(nn.ModuleList([EqualizedConv2d(ch[i - 1], ch[i], 3), EqualizedConv2d(ch[i], ch[i], 3)]))
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, channels, 1, gain=1.0) for c in ch])
        self._init_phase(image_size)

    @property
    def value_range(self) -> tuple[float, float]:
        return (-1.0, 1.0)     # linear output: the data's range, as the authors' dynamic_range [-1, 1]

    def _block(self, level: int, h: torch.Tensor) -> torch.Tensor:
        if level > 0:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        for conv in self.blocks[level]:
            h = self.norm(self.act(conv(h)))
        return h

    def _rgb(self, level: int, h: torch.Tensor) -> torch.Tensor:
        out = self.to_rgb[level](h)
        return torch.tanh(out) if self.out_activation == "tanh" else out

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float | None = None) -> torch.Tensor:
        """Images (N, channels, r, r) at the phase's resolution r (or ``resolution``), faded in by ``alpha``."""
        if resolution is None:
            resolution, alpha = self.resolution, self.alpha if alpha is None else alpha
        resolution, alpha = self._check_phase(resolution, alpha)
        level = self.sizes.index(resolution)
        h = self.dense(self.latent_norm(z.flatten(1))).view(len(z), -1, START, START)
        h = self.norm(self.act(h + self.dense_bias.view(1, -1, 1, 1)))
        for i in range(level):
            h = self._block(i, h)
        new = self._rgb(level, self._block(level, h))
        if level == 0 or alpha >= 1.0:
            return new
        old = F.interpolate(self._rgb(level - 1, h), scale_factor=2, mode="nearest")
        return torch.lerp(old, new, alpha)


@register_network("discriminator", "progan", SOURCE)
class ProGANDiscriminator(_Phased):
    def __init__(self, image_size: int = 32, channels: int = 3, fmap_base: int = 8192, fmap_max: int = 512,
                 leaky_slope: float = 0.2, mbstd_group_size: int = 4) -> None:
        """``mbstd_group_size``: the minibatch stddev group (4; 0 leaves the layer out, an ablation)."""
        super().__init__()
        if fmap_base < 1 or fmap_max < 1:
            raise ConfigError(f"networks.D: fmap_base and fmap_max must be >= 1, got {fmap_base} and {fmap_max}")
        if mbstd_group_size < 0:
            raise ConfigError(f"networks.D.mbstd_group_size must be >= 0 (0: no minibatch stddev), got "
                              f"{mbstd_group_size}")
        self.sizes = resolutions(image_size)
        ch = [channels_at(s, fmap_base, fmap_max) for s in self.sizes]
        self.act = nn.LeakyReLU(leaky_slope)
        self.from_rgb = nn.ModuleList([EqualizedConv2d(channels, c, 1) for c in ch])
        self.mbstd = MinibatchStdDev(mbstd_group_size) if mbstd_group_size else None
        extra = 1 if self.mbstd is not None else 0
        hidden = channels_at(START // 2, fmap_base, fmap_max)
        # blocks[0] is the 4x4 head; blocks[i] takes resolution sizes[i] down to sizes[i - 1].
        self.blocks = nn.ModuleList([nn.ModuleList([EqualizedConv2d(ch[0] + extra, ch[0], 3),
                                                    EqualizedLinear(ch[0] * START * START, hidden),
                                                    EqualizedLinear(hidden, 1, gain=1.0)])])
        for i in range(1, len(self.sizes)):
            self.blocks.append(nn.ModuleList([EqualizedConv2d(ch[i], ch[i], 3), EqualizedConv2d(ch[i], ch[i - 1], 3)]))
        self._init_phase(image_size)

    def _block(self, level: int, h: torch.Tensor) -> torch.Tensor:
        if level == 0:
            conv, dense, out = self.blocks[0]
            if self.mbstd is not None:
                h = self.mbstd(h)
            h = self.act(dense(self.act(conv(h)).flatten(1)))
            return out(h)
        for conv in self.blocks[level]:
            h = self.act(conv(h))
        return F.avg_pool2d(h, 2)

    def forward(self, x: torch.Tensor, alpha: float | None = None) -> torch.Tensor:
        """Scores (N, 1) of images at the phase's resolution, the newest block faded in by ``alpha``."""
        _, alpha = self._check_phase(self.resolution, alpha)
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise ValueError(f"the ProGAN discriminator runs at {self.resolution} x {self.resolution} in this phase, "
                             f"got images of {x.shape[-2]} x {x.shape[-1]}")
        level = self.sizes.index(self.resolution)
        h = self._block(level, self.act(self.from_rgb[level](x)))
        if 0 < level and alpha < 1.0:
            old = self.act(self.from_rgb[level - 1](F.avg_pool2d(x, 2)))
            h = torch.lerp(old, h, alpha)
        for i in range(level - 1, -1, -1):
            h = self._block(i, h)
        return h
