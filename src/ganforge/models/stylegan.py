"""StyleGAN's style-based generator (Karras et al. 2019; seed 002 chapter 3 part 1, spec 23), with StyleGAN2's
weight demodulation as an option (Karras et al. 2020, section 2.2; ``demodulate: true``). The discriminator is
ProGAN's (``networks.D.arch: progan``, ``models/progan.py``), as in StyleGAN v1.

Mapping network f (spec 23.3 item 1; the authors' ``G_mapping``): z -> pixel norm (``normalize_latents``) -> 8
equalized-lr dense layers of ``mapping_hidden`` units, each with LeakyReLU 0.2 -> w (``w_dim``, 512 in the paper).
Its learning rate is 0.01x the base rate (appendix C), by ``nn/equalized.py``'s ``lr_mul`` (weights stored N(0,
1/lr_mul^2) and scaled by lr_mul at runtime), exactly the authors' ``lrmul`` (``get_weight``): with Adam the
effective weights move lr_mul times as far per step whatever the optimizer settings, and the checkpoint's optimizer
state has one param group per network (``optim.G.lr_mult: {"G.mapping": 0.01}`` would scale Adam's step the same way
up to its eps, but would make the multiplier the optimizer config's, lost by any ``--set optim.G`` that rewrites it).

Synthesis network g (spec 23.3 items 2-4; ``G_synthesis``): from a learned 4 x 4 constant (ones, as the authors'),
per resolution s = 4 .. image_size two layers, each

    [conv3x3 (the first of s >= 8 after a 2x upsampling)] -> noise (B) -> bias -> LeakyReLU 0.2 -> AdaIN(A(w_layer))

(the 4 x 4 block's first layer has no conv: the constant goes straight to noise and AdaIN), so 2 log2(image_size / 2)
style layers, each with its own style; then a 1x1 toRGB (gain 1, linear output; images in [-1, 1]; ``out_activation:
tanh`` squashes it, not the paper's: the CPU recipe's, whose tiny G otherwise overshoots the range). Channels C(s) =
min(2 fmap_base / s, fmap_max) as ProGAN's (the paper: 512 up to 32 px). ``upsample: bilinear`` is the paper's
(section 2: "bilinear up/downsampling"), as the authors implement it: nearest-neighbour 2x, conv, then the [1 2 1]
binomial blur (``blur2d``); ``nearest`` is ProGAN's. No progressive growing: the networks train at image_size from
the first step (StyleGAN v1 grew them as ProGAN; StyleGAN2 dropped it); ``train.phases`` is not used by this family.

With ``demodulate: true`` (StyleGAN2, not the seed's v1) each conv layer is a modulated convolution with weight
demodulation (``nn/adain.py``) -> noise -> bias -> LeakyReLU, no instance normalisation: 2 log2(image_size / 2) - 1
style layers (the constant goes straight into the first conv). The toRGB stays a plain 1x1 conv (StyleGAN2 modulates
it too and sums skip outputs; not here).

State the generator owns, so that the ``adversarial`` algorithm trains it unchanged:

- **style mixing regularisation** (spec 23.3 item 5, section 3.1): in training mode, with probability ``style_mixing``
  (0.9) per batch (the authors' ``style_mixing_prob``: one draw per minibatch), a second latent z2 ~ N(0, I) is
  mapped and the layers from a crossover drawn uniformly from 1 .. L-1 on take w2 instead of w1;
- **w_avg** (spec 23.3 item 6): a buffer, the EMA of the batch mean of mapped w over training forwards (``w_avg <-
  w_avg + (1 - beta) (mean w - w_avg)``, beta 0.995 = ``dlatent_avg_beta``), saved with the weights (bit-exact on
  resume) and copied, not averaged, into the EMA copy of G (``train/ema.py``: buffers are copied);
- **truncation in W** (sampling): ``truncate(ws, psi, cutoff)``: w' = w_avg + psi (w - w_avg) for the layers below
  ``cutoff`` (the paper: psi 0.7 at 4^2 - 32^2, i.e. cutoff 8); ``truncation_cutoff`` is the default cutoff.

``G(z)``: z (N, latent_dim) is mapped (with mixing and the w_avg update in training mode); ``G(ws)`` with per-layer
styles ws (N, num_layers, w_dim) runs the synthesis network alone (what ``algorithms/latent_walk.py`` passes for
``--truncation`` / ``--mix`` on a W-space generator). Noise: ``nn/noise_input.py`` (random in training; outside
training drawn from a generator seeded with ``EVAL_NOISE_SEED`` per call, so grids and samples are reproducible and
never consume the training random stream; ``fix_noise(seed)`` for one fixed image per layer).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.adain import AdaIN, ModulatedConv2d
from ..nn.equalized import HE_GAIN, EqualizedConv2d, EqualizedLinear
from ..nn.noise_input import NoiseInput
from ..nn.pixel_norm import PixelNorm
from .common import GeneratorBase
from .progan import channels_at, resolutions
from .registry import register_network

SOURCE = ("Karras et al. 2019 (StyleGAN), sections 2-3 and appendix C, with the authors' networks_stylegan.py; "
          "seed 002 chapter 3 part 1 (spec 23); weight demodulation: Karras et al. 2020 (StyleGAN2) section 2.2")
EVAL_NOISE_SEED = 0


class MappingNetwork(nn.Module):
    """f: z -> w, pixel norm then ``layers`` equalized dense layers with LeakyReLU, learning rate x ``lr_mul``."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int = 8, hidden: int | None = None, lr_mul: float = 0.01,
                 leaky_slope: float = 0.2, normalize_latents: bool = True) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"networks.G.mapping_layers must be >= 1 (the paper: 8), got {layers}")
        hidden = hidden or w_dim
        widths = [latent_dim] + [hidden] * (layers - 1) + [w_dim]
        self.norm = PixelNorm() if normalize_latents else nn.Identity()
        self.layers = nn.ModuleList([EqualizedLinear(a, b, gain=HE_GAIN, lr_mul=lr_mul)
                                     for a, b in zip(widths[:-1], widths[1:])])
        self.act = nn.LeakyReLU(leaky_slope)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.norm(z.flatten(1))
        for layer in self.layers:
            h = self.act(layer(h))
        return h


