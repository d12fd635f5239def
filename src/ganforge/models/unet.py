"""U-Net generator of pix2pix: an encoder-decoder with skip connections between mirrored layers.

Isola et al. 2017 (pix2pix, arXiv 1611.07004) section 3.2.1 and appendix 6.1.1; seed 001's pix2pix section (spec
25.3). For ``filters`` = 64 at 256 x 256 px (Ck = Conv-Norm-LeakyReLU(0.2), CDk the same with Dropout 0.5):

  encoder  C64-C128-C256-C512-C512-C512-C512-C512          (k4 s2 convolutions, 256 px down to 1 x 1)
  decoder  CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128  (k4 s2 transposed convolutions, ReLU; widths after the
                                                            concatenation with the mirrored encoder layer)
  then a k4 s2 transposed convolution to the output channels and tanh.

Depth follows the image size: log2(size) stride-2 levels, down to 1 x 1 (8 at 256 px, 5 at 32 px); widths double per
level from ``filters`` up to ``max_filters``. The layer order is the official code's (``UnetSkipConnectionBlock``):
each encoder layer's conv -> norm output is both its skip and, through LeakyReLU, the next layer's input; each decoder
layer is ReLU -> transposed conv -> norm (-> dropout) on the concatenation [skip, decoder features]. No norm on the
first encoder layer (the paper: "BatchNorm is not applied to the first C64 layer") nor on the innermost one, whose
1 x 1 map batch norm would reduce to its bias at batch size 1 (the official code has none there either); those two
convolutions keep their bias (the official code drops it with batch norm even there). Dropout 0.5 on the innermost
three decoder layers (the paper's CD512-CD1024-CD1024). Weights N(0, 0.02), batch-norm scales N(1, 0.02).

"Dropout as noise" (section 2.1: "we provide noise only in the form of dropout, applied on several layers of our
generator at both training and test time"; section 4, "At inference time, we run the generator net in exactly the
same manner as during the training phase ... we apply dropout at test time, and we apply batch normalization using
the statistics of the test batch"). ``inference`` chooses what the network does in eval mode (sample grids,
``ganforge translate``, ``Model``):

- ``paper`` (default): dropout stays on, its masks drawn per image from the generator given to ``forward`` (pix2pix
  seeds one per image: reproducible, and an image's output never depends on the others translated with it); batch
  norm normalises each image by its own statistics, which is what the paper's test batch of one does (and exactly
  the training computation when training, as the paper, at batch size 1).
- ``eval``: PyTorch's usual inference: no dropout, batch norm with the running averages of training. Deterministic.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .common import GeneratorBase, Norm2d, check_widths, norm2d, uses_bias
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = "Isola et al. 2017 (pix2pix) section 3.2.1 and appendix 6.1.1: the U-Net generator, dropout as noise"
MIN_SIZE = 32
DROPOUT_BLOCKS = 3          # the paper's CD512-CD1024-CD1024: the innermost three decoder layers
LEAKY_SLOPE = 0.2

Inference = Literal["paper", "eval"]


class PerImageTestBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that, in eval mode, normalises each image by its own statistics (the paper's test batch of one)
    instead of the running averages; training mode and the state dict are BatchNorm2d's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


def unet_depth(image_size: int) -> int:
    """Stride-2 levels from ``image_size`` down to 1 x 1; refuses sizes that are not a power of two >= 32."""
    if image_size < MIN_SIZE or image_size & (image_size - 1):
        lower = max(MIN_SIZE, 2 ** int(math.floor(math.log2(max(image_size, 1)))))
        upper = max(MIN_SIZE, 2 ** int(math.ceil(math.log2(max(image_size, 1)))))
        fix = f"{lower}" + (f" (or {upper})" if upper != lower else "")
        raise ConfigError(f"the unet generator halves images down to 1 x 1, so it needs a power-of-two image size "
                          f">= {MIN_SIZE}, got data.image_size={image_size}; use --set data.image_size={fix}")
    return int(math.log2(image_size))


def encoder_widths(depth: int, filters: int, max_filters: int) -> list[int]:
    """Channels of each encoder level: ``filters`` doubling per level, at most ``max_filters``."""
    return [min(filters * 2 ** i, max_filters) for i in range(depth)]


@register_network("generator", "unet", SOURCE)
class UNetGenerator(GeneratorBase):
    """Images of ``channels`` in, of ``sample_shape`` out (C x S x S, S = ``image_size``; None: ``channels`` out).
    The algorithm sets both from the data (pix2pix: the image's and the target's channels, 1 or 3, which may differ),
    as for the other translators (``resnet-translator``)."""
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)

    out_activation = "tanh"

    def __init__(self, channels: int = 3, image_size: int = 256, sample_shape: tuple[int, ...] | None = None,
                 filters: int = 64, max_filters: int = 512, norm: Norm2d = "batch", dropout: float = 0.5,
                 inference: Inference = "paper", init: InitScheme = "dcgan"):
        super().__init__()
        check_widths([filters, max_filters], "filters and max_filters")
        if max_filters < filters:
            raise ConfigError(f"max_filters ({max_filters}) must be >= filters ({filters})")
        if not 0 <= dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1) (the paper: 0.5), got {dropout}")
        if inference not in ("paper", "eval"):
            raise ConfigError(f"inference must be paper (dropout and per-image statistics at test time, as Isola "
                              f"et al.) or eval (PyTorch's eval mode), got {inference!r}")
        norm2d(norm, 1)   # validates the name with its one-line message
        self.latent_dim = 0                     # no z: the noise is the dropout
        self.depth = depth = unet_depth(image_size)
        out_channels = int(sample_shape[0]) if sample_shape else channels
        if sample_shape and tuple(sample_shape[1:]) != (image_size, image_size):
            raise ConfigError(f"the unet generator keeps the image size: it takes {image_size} px images, so it "
                              f"cannot make samples of shape {'x'.join(map(str, sample_shape))}")
        self.in_channels, self.out_channels = channels, out_channels
        self.dropout, self.inference, self.norm = dropout, inference, norm
        widths = encoder_widths(depth, filters, max_filters)

        def normalisation(width: int) -> nn.Module:
            return PerImageTestBatchNorm2d(width) if norm == "batch" else norm2d(norm, width)

        self.down = nn.ModuleList()
        self.down_norm = nn.ModuleList()
        for i in range(depth):
            normed = 0 < i < depth - 1          # not the first layer, not the 1 x 1 innermost one
            self.down.append(nn.Conv2d(channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1,
                                       bias=not normed or uses_bias(norm)))
            self.down_norm.append(normalisation(widths[i]) if normed else nn.Identity())
        # Decoder layers from the innermost (level depth-1) out to the image (level 0): level i maps size/2^(i+1) to
        # size/2^i, from its input (the innermost code alone, else [skip i, decoder features]) to level i-1's width.
        self.up = nn.ModuleList()
        self.up_norm = nn.ModuleList()
        self.up_dropout: list[bool] = []
        for i in reversed(range(depth)):
            width_in = widths[i] if i == depth - 1 else 2 * widths[i]
            outermost = i == 0
            self.up.append(nn.ConvTranspose2d(width_in, out_channels if outermost else widths[i - 1], 4, 2, 1,
                                              bias=outermost or uses_bias(norm)))
            self.up_norm.append(nn.Identity() if outermost else normalisation(widths[i - 1]))
            self.up_dropout.append(not outermost and i >= depth - DROPOUT_BLOCKS and dropout > 0)
        init_weights(self, init)

    @property
    def noise_at_test(self) -> bool:
        """Whether eval-mode outputs are random (dropout kept on: ``inference: paper``), drawn from ``generators``."""
        return self.inference == "paper" and any(self.up_dropout)

    def _drop(self, h: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        if self.training:
            return F.dropout(h, self.dropout, training=True)
        if self.inference == "eval":
            return h
        if generators is None:   # a bare eval-mode call: the noise of seed 0, reproducible
            generators = [torch.Generator(device=h.device).manual_seed(0) for _ in range(len(h))]
        if len(generators) != len(h):
            raise ValueError(f"{len(generators)} dropout generators for a batch of {len(h)} images")
        keep = 1.0 - self.dropout
        mask = torch.stack([torch.empty(h.shape[1:], device=h.device, dtype=h.dtype).bernoulli_(keep, generator=g)
                            for g in generators])
        return h * mask / keep

    def forward(self, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """``x`` N x in_channels x S x S in [-1, 1] to N x out_channels x S x S in [-1, 1]. ``generators`` (one per
        image, on x's device) draw the eval-mode dropout masks under ``inference: paper``; in training mode dropout
        uses torch's own random stream like any dropout layer."""
        skips = []
        h = x
        for i, (conv, norm) in enumerate(zip(self.down, self.down_norm)):
            h = norm(conv(h if i == 0 else F.leaky_relu(h, LEAKY_SLOPE)))
            skips.append(h)
        d = skips[-1]
        for j, (conv, norm, drop) in enumerate(zip(self.up, self.up_norm, self.up_dropout)):
            level = self.depth - 1 - j
            inp = d if level == self.depth - 1 else torch.cat([skips[level], d], 1)
            d = norm(conv(F.relu(inp)))
            if drop:
                d = self._drop(d, generators)
        return torch.tanh(d)
