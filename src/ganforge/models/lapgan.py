"""LapGAN networks and the Laplacian pyramid they live on (Denton, Chintala, Szlam & Fergus 2015, "Deep Generative
Image Models using a Laplacian Pyramid of Adversarial Networks", NIPS; seed 002 chapter 3 part 1, spec 21).

The pyramid. Levels are numbered here from the coarsest, 0, to the finest, K-1 (the paper numbers the other way,
0 the full image): sizes S_k = S / 2^(K-1-k) for an S x S image. With d(.) a downsampling by two and u(.) an
upsampling by two, the Gaussian pyramid is I_{K-1} = I, I_{k-1} = d(I_k); level k >= 1 holds the band-pass residual
h_k = I_k - u(I_{k-1}), and I_k = u(I_{k-1}) + h_k rebuilds every level exactly, whatever d and u are (h is defined
as what u misses). Two operators:

* ``area-bilinear`` (the default): the paper's code (facebookarchive/eyescream, ``cifar/datasets/
  coarse_to_fine_cifar10.lua``: ``image.scale(image.scale(I, coarse), fine)``; torch/image's ``scale`` defaults to
  its ``bilinear`` mode). For a 2x reduction that mode averages each 2 x 2 block (an area/box filter, no Gaussian
  blur); for enlarging it interpolates bilinearly with the corner pixels aligned (source step (n-1)/(2n-1)), i.e.
  ``F.avg_pool2d(x, 2)`` and ``F.interpolate(x, mode="bilinear", align_corners=True)`` here. The paper's text
  says only "d(.) blurs and decimates, u(.) smooths and expands".
* ``gaussian``: the classical Burt & Adelson pyramid the seed writes out (spec 21.2): d convolves with the 5 x 5
  binomial kernel w = [1, 4, 6, 4, 1]^T [1, 4, 6, 4, 1] / 256 and keeps the even rows and columns; u puts each pixel
  at an even position of a zero image twice the size and convolves with 4 w (so a constant image stays constant).
  Borders are reflected. (The seed leaves w open; the binomial kernel is the standard choice, spec 21.2 [V].)

The networks (the paper section 4 "CIFAR10 and STL" and the official code's CIFAR nets, ``train_cifar.lua`` for the
coarsest level and ``train_cifar_coarse_to_fine.lua`` for the others). One module per role holds every level, so a
run has the usual two networks, two optimizer groups and one EMA copy of G; the levels never share a tensor, so one
summed loss trains each level exactly as its own loss would (the paper trains the levels independently).

``lapgan`` pyramid generator:
  level 0 (unconditional, S_0 x S_0): z (latent_dim, U(-1, 1)) -> Linear ``coarse_hidden`` -> ReLU -> Linear
  ``coarse_hidden`` -> ReLU -> Linear C*S_0*S_0 -> ``out_activation`` (the paper: "densely connected nets ... with
  2 hidden layers and ReLU non-linearities ... 1200 [units] for G"; the code's hidden layers are 8000 wide with a
  sigmoid in the middle and a linear output on mean/std-normalised data: the paper's text is built here, with tanh
  for ganforge's [-1, 1] images).
  level k >= 1 (conditional, S_k x S_k): [noise plane z_k (1 channel, U(-1, 1)), l_k = u(I_{k-1}) (C channels)]
  -> Conv 7x7 ``hidden`` -> ReLU -> Conv 7x7 ``hidden`` -> ReLU -> Conv 5x5 C, all stride 1 "same": the residual
  h_k, linear (the code's SpatialConvolutionUpsample with factor 1 and hidden_G 128; "the noise input z_k is
  presented as a 4th colour plane to the low-pass l_k"; "G_k ... convnets with 3 layers").
``lapgan`` pyramid discriminator:
  level 0: x -> Linear ``coarse_hidden`` (600) -> ReLU -> Dropout 0.5 -> Linear 600 -> ReLU -> Dropout -> Linear 1.
  level k >= 1: the paper's D_k takes h and l_k "explicitly added ... before the first convolution layer"
  (``condition: add``, the code's CAddTable: D_k sees h + l_k), or both as channels (``condition: concat``) ->
  Conv 5x5 valid ``hidden`` -> ReLU -> Conv 5x5 stride 2 valid ``hidden`` -> flatten -> ReLU -> Dropout 0.5 ->
  Linear 1 (the code's model_D with hidden_D 128; "D_k ... 2 [conv] layers").
  Every D returns the raw score: the code's final sigmoid lives in the objective.

``init: code`` is the official code's: N(0, 0.05) weights for the coarsest G, N(0, 0.005) for the coarsest D, zero
biases there, and Torch7's default (uniform +-1/sqrt(fan_in), what PyTorch's default also gives) for the convnets;
``dcgan`` N(0, 0.02) everywhere. Widths: ``hidden`` (one width, or one per refining level, coarse to fine) and
``coarse_hidden`` narrow the paper's nets for CPU budgets.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .common import GeneratorBase, OutputActivation, check_widths, output_activation
from .registry import register_network

SOURCE = ("Denton et al. 2015 (LAPGAN) section 4, CIFAR-10 nets of the official code facebookarchive/eyescream "
          "(train_cifar.lua, train_cifar_coarse_to_fine.lua)")
Pyramid = Literal["area-bilinear", "gaussian"]
Condition = Literal["add", "concat"]
LapInit = Literal["code", "dcgan"]
PYRAMIDS = ("area-bilinear", "gaussian")
MIN_REFINED = 9      # the smallest level the refining D's two valid 5x5 convolutions (the second of stride 2) fit


# --------------------------------------------------------------------------------------------------- the pyramid
def check_pyramid(kind: str) -> str:
    if kind not in PYRAMIDS:
        raise ConfigError(f"algorithm.pyramid must be area-bilinear (the paper's code) or gaussian (the seed's 5x5 "
                          f"Gaussian pyramid), got {kind!r}")
    return kind


def level_sizes(image_size: int, levels: int) -> tuple[int, ...]:
    """The side of each level, coarsest first: ``image_size`` halved ``levels - 1`` times, each halving exact."""
    if levels < 1:
        raise ConfigError(f"algorithm.levels must be >= 1 (the paper's CIFAR-10 pyramid has 3), got {levels}")
    sizes = [image_size]
    for _ in range(levels - 1):
        if sizes[0] % 2:
            raise ConfigError(f"a {levels}-level pyramid halves data.image_size={image_size} {levels - 1} times, but "
                              f"{sizes[0]} is odd; use --set algorithm.levels={len(sizes)} or an image size divisible "
                              f"by {2 ** (levels - 1)}")
        sizes.insert(0, sizes[0] // 2)
    return tuple(sizes)


def _binomial(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """``x`` convolved (per channel, reflected borders) with ``gain`` times the 5 x 5 binomial kernel."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (taps[:, None] * taps[None, :] / 256.0 * gain).expand(x.shape[1], 1, 5, 5)
    mode = "reflect" if min(x.shape[-2:]) > 2 else "replicate"    # reflection needs 3 pixels a side
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode=mode), kernel, groups=x.shape[1])


