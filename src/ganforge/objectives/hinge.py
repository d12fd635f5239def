"""Hinge adversarial loss, as used by SAGAN (Zhang et al. 2019) and BigGAN (Brock et al. 2019).

Seed 002 part 2 section 3.2 gives SAGAN's losses (written for a conditional D(x, y); the condition is inside the
network, so the loss sees only scores):

    L_D = -E[min(0, -1 + D(x))] - E[min(0, -1 - D(G(z)))] = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
    L_G = -E[D(G(z))]

(The "min(0, -1 + ...)" form is the source's; ``-min(0, a) = max(0, -a)`` gives the usual ReLU form.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Objective, flat, register_objective


@register_objective
@dataclass
class Hinge(Objective):
    """Hinge loss: D wants real scores >= 1 and fake scores <= -1; G raises its samples' scores."""

    name = "hinge"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = "seed 002 part 2 section 3.2 (SAGAN loss); Lim & Ye 2017; Miyato et al. 2018; Brock et al. 2019"

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - flat(real_out)).mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 + flat(fake_out)).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return -flat(fake_out).mean()
