"""Small shared pieces of generator and discriminator networks."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError

OutputActivation = Literal["sigmoid", "tanh", "none"]

VALUE_RANGES: dict[str, tuple[float, float] | None] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "none": None}


def output_activation(name: OutputActivation) -> nn.Module:
    return {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "none": nn.Identity()}[name]


def keras_bn_momentum(keras_momentum: float) -> float:
    """Keras BatchNormalization(momentum=m) keeps m of the old running stat; PyTorch's momentum is 1 - m."""
    return 1.0 - keras_momentum


def check_widths(widths: Sequence[int], name: str) -> None:
    """Layer widths (``hidden``, ``filters``) must be >= 1: torch would fail on a width < 1 with a bare RuntimeError
    ("negative dimension", "expected weight to be at least 1") deep inside nn.Linear / nn.Conv2d."""
    if any(w < 1 for w in widths):
        raise ConfigError(f"{name} must be layer widths >= 1, got {list(widths)}")


def check_image_size(image_size: int, multiple: int, arch: str, minimum: int = 0) -> None:
    """``minimum``: the smallest size the architecture is meant for (DCGANs: 8, so the generator starts from at
    least a 2 x 2 map; at 4 it would start from 1 x 1 and its 5 x 5 kernels would see almost only padding)."""
    if image_size < minimum:
        raise ConfigError(f"the {arch} networks need data.image_size >= {minimum}, got {image_size}; "
                          f"use --set data.image_size={minimum} or larger")
    if image_size % multiple or image_size < multiple:
        ok = sorted({max(multiple, (image_size // multiple) * multiple), (image_size // multiple + 1) * multiple})
        raise ConfigError(f"the {arch} networks need an image size divisible by {multiple}, but data.image_size="
                          f"{image_size}; use --set data.image_size={ok[0]}" + (f" (or {ok[1]})" if len(ok) > 1 else ""))


def up_block_count(widths: Sequence[int], image_size: int, arch: str, where: str = "networks.G.widths") -> int:
    """Up-blocks of a generator that starts from a (image_size / 2^blocks)-px map, ``widths`` = the start map's
    channels then each up-block's (the ResNet generators: SNGAN, SAGAN, BigGAN); checked in one line each."""
    check_widths(widths, where)
    blocks = len(widths) - 1
    if blocks < 1:
        raise ConfigError(f"{where} needs the start width and at least one up-block's, got {list(widths)}")
    check_image_size(image_size, 2 ** blocks, arch, minimum=2 ** (blocks + 1))
    return blocks


class GeneratorBase(nn.Module):
    """What every generator tells the rest of the library: its latent size and output value range."""

    latent_dim: int
    out_activation: str = "none"

    @property
    def value_range(self) -> tuple[float, float] | None:
        return VALUE_RANGES[self.out_activation]

    @staticmethod
    def join_inputs(z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Conditional generators of the seeds concatenate the condition (one-hot label, codes) to z."""
        return z if cond is None else torch.cat([z, cond.to(z.dtype)], 1)


Norm2d = Literal["batch", "instance", "none"]


def norm2d(kind: Norm2d, channels: int) -> nn.Module:
    """The normalisation layer of the image-to-image networks: ``batch`` (pix2pix's default; at batch 1 it acts as
    instance norm, Isola et al. 2017 section 3.3), ``instance`` (CycleGAN, StarGAN: affine-free, no running
    statistics, as their official code), ``none`` (StarGAN's discriminator)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be batch, instance or none, got {kind!r}")


def uses_bias(kind: Norm2d) -> bool:
    """A conv followed by batch norm needs no bias (BN's shift replaces it); before instance norm or nothing it does
    (the official pix2pix / CycleGAN code's ``use_bias = norm_layer == InstanceNorm2d``)."""
    return kind != "batch"