def downsample(x: torch.Tensor, kind: Pyramid = "area-bilinear") -> torch.Tensor:
    """d(x): N x C x H x W -> N x C x H/2 x W/2."""
    if kind == "area-bilinear":
        return F.avg_pool2d(x, 2)
    return _binomial(x)[..., ::2, ::2]


def upsample(x: torch.Tensor, kind: Pyramid = "area-bilinear") -> torch.Tensor:
    """u(x): N x C x H x W -> N x C x 2H x 2W."""
    n, c, h, w = x.shape
    if kind == "area-bilinear":
        return F.interpolate(x, size=(2 * h, 2 * w), mode="bilinear", align_corners=True)
    spread = x.new_zeros(n, c, 2 * h, 2 * w)
    spread[..., ::2, ::2] = x
    return _binomial(spread, gain=4.0)


def gaussian_pyramid(x: torch.Tensor, levels: int, kind: Pyramid = "area-bilinear") -> list[torch.Tensor]:
    """[I_0 (coarsest), ..., I_{levels-1} = x]."""
    out = [x]
    for _ in range(levels - 1):
        out.insert(0, downsample(out[0], kind))
    return out


def laplacian_pairs(x: torch.Tensor, levels: int, kind: Pyramid = "area-bilinear"
                    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The real images of every level as LapGAN trains on them: (I_0, [(l_k, h_k) for k = 1 .. levels-1]) with the
    low-pass condition l_k = u(I_{k-1}) and the band-pass residual h_k = I_k - l_k."""
    gauss = gaussian_pyramid(x, levels, kind)
    pairs = []
    for k in range(1, levels):
        low = upsample(gauss[k - 1], kind)
        pairs.append((low, gauss[k] - low))
    return gauss[0], pairs


def upsample_to(x: torch.Tensor, size: int, kind: Pyramid = "area-bilinear") -> torch.Tensor:
    """``x`` enlarged by repeated u(.) to ``size`` (a power-of-two multiple of its side): how a coarse level is shown
    and measured beside the final images."""
    while x.shape[-1] < size:
        x = upsample(x, kind)
    return x


# --------------------------------------------------------------------------------------------------- networks
def _widths(hidden: int | Sequence[int], levels: int, where: str) -> list[int]:
    widths = [hidden] * (levels - 1) if isinstance(hidden, int) else list(hidden)
    if len(widths) != levels - 1:
        raise ConfigError(f"{where}.hidden gives {len(widths)} widths but the pyramid has {levels - 1} refining "
                          f"level(s); give one width, or one per refining level (coarse to fine)")
    check_widths(widths, f"{where}.hidden")
    return widths


def _init(module: nn.Module, scheme: LapInit, dense_std: float) -> None:
    """``code``: the dense coarsest level N(0, dense_std) with zero biases, convolutions left at the Torch7 default;
    ``dcgan``: N(0, 0.02) weights and zero biases everywhere."""
    if scheme not in ("code", "dcgan"):
        raise ConfigError(f"init must be code (the paper's official code) or dcgan, got {scheme!r}")
    for m in module.modules():
        if isinstance(m, nn.Linear) and scheme == "code" and getattr(m, "_lapgan_dense", False):
            nn.init.normal_(m.weight, 0.0, dense_std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Linear, nn.Conv2d)) and scheme == "dcgan":
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)


def _dense(i: int, o: int) -> nn.Linear:
    layer = nn.Linear(i, o)
    layer._lapgan_dense = True     # type: ignore[attr-defined]  (init: code gives the dense level its own std)
    return layer


class ResidualGenerator(nn.Module):
    """G_k for k >= 1: the noise plane and the low-pass image in, the band-pass residual out (linear)."""

    def __init__(self, channels: int, hidden: int, noise_planes: int = 1):
        super().__init__()
        self.noise_planes = noise_planes
        self.net = nn.Sequential(
            nn.Conv2d(channels + noise_planes, hidden, 7, padding=3), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 7, padding=3), nn.ReLU(),
            nn.Conv2d(hidden, channels, 5, padding=2))

    def forward(self, z: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z.to(low.dtype), low], 1))


@register_network("pyramid-generator", "lapgan", SOURCE)
class LaplacianGenerator(GeneratorBase):
    """Every level's generator; ``forward(z, noise)`` samples coarse to fine and returns the finest level."""

    def __init__(self, latent_dim: int, image_size: int = 32, channels: int = 3, levels: int = 3,
                 pyramid: Pyramid = "area-bilinear", coarse_hidden: int = 1200, hidden: int | Sequence[int] = 128,
                 noise_planes: int = 1, out_activation: OutputActivation = "tanh", init: LapInit = "code"):
        """``levels`` and ``pyramid`` come from the algorithm (``algorithm.levels``, ``algorithm.pyramid``)."""
        super().__init__()
        self.sizes = level_sizes(image_size, levels)
        self.pyramid = check_pyramid(pyramid)
        check_widths([coarse_hidden, noise_planes], "networks.G.coarse_hidden and noise_planes")
        self.latent_dim, self.channels, self.out_activation = latent_dim, channels, out_activation
        self.noise_planes = noise_planes
        s0 = self.sizes[0]
        self.coarse = nn.Sequential(
            _dense(latent_dim, coarse_hidden), nn.ReLU(), _dense(coarse_hidden, coarse_hidden), nn.ReLU(),
            _dense(coarse_hidden, channels * s0 * s0), nn.Unflatten(1, (channels, s0, s0)),
            output_activation(out_activation))
        self.refiners = nn.ModuleList(ResidualGenerator(channels, w, noise_planes)
                                      for w in _widths(hidden, levels, "networks.G"))
        _init(self, init, 0.05)

    @property
    def levels(self) -> int:
        return len(self.sizes)

    def noise_shape(self, level: int) -> tuple[int, int, int]:
        """The shape of one sample's noise plane(s) z_k of refining level ``level`` >= 1."""
        return (self.noise_planes, self.sizes[level], self.sizes[level])

    def residual(self, level: int, z: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """h~_k = G_k(z_k, l_k) for level ``level`` >= 1."""
        return self.refiners[level - 1](z, low)

    def levels_from(self, z: torch.Tensor, noise: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Every level's sample, coarse to fine: I~_0 = G_0(z), I~_k = u(I~_{k-1}) + G_k(z_k, u(I~_{k-1})).
        ``noise``: the noise planes z_1 .. z_{K-1}."""
        if len(noise) != self.levels - 1:
            raise ValueError(f"the pyramid generator takes {self.levels - 1} noise plane(s), got {len(noise)}")
        out = [self.coarse(z)]
        for k, z_k in enumerate(noise, start=1):
            low = upsample(out[-1], self.pyramid)
            out.append(low + self.residual(k, z_k, low))
        return out

    def forward(self, z: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.levels_from(z, noise)[-1]


class ResidualDiscriminator(nn.Module):
    """D_k for k >= 1: a residual and its low-pass condition in, a raw score out."""

    def __init__(self, channels: int, size: int, hidden: int, condition: Condition = "add", dropout: float = 0.5):
        super().__init__()
        self.condition = condition
        inner = (size - 4 - 5) // 2 + 1
        self.net = nn.Sequential(
            nn.Conv2d(channels * (2 if condition == "concat" else 1), hidden, 5), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 5, stride=2), nn.Flatten(), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden * inner * inner, 1))

    def forward(self, residual: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        x = residual + low if self.condition == "add" else torch.cat([residual, low.to(residual.dtype)], 1)
        return self.net(x).squeeze(1)


@register_network("pyramid-discriminator", "lapgan", SOURCE)
class LaplacianDiscriminator(nn.Module):
    """Every level's discriminator: ``forward(level, x, low)`` scores level 0's images (``low`` None) or level k's
    residuals given their low-pass images."""

    def __init__(self, image_size: int = 32, channels: int = 3, levels: int = 3, coarse_hidden: int = 600,
                 hidden: int | Sequence[int] = 128, condition: Condition = "add", dropout: float = 0.5,
                 init: LapInit = "code"):
        super().__init__()
        if condition not in ("add", "concat"):
            raise ConfigError(f"networks.D.condition must be add (the paper: D_k sees h + l_k) or concat, got "
                              f"{condition!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"networks.D.dropout must be in [0, 1) (the paper's code: 0.5), got {dropout}")
        self.sizes = level_sizes(image_size, levels)
        check_widths([coarse_hidden], "networks.D.coarse_hidden")
        small = [s for s in self.sizes[1:] if s < MIN_REFINED]
        if small:
            raise ConfigError(f"the refining levels of a lapgan discriminator need {MIN_REFINED} px or more, but level "
                              f"{self.sizes.index(small[0])} is {small[0]} px; use fewer algorithm.levels")
        s0 = self.sizes[0]
        self.coarse = nn.Sequential(
            nn.Flatten(), _dense(channels * s0 * s0, coarse_hidden), nn.ReLU(), nn.Dropout(dropout),
            _dense(coarse_hidden, coarse_hidden), nn.ReLU(), nn.Dropout(dropout), _dense(coarse_hidden, 1))
        self.refiners = nn.ModuleList(ResidualDiscriminator(channels, s, w, condition, dropout)
                                      for s, w in zip(self.sizes[1:], _widths(hidden, levels, "networks.D")))
        _init(self, init, 0.005)

    @property
    def levels(self) -> int:
        return len(self.sizes)

    def forward(self, level: int, x: torch.Tensor, low: torch.Tensor | None = None) -> torch.Tensor:
        if level == 0:
            return self.coarse(x).squeeze(1)
        if low is None:
            raise ValueError(f"level {level} of the pyramid discriminator scores a residual given its low-pass image")
        return self.refiners[level - 1](x, low)
