"""Triple-GAN's three networks for 28x28 digits (Li et al. 2017, "Triple Generative Adversarial Nets"; seed 002
part 3.2 / section 2.2: a classifier C, a discriminator D of (x, y) pairs and a conditional generator G).

The seed text describes the three players but gives no layers; these follow the authors' MNIST code
(github.com/zhenxuan00/triple-gan, ``x2y_yz2x_xy2p_ssl_mnist.py``), ported to PyTorch:

``triplegan-mlp`` generator, G(z, y): [z, onehot(y)] -> Dense(500) -> BN -> softplus -> [h, onehot(y)] ->
  Dense(500) -> BN -> softplus -> [h, onehot(y)] -> Dense(784) -> sigmoid. The label is concatenated before
  every layer (their ``MLPConcatLayer``). The output layer is weight-normalised with a trainable scale per pixel
  (their ``l2normalize``; ``out_weight_norm: false`` gives a plain Linear).
``triplegan-mlp`` pair discriminator, D(x, y): Gaussian noise (std 0.3) on x -> [x, onehot(y)] -> Dense(1000) ->
  then for 500, 250, 250, 250 units: Gaussian noise (std 0.5) -> [h, onehot(y)] -> Dense -> ReLU; last: noise ->
  [h, onehot(y)] -> Dense(1). Dense layers are weight-normalised with a fixed unit scale (their
  ``nn.DenseLayer``: W = theta / ||theta|| per unit). D returns the raw score; the sigmoid lives in the loss.
  (Their listing concatenates the label twice in a row after the first layer; once is kept here.)
``triplegan-cnn`` classifier, C(x): Conv(32, 5, valid)-BN-ReLU-MaxPool(2)-Dropout(0.5) -> Conv(64, 3, same)-BN-
  ReLU -> Conv(64, 3, valid)-BN-ReLU-MaxPool(2)-Dropout(0.5) -> Conv(128, 3, same)-BN-ReLU -> Conv(128, 3,
  same)-BN-ReLU -> global average pool -> Dense(classes). Returns logits (softmax in the loss).

Initialisation: G glorot-uniform (Lasagne's default, ``init: keras``); D theta ~ N(0, 0.1) as theirs; C's convs
keep PyTorch's default (theirs: N(0, 0.05); BN follows every conv, so only the direction matters) and its Dense
head N(0, 0.01) as theirs. Lasagne's BN keeps 0.9 of the running statistics: PyTorch momentum 0.1.

Gaussian noise and dropout are active only in training mode; their draws use the global torch RNG, which
checkpoints save, so a resumed run is exact.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .common import GeneratorBase, OutputActivation, output_activation
from .init import InitScheme, init_weights
from .registry import register_network

AUTHORS = "Li et al. 2017 (Triple-GAN), authors' MNIST code x2y_yz2x_xy2p_ssl_mnist.py; seed 002 part 3.2"


class GaussianNoise(nn.Module):
    """x + N(0, std^2) in training mode; identity in eval mode (improved-GAN / Triple-GAN ``GaussianNoiseLayer``)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x + torch.randn_like(x) * self.std

    def extra_repr(self) -> str:
        return f"std={self.std}"


