"""Encoders and joint (x, z) discriminators of BiGAN / ALI.

BiGAN (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning", ICLR) and ALI (Dumoulin et al. 2017,
"Adversarially Learned Inference", ICLR) add an encoder E: x -> z to a GAN, and give the discriminator pairs: it tells
(x, E(x)) from (G(z), z) (seed 002 chapter 3 part 3; spec 31.2 and 31.4: "D fuses an x-branch and a z-branch, e.g.
conv features concatenated with an MLP embedding of z, then a joint MLP"). The generator is any registered one
(``networks.G``: ``mlp`` is the official BiGAN code's MNIST generator, ``dcgan-book`` a small conv one); this module
holds the two new kinds of network.

``encoder`` architectures (``networks.E``):
  ``bigan-mlp``: flatten -> [Linear -> (BN) -> LeakyReLU(0.2)] per ``hidden`` width -> Linear to the code. The
  official code's MNIST encoder (jeffdonahue/bigan, ``train_mnist.sh``: ``--encode_net mnist_mlp``) is an MLP of two
  1024-unit layers, the paper's permutation-invariant MNIST setting (section 4.1); BN after every hidden layer but the
  first is DCGAN's rule for networks that read images (``norm``).
  ``bigan-conv``: [Conv k4 s2 p1 -> (BN) -> LeakyReLU(0.2)] per ``filters`` width (28 -> 14 -> 7 px for two) ->
  flatten -> Linear ``hidden`` -> LeakyReLU -> Linear to the code: a small DCGAN-style encoder (ALI's are deeper
  conv stacks of the same kind, Dumoulin et al. appendix A).
  ``stochastic: true`` (ALI section 2.2): the last layer gives a mean and a log-variance per code dimension and
  ``forward`` samples z = mu + exp(log_var / 2) * eps, eps ~ N(0, I) (the reparameterisation trick, so gradients reach
  the encoder through the sample); ``mean`` gives mu, what ``ganforge encode`` writes. Deterministic (BiGAN), mu is z.

``joint-discriminator`` architectures (``networks.D``), raw scores N (one per (x, z) pair):
  ``bigan-mlp``: x through an MLP trunk (``hidden``), z through an MLP (``z_hidden``), the two feature vectors
  concatenated, then the joint MLP (``joint_hidden``) and a linear score. ``bigan-conv``: the x trunk is the conv
  stack of ``bigan-conv`` encoders instead. LeakyReLU(0.2) throughout, optional ``dropout`` before each joint layer
  (ALI's discriminators use dropout 0.2, appendix A) and no BN by default (BN mixes the pairs of a batch, and a
  gradient penalty on D is defined per pair).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import check_widths
from .init import InitScheme, init_weights
from .mlp import HiddenNorm
from .registry import register_network

SOURCE = ("Donahue et al. 2017 (BiGAN) section 3 and official code jeffdonahue/bigan (MNIST MLPs); Dumoulin et al. "
          "2017 (ALI) section 2.2 (stochastic encoder); spec 31.2, 31.4")
LEAK = 0.2


def _mlp_layers(sizes: Sequence[int], norm: HiddenNorm, first_norm: bool, dropout: float = 0.0) -> list[nn.Module]:
    """Linear -> (BN) -> LeakyReLU per consecutive pair of ``sizes`` (BN on the first layer only if ``first_norm``),
    with dropout before each Linear when ``dropout`` > 0."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(a, b))
        if norm == "batch" and (i > 0 or first_norm):
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.LeakyReLU(LEAK))
    return layers


def _conv_trunk(channels: int, image_size: int, filters: Sequence[int], norm: HiddenNorm,
                where: str) -> tuple[nn.Sequential, int]:
    """Stride-2 k4 convolutions (BN after all but the first when ``norm`` is batch), flattened; and its width."""
    check_widths(filters, f"{where}.filters")
    if not filters or image_size % 2 ** len(filters) or image_size < 2 ** (len(filters) + 1):
        raise ConfigError(f"{where}: {len(filters)} stride-2 convolutions need data.image_size divisible by "
                          f"{2 ** len(filters)} (and >= {2 ** (len(filters) + 1)}), got {image_size}; use "
                          f"{where}.filters with fewer widths or another image size")
    layers: list[nn.Module] = []
    in_ch = channels
    for i, out_ch in enumerate(filters):
        layers.append(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=not (norm == "batch" and i > 0)))
        if norm == "batch" and i > 0:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.LeakyReLU(LEAK))
        in_ch = out_ch
    size = image_size // 2 ** len(filters)
    return nn.Sequential(*layers, nn.Flatten()), in_ch * size * size


class Encoder(nn.Module):
    """x -> z: a trunk of features and a linear head (twice as wide when ``stochastic``: mean and log-variance)."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    def __init__(self, trunk: nn.Module, features: int, latent_dim: int, stochastic: bool, init: InitScheme):
        super().__init__()
        if latent_dim < 1:
            raise ConfigError(f"algorithm.latent_dim must be >= 1 for an encoder, got {latent_dim}")
        self.latent_dim, self.stochastic = latent_dim, bool(stochastic)
        self.trunk = trunk
        self.head = nn.Linear(features, latent_dim * (2 if self.stochastic else 1))
        init_weights(self, init)

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance) of q(z | x); the log-variance is None for a deterministic encoder."""
        h = self.head(self.trunk(x))
        if not self.stochastic:
            return h, None
        mean, log_var = h.chunk(2, dim=1)
        return mean, log_var

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) for a deterministic encoder, the posterior mean mu(x) for a stochastic one."""
        return self.moments(x)[0]

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The code of each x: E(x), or (stochastic) mu + exp(log_var / 2) * eps with eps ~ N(0, I) drawn from
        torch's generator unless given (the reparameterisation trick: z is differentiable in mu and log_var)."""
        mean, log_var = self.moments(x)
        if log_var is None:
            return mean
        if eps is None:
            eps = torch.randn_like(mean)
        return mean + torch.exp(0.5 * log_var) * eps


