"""StackedGAN's networks on MNIST (seed 004 section 10.4, listings 6.2.1-6.2.4; spec 6.3).

Two encoder stages (a CNN classifier cut in two) and one GAN per stage that inverts it:

- ``E0`` (``feature-encoder``, listing 6.2.1): Conv(64, k3, same, ReLU) -> MaxPool(2) -> Conv(64, k3, same, ReLU)
  -> MaxPool(2) -> flatten (3136 at 28 px) -> Dense(256, ReLU) = feature1. 840,640 parameters.
- ``E1`` (``feature-classifier``): Dense(10) on feature1 (softmax in the loss). 2,570 parameters.
- ``G1`` (``feature-generator``, listing 6.2.2): [one-hot label (10), z1 (50)] = 60 inputs -> Dense(512, ReLU) ->
  BN -> Dense(512, ReLU) -> BN -> Dense(256, ReLU) = fake feature1 (Dense+ReLU *then* BN, as the listing).
  427,264 trainable parameters. (The listing's comment "10 + 50 = 62-dim" is a slip: it is 60.)
- ``G0``: the book's shared generator ``gan.generator(feature1, codes=z0)``, i.e. ``dcgan-book`` with 256 + 50
  inputs (the recipe names it; no class here). 2,592,833 parameters.
- ``D0`` (``discriminator``, ``gan.discriminator(inputs, num_codes=50)``): the ``dcgan-book`` trunk and source
  head plus Q0: Dense(50) -> tanh on the flattened 4096-d trunk output. 1,285,427 parameters.
- ``D1`` (``feature-discriminator``, listing 6.2.3): Dense(256, ReLU) -> Dense(256, ReLU) -> source Dense(1) and
  Q1: Dense(50) -> tanh, both heads sharing the two layers. 144,691 parameters.

Discriminators return the raw source score (the book's sigmoid is in the BCE loss) and the tanh code estimate.
Keras defaults throughout: glorot-uniform kernels, zero biases, BN momentum 0.99 / eps 1e-3.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import keras_bn_momentum
from .dcgan import BookDCGANDiscriminator
from .init import InitScheme, init_weights
from .registry import register_network

BOOK = "seed 004 section 10.4, stackedgan-mnist-6.2.1.py listings 6.2.1-6.2.4 (spec 6.3)"


class StageOutputs(NamedTuple):
    """Raw outputs of a StackedGAN discriminator for a batch of B inputs."""

    source: torch.Tensor      # B: real/fake score (logit)
    code: torch.Tensor        # B x z_dim: the Q network's tanh estimate of the stage's noise code


@register_network("feature-encoder", "stackedgan-book", BOOK + ", build_encoder: Encoder0")
class FeatureEncoder(nn.Module):
    """Encoder0: image -> feature1 (the intermediate feature the stacked GANs learn to invert)."""

    def __init__(self, feature_dim: int, image_size: int = 28, channels: int = 1, filters: int = 64,
                 kernel_size: int = 3, init: InitScheme = "keras"):
        super().__init__()
        if image_size < 4:
            raise ConfigError(f"the stackedgan-book encoder needs images of at least 4 px, got {image_size}")
        pad = kernel_size // 2
        side = image_size // 2 // 2
        self.feature_dim = feature_dim
        self.net = nn.Sequential(
            nn.Conv2d(channels, filters, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(filters, filters, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(filters * side * side, feature_dim), nn.ReLU())
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_network("feature-classifier", "stackedgan-book", BOOK + ", build_encoder: Encoder1")
class FeatureClassifier(nn.Module):
    """Encoder1: feature1 -> class logits (the book's softmax lives in the cross-entropy)."""

    def __init__(self, feature_dim: int, num_classes: int, init: InitScheme = "keras"):
        super().__init__()
        self.feature_dim = feature_dim
        self.out = nn.Linear(feature_dim, num_classes)
        init_weights(self, init)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.out(feature)


@register_network("feature-generator", "stackedgan-book", BOOK + ", build_generator: gen1")
class FeatureGenerator(nn.Module):
    """Generator1: (one-hot label, z1) -> fake feature1."""

    def __init__(self, latent_dim: int, feature_dim: int, num_classes: int, hidden: Sequence[int] = (512, 512),
                 bn_momentum: float = 0.99, bn_eps: float = 1e-3, init: InitScheme = "keras"):
        super().__init__()
        self.latent_dim, self.feature_dim = latent_dim, feature_dim
        layers: list[nn.Module] = []
        width = num_classes + latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(),
                       nn.BatchNorm1d(h, momentum=keras_bn_momentum(bn_momentum), eps=bn_eps)]
            width = h
        layers += [nn.Linear(width, feature_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        # the listing's order: concatenate([labels, z1])
        return self.net(torch.cat([cond.to(z.dtype), z], 1))


@register_network("discriminator", "stackedgan-book", BOOK + ", gan.discriminator(inputs, num_codes=z_dim): dis0 + Q0")
class ImageStageDiscriminator(BookDCGANDiscriminator):
    """Discriminator0 + Q0: image -> (real/fake score, tanh estimate of z0)."""

    def __init__(self, latent_dim: int, image_size: int = 28, channels: int = 1,
                 filters: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 5, leaky_slope: float = 0.2,
                 init: InitScheme = "keras"):
        super().__init__(image_size=image_size, channels=channels, filters=filters, kernel_size=kernel_size,
                         leaky_slope=leaky_slope, init=init)
        self.latent_dim = latent_dim
        self.q = nn.Linear(self.feature_dim, latent_dim)
        init_weights(self.q, init)

    def forward(self, x: torch.Tensor) -> StageOutputs:   # type: ignore[override]
        h = self.trunk(x)
        return StageOutputs(self.head(h).squeeze(1), torch.tanh(self.q(h)))


@register_network("feature-discriminator", "stackedgan-book", BOOK + ", build_discriminator: dis1 + Q1")
class FeatureStageDiscriminator(nn.Module):
    """Discriminator1 + Q1: feature1 -> (real/fake score, tanh estimate of z1)."""

    def __init__(self, latent_dim: int, feature_dim: int, hidden: Sequence[int] = (256, 256),
                 init: InitScheme = "keras"):
        super().__init__()
        self.latent_dim, self.feature_dim = latent_dim, feature_dim
        layers: list[nn.Module] = []
        width = feature_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        self.q = nn.Linear(width, latent_dim)
        init_weights(self, init)

    def forward(self, feature: torch.Tensor) -> StageOutputs:
        h = self.trunk(feature)
        return StageOutputs(self.head(h).squeeze(1), torch.tanh(self.q(h)))