def blur(x: torch.Tensor) -> torch.Tensor:
    """The authors' ``blur2d`` with filter [1, 2, 1] (normalised), per channel, 'same' size."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    k = (k[:, None] * k[None, :]) / 16.0
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(c, 1, 3, 3), groups=c)


class StyleLayer(nn.Module):
    """One style layer: [upsample] [conv] -> blur (bilinear) -> noise -> bias -> LeakyReLU -> AdaIN (v1); with
    ``demodulate``: [upsample] modulated conv -> blur -> noise -> bias -> LeakyReLU (StyleGAN2)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, conv: bool, upsample: str | None, demodulate: bool,
                 leaky_slope: float) -> None:
        super().__init__()
        self.upsample, self.demodulate = upsample, demodulate
        if demodulate:
            self.conv: nn.Module | None = ModulatedConv2d(in_ch, out_ch, 3, w_dim, demodulate=True)
        else:
            self.conv = EqualizedConv2d(in_ch, out_ch, 3, bias=False) if conv else None
        self.noise = NoiseInput(out_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.act = nn.LeakyReLU(leaky_slope)
        self.adain = None if demodulate else AdaIN(out_ch, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.upsample is not None:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.demodulate:
            x = self.conv(x, w)
        elif self.conv is not None:
            x = self.conv(x)
        if self.upsample == "bilinear":
            x = blur(x)
        x = self.act(self.noise(x, generator=generator) + self.bias.view(1, -1, 1, 1))
        return x if self.adain is None else self.adain(x, w)


@register_network("generator", "stylegan", SOURCE)
class StyleGANGenerator(GeneratorBase):
    has_w_space = True      # algorithms/latent_walk.py: --truncation works in W, --mix / --noise-seed apply

    def __init__(self, latent_dim: int, image_size: int = 32, channels: int = 3, w_dim: int | None = None,
                 mapping_layers: int = 8, mapping_hidden: int | None = None, mapping_lr_mul: float = 0.01,
                 fmap_base: int = 8192, fmap_max: int = 512, upsample: Literal["bilinear", "nearest"] = "bilinear",
                 style_mixing: float = 0.9, w_avg_beta: float = 0.995, truncation_cutoff: int | None = 8,
                 demodulate: bool = False, leaky_slope: float = 0.2, normalize_latents: bool = True,
                 out_activation: Literal["none", "tanh"] = "none") -> None:
        """``w_dim`` / ``mapping_hidden``: default latent_dim (the paper: 512 all three); ``truncation_cutoff``: the
        layers below it are truncated by ``--truncation`` unless ``--truncation-cutoff`` says otherwise (the paper's
        8: 4^2 - 32^2; None: all layers); ``out_activation: none`` is the paper's linear toRGB, ``tanh`` bounds the
        images to [-1, 1] (not the paper's; as ProGAN's option of the same name)."""
        super().__init__()
        if fmap_base < 1 or fmap_max < 1:
            raise ConfigError(f"networks.G: fmap_base and fmap_max must be >= 1, got {fmap_base} and {fmap_max}")
        if upsample not in ("bilinear", "nearest"):
            raise ConfigError(f"networks.G.upsample must be bilinear (the paper's) or nearest (ProGAN's), got "
                              f"{upsample!r}")
        if not 0.0 <= style_mixing <= 1.0:
            raise ConfigError(f"networks.G.style_mixing is a probability (the paper: 0.9), got {style_mixing}")
        if out_activation not in ("none", "tanh"):
            raise ConfigError(f"networks.G.out_activation must be none (the paper's linear output) or tanh, got "
                              f"{out_activation!r}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ConfigError(f"networks.G.w_avg_beta must be in [0, 1) (the authors': 0.995), got {w_avg_beta}")
        self.sizes = resolutions(image_size, "stylegan")
        self.latent_dim, self.channels = latent_dim, channels
        self.w_dim = w_dim or latent_dim
        self.style_mixing, self.w_avg_beta, self.demodulate = style_mixing, w_avg_beta, demodulate
        self.out_activation = out_activation
        self.mapping = MappingNetwork(latent_dim, self.w_dim, mapping_layers, mapping_hidden, mapping_lr_mul,
                                      leaky_slope, normalize_latents)
        ch = [channels_at(s, fmap_base, fmap_max) for s in self.sizes]
        self.const = nn.Parameter(torch.ones(1, ch[0], 4, 4))
        layers = []
        for i, c in enumerate(ch):
            if i == 0:
                if not demodulate:      # v1: the constant -> noise -> AdaIN is the first style layer
                    layers.append(StyleLayer(c, c, self.w_dim, False, None, False, leaky_slope))
                layers.append(StyleLayer(c, c, self.w_dim, True, None, demodulate, leaky_slope))
            else:
                layers.append(StyleLayer(ch[i - 1], c, self.w_dim, True, upsample, demodulate, leaky_slope))
                layers.append(StyleLayer(c, c, self.w_dim, True, None, demodulate, leaky_slope))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = EqualizedConv2d(ch[-1], channels, 1, gain=1.0)
        if truncation_cutoff is not None and not 1 <= truncation_cutoff:
            raise ConfigError(f"networks.G.truncation_cutoff must be >= 1 (the paper: 8) or null, got "
                              f"{truncation_cutoff}")
        self.truncation_cutoff = truncation_cutoff
        self.register_buffer("w_avg", torch.zeros(self.w_dim))

    @property
    def value_range(self) -> tuple[float, float]:
        return (-1.0, 1.0)     # the authors' dynamic range [-1, 1] (linear output, clamped for display; or tanh)

    @property
    def num_layers(self) -> int:
        """L, the number of style layers (each takes its own w)."""
        return len(self.layers)

    # ------------------------------------------------------------------------------------------ W space
    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """Per-layer styles (N, L, w_dim) of z: the mapped w broadcast to every layer (no mixing, no truncation)."""
        return self.mapping(z).unsqueeze(1).expand(-1, self.num_layers, -1)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi (w - w_avg) in the layers below ``cutoff`` (None: every layer), the others unchanged."""
        cutoff = self.num_layers if cutoff is None else min(int(cutoff), self.num_layers)
        coefs = torch.ones(self.num_layers, 1, device=ws.device, dtype=ws.dtype)
        coefs[:cutoff] = psi
        # lerp, exact at both ends: psi 1 returns ws bit for bit, psi 0 w_avg
        return torch.lerp(self.w_avg.to(ws.dtype).expand_as(ws), ws, coefs.expand_as(ws))

    @staticmethod
    def mix(ws1: torch.Tensor, ws2: torch.Tensor, crossover: int) -> torch.Tensor:
        """Layers below ``crossover`` from ws1, the rest from ws2 (both (N, L, w_dim))."""
        layer = torch.arange(ws1.shape[1], device=ws1.device).view(1, -1, 1)
        return torch.where(layer < crossover, ws1, ws2)

    @torch.no_grad()
    def _track_w_avg(self, w: torch.Tensor) -> None:
        self.w_avg.lerp_(w.detach().float().mean(0).to(self.w_avg.dtype), 1.0 - self.w_avg_beta)

    def training_styles(self, z: torch.Tensor) -> torch.Tensor:
        """Training-mode styles: w_avg updated with this batch, then style mixing with probability style_mixing."""
        w = self.mapping(z)
        self._track_w_avg(w)
        ws = w.unsqueeze(1).expand(-1, self.num_layers, -1)
        if self.style_mixing > 0 and self.num_layers > 1:
            # Always the same draws, mixing or not: the random stream does not depend on the outcome.
            coin = torch.rand(())
            crossover = int(torch.randint(1, self.num_layers, ()))
            if float(coin) < self.style_mixing:
                ws2 = self.styles(torch.randn_like(z))
                ws = self.mix(ws, ws2, crossover)
        return ws

    # ------------------------------------------------------------------------------------------ noise
    def fix_noise(self, seed: int | None) -> None:
        """One fixed noise image per layer drawn from ``seed`` (shared by every sample); None: random noise again."""
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        size = 4
        for i, layer in enumerate(self.layers):
            if layer.upsample is not None:
                size *= 2
            layer.noise.fix(None if gen is None else
                            torch.randn(1, 1, size, size, generator=gen).to(self.const.device))

    # ------------------------------------------------------------------------------------------ forward
    def synthesize(self, ws: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images (N, channels, image_size, image_size) from per-layer styles ws (N, L, w_dim)."""
        if ws.dim() != 3 or ws.shape[1] != self.num_layers or ws.shape[2] != self.w_dim:
            raise ValueError(f"the StyleGAN synthesis network takes styles (N, {self.num_layers}, {self.w_dim}), "
                             f"got {list(ws.shape)}")
        if generator is None and not self.training:
            generator = torch.Generator(device=ws.device).manual_seed(EVAL_NOISE_SEED)
        x = self.const.expand(len(ws), -1, -1, -1).to(ws.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], generator)
        x = self.to_rgb(x)
        return torch.tanh(x) if self.out_activation == "tanh" else x

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z (N, latent_dim): mapped (training mode: w_avg tracked, styles mixed) then synthesised; per-layer styles
        (N, num_layers, w_dim): synthesised as given."""
        if z.dim() == 3:
            return self.synthesize(z, generator)
        ws = self.training_styles(z) if self.training else self.styles(z)
        return self.synthesize(ws, generator)

    def extra_repr(self) -> str:
        return (f"latent_dim={self.latent_dim}, w_dim={self.w_dim}, num_layers={self.num_layers}, "
                f"style_mixing={self.style_mixing}, demodulate={self.demodulate}")