class UnitNormLinear(nn.Linear):
    """Dense layer whose weight rows (one per output unit) are normalised to unit L2 norm: weight normalisation
    with the scale fixed at 1 (the authors' ``nn.DenseLayer``, used in D), so the layer cannot grow its gain."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight / self.weight.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return F.linear(x, w, self.bias)


class ScaledUnitNormLinear(UnitNormLinear):
    """Weight normalisation with a trainable scale per output unit, initialised to 1 (the authors' ``l2normalize``
    on G's output layer): the output's gain grows only through ``scale``, which keeps the sigmoid from saturating
    early in training."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features)
        self.scale = nn.Parameter(torch.ones(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * (self.scale / self.weight.norm(dim=1).clamp_min(1e-6)).unsqueeze(1)
        return F.linear(x, w, self.bias)


@register_network("generator", "triplegan-mlp", AUTHORS)
class TripleGANGenerator(GeneratorBase):
    """G(z, cond) with the condition (a one-hot label) concatenated to the input of every layer."""

    def __init__(self, latent_dim: int, sample_shape: Sequence[int], cond_dim: int = 0,
                 hidden: Sequence[int] = (500, 500), out_activation: OutputActivation = "sigmoid",
                 out_weight_norm: bool = True, bn_momentum: float = 0.1, init: InitScheme = "keras"):
        super().__init__()
        if not hidden or any(h < 1 for h in hidden):
            raise ConfigError(f"hidden must list one or more positive layer sizes, got {list(hidden)}")
        self.latent_dim, self.out_activation, self.cond_dim = latent_dim, out_activation, cond_dim
        self.sample_shape = tuple(sample_shape)
        sizes = [latent_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a + cond_dim, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b, momentum=bn_momentum) for b in hidden)
        out_layer = ScaledUnitNormLinear if out_weight_norm else nn.Linear
        self.out = out_layer(hidden[-1] + cond_dim, math.prod(self.sample_shape))
        self.act = output_activation(out_activation)
        init_weights(self, init)

    def _join(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.join_inputs(h, cond) if self.cond_dim else h

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim and (cond is None or cond.shape[1] != self.cond_dim):
            raise ValueError(f"this generator takes a {self.cond_dim}-d condition")
        h = z
        for layer, norm in zip(self.layers, self.norms):
            h = F.softplus(norm(layer(self._join(h, cond))))
        return self.act(self.out(self._join(h, cond))).view(len(z), *self.sample_shape)


@register_network("pair_discriminator", "triplegan-mlp", AUTHORS)
class TripleGANPairDiscriminator(nn.Module):
    """D(x, y): one raw score per (image, label) pair; high means "a real pair from the data"."""

    def __init__(self, sample_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (1000, 500, 250, 250, 250),
                 input_noise: float = 0.3, hidden_noise: float = 0.5, weight_norm: bool = True):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"a pair discriminator needs >= 2 classes, got {num_classes}")
        if input_noise < 0 or hidden_noise < 0:
            raise ConfigError(f"input_noise and hidden_noise must be >= 0 (got {input_noise}, {hidden_noise})")
        if not hidden or any(h < 1 for h in hidden):
            raise ConfigError(f"hidden must list one or more positive layer sizes, got {list(hidden)}")
        self.num_classes = num_classes
        linear = UnitNormLinear if weight_norm else nn.Linear
        sizes = [math.prod(tuple(sample_shape)), *hidden]
        self.noise = nn.ModuleList([GaussianNoise(input_noise)] + [GaussianNoise(hidden_noise) for _ in hidden])
        self.layers = nn.ModuleList(linear(a + num_classes, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = linear(hidden[-1] + num_classes, 1)
        # The authors' theta ~ N(0, 0.1) (only the direction matters with unit-norm rows), zero biases.
        for m in [*self.layers, self.head]:
            nn.init.normal_(m.weight, 0.0, 0.1)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``cond``: one-hot labels (B x classes), or soft label vectors."""
        h = x.flatten(1)
        cond = cond.to(h.dtype)
        for noise, layer in zip(self.noise[:-1], self.layers):
            h = F.relu(layer(torch.cat([noise(h), cond], 1)))
        return self.head(torch.cat([self.noise[-1](h), cond], 1)).squeeze(1)


@register_network("classifier", "triplegan-cnn", AUTHORS)
class TripleGANClassifier(nn.Module):
    """C(x): class logits. ``filters`` are the five conv widths (authors: 32, 64, 64, 128, 128)."""

    def __init__(self, num_classes: int, sample_shape: Sequence[int] = (1, 28, 28),
                 filters: Sequence[int] = (32, 64, 64, 128, 128), dropout: float = 0.5, bn_momentum: float = 0.1,
                 init: InitScheme = "pytorch"):
        super().__init__()
        if len(sample_shape) != 3:
            raise ConfigError(f"triplegan-cnn classifies images (C x H x W), but the data's samples have shape "
                              f"{tuple(sample_shape)}; use an image source such as mnist5k")
        channels, image_size = sample_shape[0], min(sample_shape[1:])
        if len(filters) != 5 or any(f < 1 for f in filters):
            raise ConfigError(f"filters must be five positive conv widths, got {list(filters)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        if image_size < 16:
            raise ConfigError(f"triplegan-cnn needs images of at least 16 px, got data.image_size={image_size}")
        f1, f2, f3, f4, f5 = filters

        def block(cin: int, cout: int, k: int, pad: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, padding=pad), nn.BatchNorm2d(cout, momentum=bn_momentum), nn.ReLU()]

        self.trunk = nn.Sequential(
            *block(channels, f1, 5, 0), nn.MaxPool2d(2), nn.Dropout(dropout),
            *block(f1, f2, 3, 1),
            *block(f2, f3, 3, 0), nn.MaxPool2d(2), nn.Dropout(dropout),
            *block(f3, f4, 3, 1),
            *block(f4, f5, 3, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = f5
        self.head = nn.Linear(f5, num_classes)
        init_weights(self, init)
        nn.init.normal_(self.head.weight, 0.0, 0.01)   # the authors' Dense init N(0, 1e-2)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))