@register_network("encoder", "bigan-mlp", SOURCE)
def mlp_encoder(latent_dim: int, sample_shape: Sequence[int], hidden: Sequence[int] = (1024, 1024),
                norm: HiddenNorm = "batch", stochastic: bool = False, init: InitScheme = "dcgan") -> Encoder:
    """``hidden``: the official MNIST encoder's two 1024-unit layers; ``norm``: BN after every hidden layer but the
    first (``none``: no BN)."""
    check_widths(hidden, "networks.E.hidden")
    if norm not in ("batch", "none"):
        raise ConfigError(f"networks.E.norm must be batch or none, got {norm!r}")
    width = math.prod(sample_shape)
    trunk = nn.Sequential(nn.Flatten(), *_mlp_layers([width, *hidden], norm, first_norm=False))
    return Encoder(trunk, hidden[-1] if hidden else width, latent_dim, stochastic, init)


@register_network("encoder", "bigan-conv", SOURCE)
def conv_encoder(latent_dim: int, channels: int = 1, image_size: int = 28, filters: Sequence[int] = (32, 64),
                 hidden: int = 256, norm: HiddenNorm = "batch", stochastic: bool = False,
                 init: InitScheme = "dcgan") -> Encoder:
    """``filters``: one stride-2 conv per width; ``hidden``: the linear layer before the code (0: none)."""
    if norm not in ("batch", "none"):
        raise ConfigError(f"networks.E.norm must be batch or none, got {norm!r}")
    convs, width = _conv_trunk(channels, image_size, filters, norm, "networks.E")
    if hidden < 0:
        raise ConfigError(f"networks.E.hidden must be >= 0 (0: no hidden layer), got {hidden}")
    trunk = nn.Sequential(convs, *(_mlp_layers([width, hidden], "none", False) if hidden else []))
    return Encoder(trunk, hidden or width, latent_dim, stochastic, init)


class JointDiscriminator(nn.Module):
    """D(x, z): x features and z features concatenated, then a joint MLP to one raw score per pair."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    def __init__(self, x_trunk: nn.Module, x_features: int, latent_dim: int, z_hidden: Sequence[int],
                 joint_hidden: Sequence[int], dropout: float, init: InitScheme):
        super().__init__()
        check_widths(z_hidden, "networks.D.z_hidden")
        check_widths(joint_hidden, "networks.D.joint_hidden")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"networks.D.dropout must be in [0, 1), got {dropout}")
        self.latent_dim = latent_dim
        self.x_trunk = x_trunk
        self.z_trunk = nn.Sequential(*_mlp_layers([latent_dim, *z_hidden], "none", False))
        joint_in = x_features + (z_hidden[-1] if z_hidden else latent_dim)
        self.joint = nn.Sequential(*_mlp_layers([joint_in, *joint_hidden], "none", False, dropout))
        self.head = nn.Sequential(*([nn.Dropout(dropout)] if dropout else []),
                                  nn.Linear(joint_hidden[-1] if joint_hidden else joint_in, 1))
        init_weights(self, init)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim or len(z) != len(x):
            raise ValueError(f"the joint discriminator takes one {self.latent_dim}-d code per image, got codes of "
                             f"shape {list(z.shape)} for {len(x)} images")
        h = torch.cat([self.x_trunk(x), self.z_trunk(z.to(x.dtype))], 1)
        return self.head(self.joint(h)).squeeze(1)


@register_network("joint-discriminator", "bigan-mlp", SOURCE)
def mlp_joint_discriminator(latent_dim: int, sample_shape: Sequence[int], hidden: Sequence[int] = (1024,),
                            z_hidden: Sequence[int] = (1024,), joint_hidden: Sequence[int] = (1024,),
                            dropout: float = 0.0, init: InitScheme = "dcgan") -> JointDiscriminator:
    """x: flatten -> ``hidden`` MLP; z: ``z_hidden`` MLP; joint: ``joint_hidden`` MLP -> score."""
    check_widths(hidden, "networks.D.hidden")
    width = math.prod(sample_shape)
    trunk = nn.Sequential(nn.Flatten(), *_mlp_layers([width, *hidden], "none", False))
    return JointDiscriminator(trunk, hidden[-1] if hidden else width, latent_dim, z_hidden, joint_hidden, dropout,
                              init)


@register_network("joint-discriminator", "bigan-conv", SOURCE)
def conv_joint_discriminator(latent_dim: int, channels: int = 1, image_size: int = 28,
                             filters: Sequence[int] = (32, 64), z_hidden: Sequence[int] = (256,),
                             joint_hidden: Sequence[int] = (512,), dropout: float = 0.0,
                             init: InitScheme = "dcgan") -> JointDiscriminator:
    """x: stride-2 k4 convs of ``filters`` widths (no BN); z: ``z_hidden`` MLP; joint: ``joint_hidden`` -> score."""
    convs, width = _conv_trunk(channels, image_size, filters, "none", "networks.D")
    return JointDiscriminator(convs, width, latent_dim, z_hidden, joint_hidden, dropout, init)
