"""DCGAN networks of the seeds.

``dcgan-book``: the shared builders of seed 000's book code, ``lib/gan.py`` (Atienza, *Advanced Deep Learning
with Keras*; spec sections 0.3-0.4):
  G: Dense(7*7*128) -> reshape -> [BN -> ReLU -> ConvTranspose k5] x 4 with filters 128 (s2), 64 (s2), 32 (s1),
     channels (s1) -> sigmoid. The stride rule is the book's: stride 2 while filters > layer_filters[-2].
  D: [LeakyReLU(0.2) -> Conv k5] x 4 with filters 32, 64, 128 (s2), 256 (s1) -> flatten -> Dense(1). No BN
     ("the network does not converge with BN"). The LeakyReLU is applied to the raw input image too.
  Keras BN is momentum 0.99 / eps 1e-3 (PyTorch momentum 0.01); kernels glorot-uniform, zero biases.
  The discriminator returns the raw score; the book's sigmoid lives in the loss (BCE with logits). That raw score
  is also the *linear* critic output WGAN (``activation='linear'``) and LSGAN (``activation=None``) use: one
  network serves all three (spec 0.4).
  ImprovedDCGAN options (Salimans et al. 2016; seed 002 part 2 section 2): ``norm: virtual`` in G replaces every
  BatchNorm by virtual batch normalisation (the seed: VBN "is only used in the generator"); ``minibatch_kernels: B``
  in D inserts minibatch discrimination between the trunk's features f(x) and the head (the seed: o(X) "is the
  input of the layer after f(x)"), so the head sees [f(x), o(x)].

``dcgan-upsample``: the DCGAN of seed 001's Fashion-MNIST project (section 8.1 listings):
  G: Dense(128*7*7, ReLU) -> reshape -> UpSampling2D -> Conv k3 (128) -> BN(0.8) -> ReLU -> UpSampling2D ->
     Conv k3 (64) -> BN(0.8) -> ReLU -> Conv k3 (channels) -> tanh.
  D: Conv k3 s2 (32) -> LeakyReLU(0.2) -> Dropout(0.25) -> Conv k3 s2 (64) -> ZeroPad((0,1),(0,1)) -> BN(0.8) ->
     LeakyReLU -> Dropout -> Conv k3 s2 (128) -> BN -> LeakyReLU -> Dropout -> Conv k3 s1 (256) -> BN ->
     LeakyReLU -> Dropout -> flatten -> Dense(1).
  The book's later project listing puts ReLU inside Conv before BN and ends G in ReLU; the text (8.1.3) says
  conv => BN => ReLU and tanh, which matches the data scaled to [-1, 1]: that is what is built here.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..nn.minibatch import MinibatchDiscrimination
from ..nn.vbn import VirtualBatchNorm, VirtualBatchNormHost
from .common import (GeneratorBase, OutputActivation, check_image_size, check_widths, keras_bn_momentum,
                     output_activation)
from .init import InitScheme, init_weights
from .registry import register_network

BOOK = "seed 000, lib/gan.py generator()/discriminator() (spec 0.3-0.4)"
UPSAMPLE = "seed 001, section 8.1.3-8.1.4 and the Fashion-MNIST project listings"


Norm = Literal["batch", "virtual"]


def minibatch_layer(features: int, kernels: int, kernel_dim: int) -> MinibatchDiscrimination | None:
    """Minibatch discrimination on ``features`` inputs, or None when ``kernels`` is 0 (the default: off)."""
    if kernels < 0:
        raise ConfigError(f"minibatch_kernels must be >= 0 (0 = no minibatch discrimination), got {kernels}")
    return MinibatchDiscrimination(features, kernels, kernel_dim) if kernels else None


@register_network("generator", "dcgan-book", BOOK)
class BookDCGANGenerator(GeneratorBase, VirtualBatchNormHost):
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    def __init__(self, latent_dim: int, image_size: int = 28, channels: int = 1, cond_dim: int = 0,
                 filters: Sequence[int] = (128, 64, 32), kernel_size: int = 5, out_activation: OutputActivation = "sigmoid",
                 bn_momentum: float = 0.99, bn_eps: float = 1e-3, init: InitScheme = "keras", norm: Norm = "batch",
                 vbn_reference_size: int = 64):
        """``norm: virtual``: VBN instead of BN (ImprovedDCGAN), against a reference batch of
        ``vbn_reference_size`` inputs that the training algorithm fixes at the start."""
        super().__init__()
        check_image_size(image_size, 4, "dcgan-book", minimum=8)
        check_widths(filters, "filters")
        self.latent_dim, self.out_activation = latent_dim, out_activation
        layer_filters = [*filters, channels]
        self.start = image_size // 4
        self.fc = nn.Linear(latent_dim + cond_dim, self.start * self.start * layer_filters[0])
        blocks: list[nn.Module] = []
        in_ch = layer_filters[0]
        for out_ch in layer_filters:
            stride = 2 if out_ch > layer_filters[-2] else 1
            blocks += [
                (nn.BatchNorm2d(in_ch, momentum=keras_bn_momentum(bn_momentum), eps=bn_eps) if norm == "batch"
                 else VirtualBatchNorm(in_ch, eps=bn_eps)),
                nn.ReLU(),
                nn.ConvTranspose2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2,
                                   output_padding=stride - 1),
            ]
            in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.act = output_activation(out_activation)
        init_weights(self, init)
        if norm == "virtual":
            self.init_vbn_reference(vbn_reference_size, latent_dim + cond_dim)

    def vbn_forward(self, inputs: torch.Tensor) -> torch.Tensor:
        h = self.fc(inputs).view(len(inputs), -1, self.start, self.start)
        return self.act(self.blocks(h))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.vbn_forward(self.join_inputs(z, cond))


@register_network("discriminator", "dcgan-book", BOOK)
class BookDCGANDiscriminator(nn.Module):
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    def __init__(self, image_size: int = 28, channels: int = 1, filters: Sequence[int] = (32, 64, 128, 256),
                 kernel_size: int = 5, leaky_slope: float = 0.2, batchnorm: bool = False, init: InitScheme = "keras",
                 minibatch_kernels: int = 0, minibatch_kernel_dim: int = 5):
        """``batchnorm=True`` inserts BN before each LeakyReLU (after the first conv): the ablation of seed 000
        Fig. 5.1.5, where DCGAN becomes unstable and WGAN does not. ``minibatch_kernels=B`` (> 0) adds minibatch
        discrimination with B kernels of ``minibatch_kernel_dim`` (Salimans et al.: 100 and 5) before the head."""
        super().__init__()
        check_image_size(image_size, 4, "dcgan-book", minimum=8)
        check_widths(filters, "filters")
        layers: list[nn.Module] = []
        in_ch, size = channels, image_size
        for i, out_ch in enumerate(filters):
            stride = 1 if out_ch == filters[-1] else 2
            if batchnorm and i > 0:
                layers.append(nn.BatchNorm2d(in_ch, momentum=0.01, eps=1e-3))
            layers += [nn.LeakyReLU(leaky_slope), nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2)]
            in_ch = out_ch
            size = (size + stride - 1) // stride
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = in_ch * size * size
        self.minibatch = minibatch_layer(self.feature_dim, minibatch_kernels, minibatch_kernel_dim)
        self.head = nn.Linear(self.feature_dim + minibatch_kernels, 1)
        init_weights(self, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened trunk output (4096-d at 28x28): input to every head (source, class, codes)."""
        return self.trunk(x)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw scores (B,), trunk features f(x) (B, 4096)): feature matching compares the f(x) of real and fake
        batches (Salimans et al. take the layer before minibatch discrimination, as here)."""
        h = self.trunk(x)
        head_in = self.minibatch(h) if self.minibatch is not None else h
        return self.head(head_in).squeeze(1), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]


@register_network("generator", "dcgan-upsample", UPSAMPLE)
class UpsampleDCGANGenerator(GeneratorBase):
    def __init__(self, latent_dim: int, image_size: int = 28, channels: int = 1, cond_dim: int = 0,
                 filters: Sequence[int] = (128, 64), kernel_size: int = 3, out_activation: OutputActivation = "tanh",
                 bn_momentum: float = 0.8, bn_eps: float = 1e-3, init: InitScheme = "keras"):
        super().__init__()
        check_image_size(image_size, 4, "dcgan-upsample", minimum=8)
        check_widths(filters, "filters")
        self.latent_dim, self.out_activation = latent_dim, out_activation
        self.start = image_size // 4
        self.fc = nn.Sequential(nn.Linear(latent_dim + cond_dim, filters[0] * self.start ** 2), nn.ReLU())
        mom, pad = keras_bn_momentum(bn_momentum), kernel_size // 2
        layers: list[nn.Module] = []
        in_ch = filters[0]
        for i, out_ch in enumerate(filters):
            if i < 2:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size, padding=pad), nn.BatchNorm2d(out_ch, momentum=mom, eps=bn_eps),
                       nn.ReLU()]
            in_ch = out_ch
        if len(filters) < 2:
            layers.append(nn.Upsample(scale_factor=2 ** (2 - len(filters)), mode="nearest"))
        layers.append(nn.Conv2d(in_ch, channels, kernel_size, padding=pad))
        self.blocks = nn.Sequential(*layers)
        self.act = output_activation(out_activation)
        init_weights(self, init)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(self.join_inputs(z, cond)).view(len(z), -1, self.start, self.start)
        return self.act(self.blocks(h))


@register_network("discriminator", "dcgan-upsample", UPSAMPLE)
class DropoutDCGANDiscriminator(nn.Module):
    def __init__(self, image_size: int = 28, channels: int = 1, filters: Sequence[int] = (32, 64, 128, 256),
                 kernel_size: int = 3, leaky_slope: float = 0.2, dropout: float = 0.25, bn_momentum: float = 0.8,
                 bn_eps: float = 1e-3, zero_pad: bool = True, init: InitScheme = "keras"):
        """``zero_pad`` is the listing's ZeroPadding2D((0,1),(0,1)) after the second conv (7x7 -> 8x8 at 28 px)."""
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        check_widths(filters, "filters")
        mom, pad = keras_bn_momentum(bn_momentum), kernel_size // 2
        layers: list[nn.Module] = []
        in_ch, size = channels, image_size
        for i, out_ch in enumerate(filters):
            stride = 1 if i == len(filters) - 1 else 2
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size, stride, pad))
            size = (size + stride - 1) // stride
            if i == 1 and zero_pad:
                layers.append(nn.ZeroPad2d((0, 1, 0, 1)))
                size += 1
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch, momentum=mom, eps=bn_eps))
            layers += [nn.LeakyReLU(leaky_slope), nn.Dropout(dropout)]
            in_ch = out_ch
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = in_ch * size * size
        self.head = nn.Linear(self.feature_dim, 1)
        init_weights(self, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.head(h).squeeze(1), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
