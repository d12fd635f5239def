"""Style modulation of a synthesis network's feature maps by a style vector w: StyleGAN's adaptive instance
normalisation (AdaIN) and StyleGAN2's modulated convolution with weight demodulation.

AdaIN (Karras et al. 2019, StyleGAN, section 2, eq. 1; seed 002 chapter 3 part 1, spec 23.3 item 2; Huang & Belongie
2017):

    AdaIN(x_i, w) = y_{s,i} (x_i - mu(x_i)) / sigma(x_i) + y_{b,i},    (y_s, y_b) = A(w)

mu and sigma over the spatial positions of each sample and channel (sigma = sqrt(mean((x - mu)^2) + eps), eps 1e-8 as
the authors' ``instance_norm``), and "A" a learned affine map of w, an equalized-lr dense layer with gain 1 (the
authors' ``style_mod``: ``dense(dlatent, fmaps * 2, gain=1, use_wscale)``). The authors add 1 to the scale
(``x * (style[:, 0] + 1) + style[:, 1]``): here the scale half of A's bias starts at 1 instead, the same function with
the offset kept in a parameter, so at initialisation every channel is normalised and scaled by about 1.

Modulated convolution (Karras et al. 2020, StyleGAN2, section 2.2, eqs. 1-3; not in the seed, ganforge's option
``networks.G.demodulate: true``): instead of normalising the activations, scale the kernel's input channels by the
style s = A(w) (bias 1) and divide each output channel's kernel by its norm,

    w'_{ijk} = s_i w_{ijk},    w''_{ijk} = w'_{ijk} / sqrt(sum_{i,k} w'_{ijk}^2 + eps),

so the output has unit expected standard deviation for unit-variance inputs, removing AdaIN's "droplet" artefacts.
Computed as one grouped convolution over the batch (the authors' ``fused_modconv``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .equalized import EqualizedLinear

INSTANCE_NORM_EPS = 1e-8      # the authors' instance_norm epsilon
DEMOD_EPS = 1e-8              # StyleGAN2's demodulation epsilon


def instance_normalize(x: torch.Tensor, eps: float = INSTANCE_NORM_EPS) -> torch.Tensor:
    """(x - mu) / sigma per sample and channel over the spatial dimensions (biased variance)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps)


class AdaIN(nn.Module):
    """Adaptive instance normalisation of ``channels`` feature maps by a style vector of ``w_dim``."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        with torch.no_grad():       # y_s starts around 1 (bias 1, and +- c w for a unit w), y_b around 0
            self.affine.bias[:channels] = 1.0

    def style(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_s, y_b), each (N, channels): the per-channel scale and bias "A" makes of w (N, w_dim)."""
        y = self.affine(w)
        return y[:, :self.channels], y[:, self.channels:]

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, bias = self.style(w)
        return instance_normalize(x) * scale[:, :, None, None] + bias[:, :, None, None]

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def demodulated(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                eps: float = DEMOD_EPS) -> torch.Tensor:
    """Per-sample kernels (N, out, in, k, k): ``weight`` (out, in, k, k) times ``styles`` (N, in) on its input channels,
    each output channel's kernel divided by its L2 norm over (in, k, k) when ``demodulate`` (StyleGAN2 eqs. 1, 3)."""
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    return w


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated 3x3 (or k x k) convolution with equalized learning rate and optional demodulation; the
    style "A" is an equalized dense layer of w with bias 1 (the authors' ``modulated_conv2d_layer``). No bias here:
    the layer that uses it adds noise, then bias, then the activation, as StyleGAN2's ``layer``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate = demodulate
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)   # StyleGAN2's gain 1 He constant
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        kernels = demodulated(self.weight * self.weight_scale, self.affine(w), self.demodulate)
        out = F.conv2d(x.reshape(1, n * c, h, wd), kernels.reshape(n * self.out_channels, c, *kernels.shape[3:]),
                       padding=self.kernel_size // 2, groups=n)
        return out.view(n, self.out_channels, h, wd)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"demodulate={self.demodulate}")
