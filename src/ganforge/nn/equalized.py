"""Equalized learning rate (Karras et al. 2018, ProGAN section 4.1; spec 22.3): layers whose weights are stored
N(0, 1) and scaled at runtime by the He initialiser's constant.

    w_hat = w * c,   c = gain / sqrt(fan_in) * lr_mul,   w ~ N(0, 1 / lr_mul^2) at initialisation

with fan_in = in_features (linear) or in_channels * kh * kw (convolution). ``gain`` sqrt(2) gives He's c = sqrt(2 /
fan_in), the paper's default (for the LeakyReLU layers); the authors' code uses gain 1 for toRGB and the critic's last
layer and sqrt(2) / 4 for the generator's first dense layer (``networks.py``: ``get_weight(..., gain, use_wscale)``).
Because the stored parameter has unit variance whatever the layer's fan-in, an adaptive optimiser (Adam, whose step
is about lr in parameter units) changes every layer's effective weight at the same relative speed, which is the
point: "the dynamic range, and thus the learning speed, is the same for all weights".

``lr_mul``: StyleGAN's learning-rate multiplier (Karras et al. 2019, appendix C: the mapping network at 0.01x). The
parameter is drawn with std 1 / lr_mul and multiplied by lr_mul at runtime (weight and bias), so the initial
function is unchanged but every optimiser step moves it lr_mul times as far. lr_mul 1 is ProGAN.

Biases are stored as they are used (times lr_mul) and start at ``bias_init`` (0 in ProGAN).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError

HE_GAIN = math.sqrt(2.0)


def _check(gain: float, lr_mul: float) -> None:
    if not gain > 0 or not lr_mul > 0:
        raise ConfigError(f"equalized learning rate needs gain > 0 and lr_mul > 0, got gain={gain}, lr_mul={lr_mul}")


class EqualizedLinear(nn.Module):
    """A fully connected layer with equalized learning rate: ``y = x (c w)^T + lr_mul * b``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = HE_GAIN,
                 lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        _check(gain, lr_mul)
        self.in_features, self.out_features, self.gain, self.lr_mul = in_features, out_features, gain, lr_mul
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None

    @property
    def weight_scale(self) -> float:
        """c = gain / sqrt(fan_in) * lr_mul, the runtime multiplier of the stored weight."""
        return self.gain / math.sqrt(self.in_features) * self.lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.weight_scale, bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, gain={self.gain:.4g}, "
                f"lr_mul={self.lr_mul:g}")


class EqualizedConv2d(nn.Module):
    """A stride-1 convolution with equalized learning rate, 'same' padding for odd kernels by default."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int | None = None,
                 bias: bool = True, gain: float = HE_GAIN, lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        _check(gain, lr_mul)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.padding = kernel_size // 2 if padding is None else padding
        self.gain, self.lr_mul = gain, lr_mul
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_channels,), bias_init / lr_mul)) if bias else None

    @property
    def weight_scale(self) -> float:
        """c = gain / sqrt(in_channels * k * k) * lr_mul, the runtime multiplier of the stored kernel."""
        return self.gain / math.sqrt(self.in_channels * self.kernel_size ** 2) * self.lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.conv2d(x, self.weight * self.weight_scale, bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
                f"gain={self.gain:.4g}, lr_mul={self.lr_mul:g}")
