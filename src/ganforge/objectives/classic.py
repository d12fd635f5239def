"""The original GAN objectives (Goodfellow et al. 2014), as seed 000 (eq. 4.1.1 / 4.1.5) and seed 003 give them.

D: ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]`` with ``D = sigmoid(score)``.
G, minimax (saturating): ``L_G = E[log(1 - D(G(z)))]`` (seed 003, first form).
G, non-saturating: ``L_G = -E[log D(G(z))]`` (seed 003 "Trick 2", seed 000 eq. 4.1.5): label the fakes real.
``real_label < 1`` gives one-sided label smoothing (Salimans et al. 2016; seed 002 improved techniques).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Objective, flat, register_objective


@dataclass
class _BCE(Objective):
    real_label: float = 1.0   # 0.9 = one-sided label smoothing; fakes keep target 0

    def __post_init__(self) -> None:
        if not 0.0 < self.real_label <= 1.0:
            from ..errors import ConfigError
            raise ConfigError(f"objective.real_label must be in (0, 1], got {self.real_label}")

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        r = flat(real_out)
        return F.binary_cross_entropy_with_logits(r, torch.full_like(r, self.real_label))

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        f = flat(fake_out)
        return F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))


@register_objective
@dataclass
class Minimax(_BCE):
    """Saturating minimax GAN: G minimises log(1 - D(G(z)))."""

    name = "minimax"
    source = "Goodfellow et al. 2014; seed 003 section 1 (L_G = sum log(1 - D(G(z))))"

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        # log(1 - sigmoid(s)) = -softplus(s)
        return -F.softplus(flat(fake_out)).mean()


@register_objective
@dataclass
class NonSaturating(_BCE):
    """Non-saturating GAN: G minimises -log D(G(z)) (fakes labelled real in the G step)."""

    name = "nonsaturating"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = "Goodfellow et al. 2014; seed 003 section 1 'Trick 2'; seed 000 eq. 4.1.5"

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        f = flat(fake_out)
        return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
