"""ResNet translator: the image-to-image generator of CycleGAN (Zhu et al. 2017) and StarGAN (Choi et al. 2018).

Johnson et al. 2016's style-transfer network as CycleGAN's appendix 7.2 gives it, in the official code's form
(junyanz/pytorch-CycleGAN-and-pix2pix ``ResnetGenerator``), with ``filters`` = 64:

  c7s1-64 -> d128 -> d256 -> R256 x n_blocks -> u128 -> u64 -> c7s1-C_out -> tanh

* c7s1-k: reflection pad 3, 7x7 conv (stride 1) to k channels, norm, ReLU (the last one: no norm, tanh);
* dk: 3x3 conv, stride 2, padding 1, norm, ReLU (halves the map);
* Rk: a residual block, x + [reflection pad 1, 3x3 conv, norm, ReLU, (dropout), reflection pad 1, 3x3 conv, norm];
* uk: 3x3 transposed conv, stride 2, padding 1, output padding 1, norm, ReLU (doubles the map).

``n_blocks``: 9 at 256 px and above, 6 below (the paper: 6 blocks for 128 x 128 training images, 9 for 256 x 256).
``norm``: instance (the paper; affine-free, no running statistics, as the official code), batch or none; a conv
before batch norm has no bias (``common.uses_bias``). ``dropout`` inside the blocks: 0 (CycleGAN's ``--no_dropout``
default). Weights N(0, 0.02) (the official ``init_type=normal``).

Channels: ``channels`` are the input image's, the output's are ``sample_shape[0]`` (the other domain's samples: a
1-channel domain may translate to a 3-channel one). ``cond_dim`` > 0 makes the network G(x, c) of StarGAN: the
condition vector c (N x cond_dim, e.g. a target-domain label) is replicated over the image plane and concatenated to
x as cond_dim extra input channels (Choi et al. 2018, section 3 and appendix). The image side must be a multiple of 4
(two stride-2 convs, then two exact doublings back) and at least 16 (the reflection pads need a map of at least 4 px
at the bottleneck).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import ConfigError
from .common import Norm2d, check_image_size, check_widths, norm2d, uses_bias
from .init import InitScheme, init_weights
from .registry import register_network

SOURCE = ("Zhu et al. 2017 (CycleGAN) appendix 7.2, after Johnson et al. 2016; the official code's ResnetGenerator; "
          "G(x, c) with a replicated condition as Choi et al. 2018 (StarGAN)")

MIN_SIZE = 16
DOWNSAMPLINGS = 2


def default_blocks(image_size: int) -> int:
    """The paper's residual block count for an image side: 9 at 256 px and above, 6 below."""
    return 9 if image_size >= 256 else 6


class ResidualBlock(nn.Module):
    """x + (reflection pad 1, 3x3 conv, norm, ReLU, [dropout], reflection pad 1, 3x3 conv, norm)(x)."""

    def __init__(self, width: int, norm: Norm2d, dropout: float = 0.0):
        super().__init__()
        bias = uses_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=bias), norm2d(norm, width),
                                   nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=bias), norm2d(norm, width)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


@register_network("generator", "resnet-translator", SOURCE)
class ResnetTranslator(nn.Module):
    """Image (and optional condition) in, image of the same size out, in [-1, 1]."""

    value_range = (-1.0, 1.0)
    out_activation = "tanh"

    def __init__(self, channels: int = 3, image_size: int = 256, sample_shape: tuple[int, ...] | None = None,
                 cond_dim: int = 0, filters: int = 64, n_blocks: int | None = None, norm: Norm2d = "instance",
                 dropout: float = 0.0, init: InitScheme = "dcgan"):
        super().__init__()
        check_widths([filters], "filters")
        check_image_size(image_size, 2 ** DOWNSAMPLINGS, "resnet-translator", minimum=MIN_SIZE)
        out_channels = int(sample_shape[0]) if sample_shape else channels
        if sample_shape and tuple(sample_shape[1:]) != (image_size, image_size):
            raise ConfigError(f"the resnet-translator keeps the image size: it takes {image_size} px images, so it "
                              f"cannot make samples of shape {'x'.join(map(str, sample_shape))}")
        blocks = default_blocks(image_size) if n_blocks is None else n_blocks
        if blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0 (the paper: 6 below 256 px, 9 at 256), got {blocks}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1) (the official code's use_dropout: 0.5), got {dropout}")
        if cond_dim < 0:
            raise ConfigError(f"cond_dim must be >= 0, got {cond_dim}")
        bias = uses_bias(norm)
        self.channels, self.out_channels, self.cond_dim, self.n_blocks = channels, out_channels, cond_dim, blocks
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels + cond_dim, filters, 7, bias=bias),
                                   norm2d(norm, filters), nn.ReLU(inplace=True)]
        width = filters
        for _ in range(DOWNSAMPLINGS):
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias), norm2d(norm, width * 2),
                       nn.ReLU(inplace=True)]
            width *= 2
        layers += [ResidualBlock(width, norm, dropout) for _ in range(blocks)]
        for _ in range(DOWNSAMPLINGS):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                       norm2d(norm, width // 2), nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: N x channels x H x W; ``cond``: N x cond_dim (only when cond_dim > 0), replicated over H x W."""
        if self.cond_dim:
            if cond is None or cond.dim() != 2 or cond.shape[1] != self.cond_dim:
                got = "none" if cond is None else f"shape {tuple(cond.shape)}"
                raise ValueError(f"this translator takes a condition of N x {self.cond_dim}, got {got}")
            plane = cond.to(x.dtype).view(*cond.shape, 1, 1).expand(-1, -1, *x.shape[-2:])
            x = torch.cat([x, plane], 1)
        elif cond is not None:
            raise ValueError("this translator has cond_dim=0: it takes no condition")
        return self.model(x)
