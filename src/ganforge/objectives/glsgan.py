"""Generalised loss-sensitive GAN (GLS-GAN; Qi 2017), the family that joins WGAN and LS-GAN by one slope.

The cost is a leaky rectifier with slope ``s`` on its negative side (seed 003 section 4, s in (-inf, 1]):

    C_s(a) = a if a >= 0 else s * a

Two readings exist and both are offered, as two objectives:

``glsgan`` -- the seed's own construction (seed 003 section 4). The critic's linear output v passes through
``LeakyReLU(slope)`` (``model.add(LeakyReLU(slope))`` after ``Dense(1, activation='linear')``) and is trained with
the WGAN linear loss of seed 003 section 3, so per sample:

    L_D = -E[C_s(D(x))] + E[C_s(D(G(z)))]
    L_G = -E[C_s(D(G(z)))]

  s = 1 is exactly WGAN (seed 003 figure 4 "Slope: 1 (WGAN)"); s = 0 is the ReLU cost the seed labels the
  loss-sensitive GAN (figure 5); s = -1 the absolute value, "L1 loss" (figure 6). Seed 003's discussion states the
  regions each choice drives samples to: reals to +inf; fakes to (-inf, 0] for 0 <= s < 1 and to 0 for s < 0.
  (Seed 003 trains D on one combined [real; fake] batch, so its Keras loss is 1/2 of L_D above; like ``wgan`` this
  objective uses the unscaled seed 000 form, which only rescales the gradient.)

``glsgan-pairwise`` -- Qi's definition [R] (Qi 2017, "Loss-Sensitive GANs on Lipschitz Densities", section on the
generalised LS-GAN): the loss function L_theta(x) (low on real data) is trained on *margins* between paired real and
generated samples. With the critic score v = -L_theta (high = real, as for every other objective here):

    L_D = E_{(x, z)}[ C_s( Delta(x, G(z)) - D(x) + D(G(z)) ) ]
    L_G = -E_z[ D(G(z)) ]

  s = 1 gives E[Delta] - E[D(x)] + E[D(G(z))], the WGAN critic loss plus a term that does not depend on D; s = 0
  gives the LS-GAN hinge ``E[(Delta + L(x) - L(G(z)))_+]``. Qi's margin Delta is a distance between x and G(z) (an
  L1 distance of the images); as objectives see only scores, ``margin`` is a constant here, and an algorithm that
  wants the data-dependent margin calls ``pairwise_cost_loss`` with a per-pair tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Objective, flat, register_objective


def _check_slope(slope: float) -> None:
    if not slope <= 1.0:
        raise ConfigError(f"objective.slope must be <= 1 (seed 003: s in (-inf, 1]), got {slope}; "
                          "1 = WGAN, 0 = loss-sensitive GAN, -1 = L1 cost")


@register_objective
@dataclass
class GLSGAN(Objective):
    """Seed 003's GLS-GAN: WGAN's linear loss on ``LeakyReLU(slope)`` of the critic's linear output."""

    name = "glsgan"
    source = "seed 003 section 4 (LeakyReLU(slope) on the linear D output, WGAN loss); Qi 2017"

    slope: float = 0.0   # seed 003 shows 1 (WGAN), 0 (loss-sensitive GAN, our default) and -1 (L1)

    def __post_init__(self) -> None:
        _check_slope(self.slope)

    def cost(self, scores: torch.Tensor) -> torch.Tensor:
        """C_s applied to each raw score: the seed's ``LeakyReLU(slope)`` output layer."""
        return F.leaky_relu(flat(scores), negative_slope=self.slope)

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return -self.cost(real_out).mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return self.cost(fake_out).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return -self.cost(fake_out).mean()


def pairwise_cost_loss(real_out: torch.Tensor, fake_out: torch.Tensor, slope: float,
                       margin: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Qi's GLS-GAN critic loss ``E[C_s(margin - D(x_i) + D(G(z_i)))]`` over the pairs (x_i, G(z_i)).

    Sample i of ``real_out`` is paired with sample i of ``fake_out``; ``margin`` is a constant or one value per pair
    (Qi's Delta(x_i, G(z_i))).
    """
    real, fake = flat(real_out), flat(fake_out)
    if real.shape != fake.shape:
        raise ValueError(f"GLS-GAN pairs real and fake samples one to one, got {real.numel()} real and "
                         f"{fake.numel()} fake scores; use equal real and fake batch sizes")
    if isinstance(margin, torch.Tensor):
        margin = flat(margin)
    return F.leaky_relu(margin - real + fake, negative_slope=slope).mean()


@register_objective
@dataclass
class GLSGANPairwise(Objective):
    """Qi's GLS-GAN: leaky cost of the margin between paired real and fake scores; G maximises its samples' score."""

    name = "glsgan-pairwise"
    source = "Qi 2017 (generalised LS-GAN), [R]; seed 003 section 4"
    separable = False

    slope: float = 0.0
    margin: float = 0.0

    def __post_init__(self) -> None:
        _check_slope(self.slope)
        if not self.margin >= 0:
            raise ConfigError(f"objective.margin must be >= 0 (Qi's Delta is a distance), got {self.margin}")

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        return pairwise_cost_loss(real_out, fake_out, self.slope, self.margin)

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return -flat(fake_out).mean()
