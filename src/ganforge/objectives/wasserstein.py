"""Wasserstein GAN objectives: WGAN with weight clipping (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017).

The critic has a *linear* output (no sigmoid; seed 000 section 1 "WGAN uses linear activation", seed 003 section 3
"change 1"), and estimates the Kantorovich-Rubinstein dual of the Wasserstein-1 distance

    W(p_data, p_g) = max_{||D||_L <= 1} E_{x~p_data}[D(x)] - E_z[D(G(z))]

(seed 000 eq. 5.1.19, [R]; seed 002 part 1 section 5.2).

Losses, each a batch mean (seed 000 eq. 5.1.21 / 5.1.22, [R] reconstructed from Arjovsky 2017 and the spec section 2.2):

    L_D = -E[D(x)] + E[D(G(z))]
    L_G = -E[D(G(z))]

The book computes both with one Keras loss ``wasserstein_loss(y, pred) = -mean(y * pred)`` and labels real = +1,
fake = -1, fakes-as-real = +1 in the generator step (seed 000 listing 5.1.2, eq. 5.1.23). Seed 003 section 3 writes the
same loss as ``mean(y * pred)`` with the opposite labels (real = -1, fake = +1, generator target -1). Both label
codings give exactly the functions above: ``-mean(+1 * D(x)) = -E[D(x)]``, ``-mean(-1 * D(G(z))) = +E[D(G(z))]``.
The unit tests check this identity.

The Lipschitz constraint is not part of the loss: WGAN clips every critic weight to [-c, c] after each critic
iteration (c = 0.01; seed 000 eq. 5.1.20 and algorithm 5.1.1 line 7; see ``ganforge.regularizers.clip_weights_``);
WGAN-GP instead adds lambda * E[(||grad D(x_hat)|| - 1)^2] on random interpolates x_hat (lambda = 10; seed 002 part 1
section 6.1; see ``ganforge.regularizers.gradient_penalty``). The objectives carry those hyperparameters so that a
recipe names them in one place; the training algorithm applies them.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch

from ..errors import ConfigError
from ..regularizers import gradient_penalty
from .base import Objective, flat, register_objective


@register_objective
@dataclass
class WGAN(Objective):
    """WGAN critic and generator losses (linear critic output), with the clip value for the weight clipping.

    ``clip_value``: c of seed 000 algorithm 5.1.1 (0.01); the algorithm calls
    ``regularizers.clip_weights_(critic, clip_value)`` after each critic iteration. ``None`` disables clipping
    (use when spectral normalisation or a gradient penalty provides the Lipschitz constraint instead).
    """

    name = "wgan"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = "Arjovsky et al. 2017; seed 000 section 1 (eqs. 5.1.20-5.1.23, algorithm 5.1.1); seed 003 section 3"

    clip_value: float | None = 0.01

    def __post_init__(self) -> None:
        if self.clip_value is not None and not self.clip_value > 0:
            raise ConfigError(f"objective.clip_value must be > 0 (or null to disable weight clipping), "
                              f"got {self.clip_value}; the book uses 0.01")

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return -flat(real_out).mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return flat(fake_out).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return -flat(fake_out).mean()


@register_objective
@dataclass
class WGANGP(WGAN):
    """WGAN-GP: the WGAN losses plus a two-sided gradient penalty on the critic; no weight clipping.

    ``gp_weight``: lambda = 10 (Gulrajani et al. 2017, section 4 "we use lambda = 10"; seed 002 part 1 section 6.1).
    ``gp_center``: the target gradient norm, 1 (seed 002: "the closer ||grad D|| is to 1, the better").
    The algorithm adds ``d_penalty(critic, real, fake)`` to the critic loss of each critic iteration.
    ``drift``: ProGAN's eps_drift (Karras et al. 2018, appendix A.1: "an additional term eps_drift E_{x in P_r}[D(x)^2]
    ... to keep the discriminator output from drifting too far away from zero", eps_drift = 0.001; spec 22.3), added
    to the real term of the critic loss: L_D = -E[D(x)] + drift * E[D(x)^2] + E[D(G(z))] (+ the penalty). 0, the
    default, is Gulrajani et al.'s loss.
    """

    name = "wgan-gp"
    source = "Gulrajani et al. 2017; seed 002 part 1 section 6"

    clip_value: float | None = None
    gp_weight: float = 10.0
    gp_center: float = 1.0
    drift: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.drift >= 0:
            raise ConfigError(f"objective.drift must be >= 0, got {self.drift}; ProGAN uses 0.001 (0: no drift term)")
        if not self.gp_weight >= 0:
            raise ConfigError(f"objective.gp_weight must be >= 0, got {self.gp_weight}; WGAN-GP uses 10")
        if not self.gp_center >= 0:
            raise ConfigError(f"objective.gp_center must be >= 0, got {self.gp_center}; WGAN-GP uses 1")

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        loss = super().d_real_loss(real_out)
        return loss + self.drift * flat(real_out).pow(2).mean() if self.drift else loss

    def d_penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                  generator: torch.Generator | None = None,
                  cond: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``gp_weight * E[(||grad_x D(x_hat)||_2 - gp_center)^2]`` on random interpolates of ``real`` and ``fake``
        (with ``cond``, the (real, fake) conditions of a conditional critic, interpolated alike)."""
        return self.gp_weight * gradient_penalty(critic, real, fake, center=self.gp_center, generator=generator,
                                                 cond=cond)
