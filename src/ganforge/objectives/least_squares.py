"""Least-squares GAN (Mao et al. 2017) with the paper's (a, b, c) label coding.

The discriminator has a linear output (seed 003 section 2 "change 1": no sigmoid) and is regressed onto the label b
for real and a for fake samples; the generator pulls its samples' scores towards c (Mao et al. 2017, eq. 2, [R]):

    L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
    L_G = 1/2 E[(D(G(z)) - c)^2]

Codings the sources give:

- a=0, b=1, c=1: "make the fakes look real"; seed 003 section 2 (code comments "a == 0, b == 1", "c == b == 1"),
  seed 000 section 2 (eq. 5.2.1 / 5.2.2, real label 1.0, fake 0.0, fake-as-real 1.0), Mao et al. eq. 9.
- a=-1, b=1, c=0: the choice with b - c = 1, b - a = 2 under which minimising L_G minimises the Pearson chi^2
  divergence between p_data + p_g and 2 p_g (Mao et al. eq. 8).

Scaling (the ``scaling`` field) -- only the constant factors differ, the minimisers do not:

- ``"book"`` (default): the seed 000 / seed 003 Keras code, ``loss='mse'``. D is trained on one combined batch
  [real; fake] with targets [b...; a...], and Keras' MSE is the mean over all 2m samples, which for equal halves is
  exactly the paper's ``1/2 E[(D(x)-b)^2] + 1/2 E[(D(G(z))-a)^2]``; the generator's MSE over m samples has no 1/2:
  ``L_G = E[(D(G(z)) - c)^2]``.
- ``"paper"``: Mao et al. eq. 2 as printed above (1/2 on both players).
- ``"sum"``: seed 000 eqs. 5.2.1 / 5.2.2 as printed (spec section 3.2, [R]): ``L_D = E[(D(x)-b)^2] + E[(D(G(z))-a)^2]``,
  ``L_G = E[(D(G(z))-c)^2]``; i.e. twice the book's discriminator loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Objective, flat, register_objective

_D_FACTOR = {"book": 0.5, "paper": 0.5, "sum": 1.0}
_G_FACTOR = {"book": 1.0, "paper": 0.5, "sum": 1.0}


@register_objective
@dataclass
class LSGAN(Objective):
    """Least-squares losses: D regresses real scores to ``b`` and fake scores to ``a``; G pulls fakes to ``c``."""

    name = "lsgan"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = "Mao et al. 2017 eq. 2, 8, 9; seed 000 section 2 (eqs. 5.2.1-5.2.2); seed 003 section 2"

    a: float = 0.0   # target for fake samples in the D step
    b: float = 1.0   # target for real samples in the D step
    c: float = 1.0   # target the generator wants D to give its samples
    scaling: str = "book"

    def __post_init__(self) -> None:
        if self.scaling not in _D_FACTOR:
            raise ConfigError(f"objective.scaling must be one of {', '.join(_D_FACTOR)}, got '{self.scaling}'")
        if self.a == self.b:
            raise ConfigError(f"objective.a and objective.b must differ (fake and real targets), both are {self.a}; "
                              "use a=0, b=1, c=1 (book) or a=-1, b=1, c=0 (Mao et al. eq. 8)")

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return _D_FACTOR[self.scaling] * (flat(real_out) - self.b).square().mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return _D_FACTOR[self.scaling] * (flat(fake_out) - self.a).square().mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return _G_FACTOR[self.scaling] * (flat(fake_out) - self.c).square().mean()
