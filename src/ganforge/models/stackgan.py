"""StackGAN and StackGAN++ networks (seed 002 chapter 3 part 1 and seed 001, spec 20).

Sources: Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative Adversarial
Networks" (ICCV), section 3 and the implementation details of section 4 (stage I 64 px, stage II 256 px); Zhang et
al. 2018, "StackGAN++: Realistic Image Synthesis with Stacked Generative Adversarial Networks" (TPAMI), section 4
(the tree of generators). Widths and depths follow the authors' code (hanzhanggit/StackGAN-Pytorch and StackGAN-v2)
as recalled, not checked against it; the spec marks them [V] (the seeds give none).

Blocks (every one as the papers describe them):
  up block    nearest-neighbour upsampling x2 -> Conv 3x3 (size-preserving) -> BN -> ReLU (spec 20.3: "not transposed
              convolutions ... to avoid checkerboard artifacts"). StackGAN++'s code uses GLU; ReLU here for both.
  residual    x + BN(Conv3x3(ReLU(BN(Conv3x3(x))))), then ReLU (stage II's "several residual blocks", spec 20.4).
  root        [z, c] -> Linear -> BN -> ReLU -> 4 x 4 x (width * 2^k) -> k up blocks -> S_0 x S_0 x width (stage I,
              StackGAN++'s first branch: the paper's width 128 * 8 = 1024 channels at 4 x 4 down to 64 at 64 px).
  image head  Conv 3x3 -> tanh (each branch's / stage's image from its hidden features).

``stackgan2`` tree generator (role ``tree-generator``): the root gives hidden features h_0 at S_0; branch i >= 1
  takes h_{i-1} joined with the condition replicated over its plane (the CA sample c, or z for the unconditional
  form, as the authors' code does), Conv 3x3 -> BN -> ReLU, ``res_blocks`` residual blocks, one up block halving the
  width: h_i at 2 S_{i-1}. Every h_i has its image head: the tree's images s_0 .. s_{B-1} share the hidden features
  (the paper's 64/128/256; here from ``image_size`` and ``branches``).
``stackgan`` stacked generator (role ``stacked-generator``), StackGAN v1's two stages, each with its own conditioning
  augmentation (spec 20.4 [E] / errata 25: stage II's formulas have their own CA):
  stage I: the root and an image head -> S_0 = image_size / ``stage2_scale`` (the paper: 64 of 256);
  stage II (no noise input): the stage-I image -> Conv 3x3 -> ReLU (width) -> ``down`` stride-2 Conv 4x4 -> BN -> ReLU
  (doubling the width; the paper 64 -> 16 px) -> joined with c_2 replicated -> Conv 3x3 -> BN -> ReLU ->
  ``res_blocks`` residual blocks -> up blocks halving the width back to the full size -> image head.
``stackgan`` discriminator (role ``multiscale-discriminator``): one D per scale (StackGAN's two stages, StackGAN++'s
  branches). Each: Conv 4x4 stride 2 -> LeakyReLU(0.2), then Conv 4x4 stride 2 -> BN -> LeakyReLU, doubling the
  width (capped at ``max_width``), down to 4 x 4. The unconditional score: Conv 4x4 (valid) on that map (StackGAN++).
  The conditional score (spec 20.3: "combined with the resized text embedding, then an FC layer"): the text embedding
  compressed by Linear -> LeakyReLU to ``compress_dim`` (the paper's N_d = 128), replicated 4 x 4, joined to the map,
  Conv 3x3 -> BN -> LeakyReLU, Conv 4x4 (valid) -> the score. Raw scores (the sigmoid lives in the objective).
  The authors' code feeds D the CA mean mu instead of the compressed embedding; the paper's text is built here.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..nn.conditioning_augmentation import CAActivation, ConditioningAugmentation
from .common import GeneratorBase, check_widths
from .registry import register_network

V1 = "Zhang et al. 2017 (StackGAN) sections 3-4; seed 002 chapter 3 part 1 (spec 20.2-20.5)"
V2 = "Zhang et al. 2018 (StackGAN++) section 4; seed 002 chapter 3 part 1 (spec 20.6)"


def _log2_steps(big: int, small: int, where: str) -> int:
    """How many halvings take ``big`` to ``small`` (both powers-of-two multiples), or one ConfigError line."""
    steps = int(round(math.log2(big / small))) if big >= small > 0 else -1
    if steps < 0 or small * 2 ** steps != big:
        raise ConfigError(f"{where}: {big} px is not {small} px doubled a whole number of times; use data.image_size "
                          "a power of two (e.g. 32 or 64)")
    return steps


def scale_sizes(image_size: int, branches: int) -> tuple[int, ...]:
    """The side of each branch / stage, coarsest first: ``image_size`` halved ``branches - 1`` times (>= 4 px each)."""
    if branches < 1:
        raise ConfigError(f"branches must be >= 1 (StackGAN++: 3, 64 -> 128 -> 256), got {branches}")
    sizes = [image_size]
    for _ in range(branches - 1):
        sizes.insert(0, sizes[0] // 2)
    if sizes[0] < 8 or sizes[0] * 2 ** (branches - 1) != image_size or sizes[0] & (sizes[0] - 1):
        raise ConfigError(f"{branches} scales ending at data.image_size={image_size} need a power of two whose "
                          f"coarsest scale is >= 8 px; use data.image_size=64 (16/32/64) or fewer branches")
    return tuple(sizes)


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def down_block(c_in: int, c_out: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def image_head(width: int, channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())


def replicate(vector: torch.Tensor, size: int) -> torch.Tensor:
    """N x D -> N x D x size x size (a condition spread over a feature map's plane)."""
    return vector[:, :, None, None].expand(-1, -1, size, size)


class Root(nn.Module):
    """[z, c] -> hidden features at ``size`` px with ``width`` channels (stage I / the first branch)."""

    def __init__(self, in_dim: int, size: int, width: int):
        super().__init__()
        ups = _log2_steps(size, 4, "the first scale")
        self.start = width * 2 ** ups
        self.fc = nn.Sequential(nn.Linear(in_dim, self.start * 16, bias=False), nn.BatchNorm1d(self.start * 16),
                                nn.ReLU())
        self.ups = nn.Sequential(*[up_block(width * 2 ** (ups - i), width * 2 ** (ups - i - 1)) for i in range(ups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ups(self.fc(x).view(len(x), self.start, 4, 4))


class Branch(nn.Module):
    """A StackGAN++ branch: h_{i-1} and the replicated condition -> joint conv -> residual blocks -> up block."""

    def __init__(self, width: int, cond_dim: int, res_blocks: int):
        super().__init__()
        self.joint = nn.Sequential(nn.Conv2d(width + cond_dim, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU())
        self.res = nn.Sequential(*[ResidualBlock(width) for _ in range(res_blocks)])
        self.up = up_block(width, max(width // 2, 1))

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.joint(torch.cat([h, replicate(cond.to(h.dtype), h.shape[-1])], 1))
        return self.up(self.res(h))


@register_network("tree-generator", "stackgan2", V2)
class TreeGenerator(GeneratorBase):
    """StackGAN++'s tree: ``forward_all(z, embedding)`` -> (images coarse to fine, mu, logvar)."""

    def __init__(self, latent_dim: int, image_size: int = 64, channels: int = 3, branches: int = 3,
                 text_dim: int = 0, ca_dim: int = 128, width: int = 64, res_blocks: int = 2,
                 ca_activation: CAActivation = "none"):
        """``branches`` (algorithm.branches) and ``text_dim`` (the text encoder's; 0: unconditional) come from the
        algorithm. ``width``: channels of the first scale's hidden features (the paper's code: 64)."""
        super().__init__()
        check_widths([width, ca_dim, latent_dim], "networks.G.width, ca_dim and latent_dim")
        if res_blocks < 0:
            raise ConfigError(f"networks.G.res_blocks must be >= 0 (the paper's code: 2), got {res_blocks}")
        self.sizes = scale_sizes(image_size, branches)
        self.latent_dim, self.out_activation, self.text_dim = latent_dim, "tanh", text_dim
        self.ca = ConditioningAugmentation(text_dim, ca_dim, ca_activation) if text_dim else None
        cond_dim = ca_dim if text_dim else latent_dim     # unconditional: the branches take z (the authors' code)
        self.root = Root(latent_dim + (ca_dim if text_dim else 0), self.sizes[0], width)
        widths = [max(width // 2 ** i, 1) for i in range(branches)]
        self.branches = nn.ModuleList(Branch(w, cond_dim, res_blocks) for w in widths[:-1])
        self.heads = nn.ModuleList(image_head(w, channels) for w in widths)

    @property
    def conditional(self) -> bool:
        return self.ca is not None

    def forward_all(self, z: torch.Tensor, embedding: torch.Tensor | None = None, eps: torch.Tensor | None = None
                    ) -> tuple[list[torch.Tensor], torch.Tensor | None, torch.Tensor | None]:
        """(s_0 .. s_{B-1}, mu, logvar); mu and logvar None for the unconditional tree."""
        mu = logvar = None
        if self.ca is not None:
            if embedding is None:
                raise ValueError("this StackGAN++ generator is text-conditional: it takes a text embedding")
            cond, mu, logvar = self.ca(embedding, eps)
            h = self.root(torch.cat([z, cond.to(z.dtype)], 1))
        else:
            cond, h = z, self.root(z)
        images = [self.heads[0](h)]
        for branch, head in zip(self.branches, self.heads[1:]):
            h = branch(h, cond)
            images.append(head(h))
        return images, mu, logvar

    def forward(self, z: torch.Tensor, embedding: torch.Tensor | None = None,
                eps: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(z, embedding, eps)[0][-1]


class StageTwo(nn.Module):
    """StackGAN's stage-II generator: the stage-I image and its own CA sample -> the full-size image (no noise)."""

    def __init__(self, channels: int, low: int, size: int, text_dim: int, ca_dim: int, width: int, down: int,
                 res_blocks: int, ca_activation: CAActivation):
        super().__init__()
        self.ca = ConditioningAugmentation(text_dim, ca_dim, ca_activation)
        if low // 2 ** down < 4 or low % 2 ** down:
            raise ConfigError(f"stage II encodes the {low} px stage-I image with {down} stride-2 convolutions, leaving "
                              f"less than 4 px; use networks.G.down={max(0, int(math.log2(max(low, 4) // 4)))}")
        inner = width * 2 ** down
        self.encode = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                                    *[nn.Sequential(down_block(width * 2 ** i, width * 2 ** (i + 1)), nn.ReLU())
                                      for i in range(down)])
        self.joint = nn.Sequential(nn.Conv2d(inner + ca_dim, inner, 3, padding=1, bias=False), nn.BatchNorm2d(inner),
                                   nn.ReLU())
        self.res = nn.Sequential(*[ResidualBlock(inner) for _ in range(res_blocks)])
        ups = _log2_steps(size, low // 2 ** down, "stage II")
        widths = [max(inner // 2 ** i, 1) for i in range(ups + 1)]
        self.ups = nn.Sequential(*[up_block(a, b) for a, b in zip(widths, widths[1:])])
        self.head = image_head(widths[-1], channels)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor, eps: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cond, mu, logvar = self.ca(embedding, eps)
        h = self.encode(image)
        h = self.joint(torch.cat([h, replicate(cond.to(h.dtype), h.shape[-1])], 1))
        return self.head(self.ups(self.res(h))), mu, logvar


@register_network("stacked-generator", "stackgan", V1)
class StackedGenerator(GeneratorBase):
    """StackGAN's two stages: ``stage_one(z, embedding)`` and ``stage_two(image, embedding)``; ``forward`` runs both."""

    def __init__(self, latent_dim: int, image_size: int = 256, channels: int = 3, text_dim: int = 1024,
                 stage2_scale: int = 4, ca_dim: int = 128, width: int = 64, stage2_width: int = 128, down: int = 2,
                 res_blocks: int = 4, ca_activation: CAActivation = "none"):
        """``stage2_scale`` (algorithm.stage2_scale): the full size over stage I's (the paper: 256 / 64 = 4).
        ``width``: stage I's channels at its output size (the paper's code: 64, from 1024 at 4 x 4);
        ``stage2_width``: stage II's first encoder width (the code's 128, 512 after ``down`` = 2 halvings)."""
        super().__init__()
        check_widths([width, stage2_width, ca_dim, latent_dim, text_dim],
                     "networks.G.width, stage2_width, ca_dim, latent_dim and the text embedding")
        if stage2_scale < 2 or image_size % stage2_scale:
            raise ConfigError(f"algorithm.stage2_scale must be >= 2 and divide data.image_size={image_size} (the "
                              f"paper: 4, 64 -> 256), got {stage2_scale}")
        low = image_size // stage2_scale
        self.sizes = (low, image_size)
        self.latent_dim, self.out_activation, self.text_dim = latent_dim, "tanh", text_dim
        self.ca = ConditioningAugmentation(text_dim, ca_dim, ca_activation)
        self.root = Root(latent_dim + ca_dim, low, width)
        self.head = image_head(width, channels)
        self.stage2 = StageTwo(channels, low, image_size, text_dim, ca_dim, stage2_width, down, res_blocks,
                               ca_activation)

    @property
    def conditional(self) -> bool:
        return True

    def stage_one_modules(self) -> tuple[nn.Module, ...]:
        return (self.ca, self.root, self.head)

    def stage_one(self, z: torch.Tensor, embedding: torch.Tensor, eps: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stage-I image, mu_0, logvar_0)."""
        cond, mu, logvar = self.ca(embedding, eps)
        return self.head(self.root(torch.cat([z, cond.to(z.dtype)], 1))), mu, logvar

    def stage_two(self, image: torch.Tensor, embedding: torch.Tensor, eps: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stage-II image, mu, logvar) from a stage-I image."""
        return self.stage2(image, embedding, eps)

    def forward(self, z: torch.Tensor, embedding: torch.Tensor, eps: torch.Tensor | None = None,
                eps_2: torch.Tensor | None = None) -> torch.Tensor:
        return self.stage_two(self.stage_one(z, embedding, eps)[0], embedding, eps_2)[0]


class ScaleDiscriminator(nn.Module):
    """One scale's D: ``features(x)`` (the 4 x 4 map), ``unconditional(f)`` and ``conditional(f, embedding)``."""

    def __init__(self, size: int, channels: int, width: int, max_width: int, text_dim: int, compress_dim: int,
                 unconditional: bool):
        super().__init__()
        downs = _log2_steps(size, 4, "a discriminator scale")
        widths = [min(width * 2 ** i, max_width) for i in range(downs)]
        layers: list[nn.Module] = [down_block(channels, widths[0], norm=False), nn.LeakyReLU(0.2)]
        for a, b in zip(widths, widths[1:]):
            layers += [down_block(a, b), nn.LeakyReLU(0.2)]
        self.encode = nn.Sequential(*layers)
        inner = widths[-1]
        self.uncond = nn.Conv2d(inner, 1, 4) if unconditional else None
        self.compress = self.cond = None
        if text_dim:
            self.compress = nn.Sequential(nn.Linear(text_dim, compress_dim), nn.LeakyReLU(0.2))
            self.cond = nn.Sequential(nn.Conv2d(inner + compress_dim, inner, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(inner), nn.LeakyReLU(0.2), nn.Conv2d(inner, 1, 4))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def unconditional(self, features: torch.Tensor) -> torch.Tensor:
        if self.uncond is None:
            raise ValueError("this discriminator has no unconditional score")
        return self.uncond(features).flatten()

    def conditional(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        if self.cond is None:
            raise ValueError("this discriminator is unconditional: it has no score given a text")
        code = replicate(self.compress(embedding.to(features.dtype)), features.shape[-1])
        return self.cond(torch.cat([features, code], 1)).flatten()


@register_network("multiscale-discriminator", "stackgan", f"{V1}; {V2}")
class MultiScaleDiscriminator(nn.Module):
    """One D per scale (``sizes`` from the algorithm), ``forward(level, x, embedding)`` -> (unconditional score or
    None, conditional score or None)."""

    def __init__(self, sizes: Sequence[int], channels: int = 3, text_dim: int = 0, unconditional: bool = True,
                 width: int = 64, max_width: int = 512, compress_dim: int = 128):
        """``sizes``, ``text_dim`` (0: no conditional score) and ``unconditional`` come from the algorithm;
        ``width``: the first convolution's channels (the paper's code: 64), doubling per stride-2 layer up to
        ``max_width``."""
        super().__init__()
        check_widths([width, max_width, compress_dim], "networks.D.width, max_width and compress_dim")
        if not unconditional and not text_dim:
            raise ConfigError("a discriminator with neither an unconditional nor a text-conditional score scores "
                              "nothing; give the data a text field or keep the unconditional score")
        self.sizes = tuple(sizes)
        self.scales = nn.ModuleList(ScaleDiscriminator(s, channels, width, max_width, text_dim, compress_dim,
                                                       unconditional) for s in self.sizes)

    def forward(self, level: int, x: torch.Tensor, embedding: torch.Tensor | None = None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        d = self.scales[level]
        f = d.features(x)
        return (d.unconditional(f) if d.uncond is not None else None,
                d.conditional(f, embedding) if d.cond is not None and embedding is not None else None)
