"""Multi-layer perceptron GANs.

``mlp`` on images: the basic GAN of seed 003 (section 1): G = Dense(1024, ReLU) -> Dense(28*28, tanh) -> reshape;
D = Flatten -> Dense(256, ReLU) -> Dense(128, ReLU) -> Dense(1). The same classes serve vector data (the 2-D
toy mixtures), where G's output is linear; for the toy recipe the hidden sizes follow the unrolled-GAN /
VEEGAN experiments' small MLPs (set in the recipe).
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn as nn

from .common import GeneratorBase, OutputActivation, output_activation
from .init import InitScheme, init_weights
from .registry import register_network

SEED003 = "seed 003, section 1 (basic GAN build_generator / build_discriminator)"
Hidden = Literal["relu", "leaky_relu", "elu"]


def _act(name: Hidden) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "elu": nn.ELU()}[name]


def _stack(sizes: Sequence[int], act: Hidden) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), _act(act)]
    return layers


@register_network("generator", "mlp", SEED003)
class MLPGenerator(GeneratorBase):
    def __init__(self, latent_dim: int, sample_shape: Sequence[int], cond_dim: int = 0, hidden: Sequence[int] = (1024,),
                 activation: Hidden = "relu", out_activation: OutputActivation = "tanh", init: InitScheme = "keras"):
        super().__init__()
        self.latent_dim, self.out_activation = latent_dim, out_activation
        self.sample_shape = tuple(sample_shape)
        out = math.prod(self.sample_shape)
        self.net = nn.Sequential(*_stack([latent_dim + cond_dim, *hidden], activation), nn.Linear(hidden[-1] if hidden else latent_dim + cond_dim, out))
        self.act = output_activation(out_activation)
        init_weights(self, init)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.act(self.net(self.join_inputs(z, cond))).view(len(z), *self.sample_shape)


@register_network("discriminator", "mlp", SEED003)
class MLPDiscriminator(nn.Module):
    def __init__(self, sample_shape: Sequence[int], hidden: Sequence[int] = (256, 128), activation: Hidden = "relu",
                 init: InitScheme = "keras"):
        super().__init__()
        d_in = math.prod(tuple(sample_shape))
        self.trunk = nn.Sequential(nn.Flatten(), *_stack([d_in, *hidden], activation))
        self.feature_dim = hidden[-1] if hidden else d_in
        self.head = nn.Linear(self.feature_dim, 1)
        init_weights(self, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(1)
