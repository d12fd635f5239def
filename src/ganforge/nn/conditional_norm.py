"""Class-conditional batch normalisation (de Vries et al. 2017; Dumoulin et al. 2017; the generators of SNGAN's
projection model, Miyato & Koyama 2018, and of SAGAN, Zhang et al. 2019; spec 11.4 and 12.3).

BatchNorm without its own affine parameters, then a per-sample gain and bias computed from a condition vector:

    y = gain(cond) * (x - mu_batch) / sqrt(var_batch + eps) + bias(cond)

How ``cond`` becomes (gain, bias) is the ``ConditionMap``:

``ClassTable`` (SNGAN-projection / SAGAN form; the default): ``cond`` is the one-hot label (B x K) the conditional
  algorithm hands the generator, gain = cond @ Gamma, bias = cond @ Beta with Gamma (K x C) initialised to ones and
  Beta to zeros: each class has its own BN gain and bias, the chainer ``CategoricalConditionalBatchNormalization``
  of Miyato & Koyama's code. Soft labels give the matching mixture. The tables are plain parameters, so
  ``apply_spectral_norm`` leaves them alone (the authors' code does not normalise them either).
``LinearMap`` (BigGAN's form: cond = [shared class embedding, latent chunk]): gain = 1 + W_g cond, bias = W_b cond,
  two bias-free Linear layers with orthogonal initial weights (BigGAN-PyTorch's ``G_init='ortho'`` pass reaches
  them too). They are ``nn.Linear``, so a spectrally normalised generator normalises them as BigGAN does -- which
  is why they may not start at zero: spectral norm divides W by its largest singular value, 0 for a zero matrix,
  and the generator's output would be NaN from the first step.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from ..errors import ConfigError

ConditionKind = Literal["table", "linear"]


class ClassTable(nn.Module):
    """(gain, bias) = (cond @ Gamma, cond @ Beta): one BN gain and bias per class, Gamma = 1, Beta = 0 at start."""

    def __init__(self, cond_dim: int, num_features: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(cond_dim, num_features))
        self.bias = nn.Parameter(torch.zeros(cond_dim, num_features))

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = cond.to(self.gain.dtype)
        return cond @ self.gain, cond @ self.bias


class LinearMap(nn.Module):
    """(gain, bias) = (1 + W_g cond, W_b cond), W orthogonal at start (BigGAN-PyTorch ``ccbn``; the module docstring
    says why not zero)."""

    def __init__(self, cond_dim: int, num_features: int) -> None:
        super().__init__()
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.bias = nn.Linear(cond_dim, num_features, bias=False)
        nn.init.orthogonal_(self.gain.weight)
        nn.init.orthogonal_(self.bias.weight)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = cond.to(self.gain.weight.dtype)
        return 1 + self.gain(cond), self.bias(cond)


class ConditionalBatchNorm2d(nn.Module):
    """``forward(x, cond)``: x B x C x H x W, cond B x cond_dim -> B x C x H x W. Running statistics as BatchNorm2d."""

    def __init__(self, num_features: int, cond_dim: int, kind: ConditionKind = "table", eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        if cond_dim < 1:
            raise ConfigError(f"conditional batch norm needs a condition of >= 1 dimension, got {cond_dim}")
        if kind not in ("table", "linear"):
            raise ConfigError(f"conditional batch norm kind must be table or linear, got {kind!r}")
        self.num_features, self.cond_dim = num_features, cond_dim
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.map: nn.Module = ClassTable(cond_dim, num_features) if kind == "table" else LinearMap(cond_dim, num_features)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2 or cond.shape != (len(x), self.cond_dim):
            raise ValueError(f"conditional batch norm takes a condition of shape ({len(x)}, {self.cond_dim}), "
                             f"got {tuple(cond.shape)}")
        gain, bias = self.map(cond)
        h = self.bn(x)
        return gain.to(h.dtype)[:, :, None, None] * h + bias.to(h.dtype)[:, :, None, None]

