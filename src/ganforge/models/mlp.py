"""Multi-layer perceptron GANs.

``mlp`` on images: the basic GAN of seed 003 (section 1): G = Dense(1024, ReLU) -> Dense(28*28, tanh) -> reshape;
D = Flatten -> Dense(256, ReLU) -> Dense(128, ReLU) -> Dense(1). The same classes serve vector data (the 2-D
toy mixtures), where G's output is linear; for the toy recipe the hidden sizes follow the unrolled-GAN /
VEEGAN experiments' small MLPs (set in the recipe).

The discriminator returns a raw, linear score (seed 003 section 2 "change 1": ``Dense(1, activation='linear')``);
the basic GAN's sigmoid lives in its loss. ImprovedDCGAN options (Salimans et al. 2016; seed 002 part 2 section 2):
``norm: virtual`` in G (VBN after every hidden Dense, before the activation; ``batch`` gives ordinary BN there) and
``minibatch_kernels: B`` in D (minibatch discrimination between the last hidden layer f(x) and the output).
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn as nn

from ..nn.vbn import VirtualBatchNorm, VirtualBatchNormHost
from .common import GeneratorBase, OutputActivation, check_widths, output_activation
from .dcgan import minibatch_layer
from .init import InitScheme, init_weights
from .registry import register_network

SEED003 = "seed 003, section 1 (basic GAN build_generator / build_discriminator)"
Hidden = Literal["relu", "leaky_relu", "elu"]
HiddenNorm = Literal["none", "batch", "virtual"]


def _act(name: Hidden) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "elu": nn.ELU()}[name]


def _norm(name: HiddenNorm, width: int) -> list[nn.Module]:
    if name == "batch":
        return [nn.BatchNorm1d(width)]
    if name == "virtual":
        return [VirtualBatchNorm(width)]
    return []


def _stack(sizes: Sequence[int], act: Hidden, norm: HiddenNorm = "none") -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), *_norm(norm, b), _act(act)]
    return layers


@register_network("generator", "mlp", SEED003)
class MLPGenerator(GeneratorBase, VirtualBatchNormHost):
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    def __init__(self, latent_dim: int, sample_shape: Sequence[int], cond_dim: int = 0, hidden: Sequence[int] = (1024,),
                 activation: Hidden = "relu", out_activation: OutputActivation = "tanh", init: InitScheme = "keras",
                 norm: HiddenNorm = "none", vbn_reference_size: int = 64):
        super().__init__()
        check_widths(hidden, "hidden")
        self.latent_dim, self.out_activation = latent_dim, out_activation
        self.sample_shape = tuple(sample_shape)
        out = math.prod(self.sample_shape)
        self.net = nn.Sequential(*_stack([latent_dim + cond_dim, *hidden], activation, norm),
                                 nn.Linear(hidden[-1] if hidden else latent_dim + cond_dim, out))
        self.act = output_activation(out_activation)
        init_weights(self, init)
        if norm == "virtual":
            self.init_vbn_reference(vbn_reference_size, latent_dim + cond_dim)

    def vbn_forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.act(self.net(inputs)).view(len(inputs), *self.sample_shape)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.vbn_forward(self.join_inputs(z, cond))


@register_network("discriminator", "mlp", SEED003)
class MLPDiscriminator(nn.Module):
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    def __init__(self, sample_shape: Sequence[int], hidden: Sequence[int] = (256, 128), activation: Hidden = "relu",
                 init: InitScheme = "keras", minibatch_kernels: int = 0, minibatch_kernel_dim: int = 5):
        super().__init__()
        check_widths(hidden, "hidden")
        d_in = math.prod(tuple(sample_shape))
        self.trunk = nn.Sequential(nn.Flatten(), *_stack([d_in, *hidden], activation))
        self.feature_dim = hidden[-1] if hidden else d_in
        self.minibatch = minibatch_layer(self.feature_dim, minibatch_kernels, minibatch_kernel_dim)
        self.head = nn.Linear(self.feature_dim + minibatch_kernels, 1)
        init_weights(self, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw scores (B,), last hidden layer f(x)): the features feature matching compares."""
        h = self.trunk(x)
        head_in = self.minibatch(h) if self.minibatch is not None else h
        return self.head(head_in).squeeze(1), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
