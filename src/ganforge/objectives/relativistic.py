"""Relativistic GANs (Jolicoeur-Martineau 2018; seed 002 part 3 section 1).

Seed 002 gives the general forms (section 1.2 and 1.3), with C the critic's raw score:

    L_D^RGAN  = E_{(x_r, x_f)}[f1(C(x_r) - C(x_f))] + E_{(x_r, x_f)}[f2(C(x_f) - C(x_r))]
    L_G^RGAN  = E_{(x_r, x_f)}[g1(C(x_r) - C(x_f))] + E_{(x_r, x_f)}[g2(C(x_f) - C(x_r))]
    L_D^RaGAN = E_{x_r}[f1(C(x_r) - E_{x_f} C(x_f))] + E_{x_f}[f2(C(x_f) - E_{x_r} C(x_r))]
    L_G^RaGAN = E_{x_r}[g1(C(x_r) - E_{x_f} C(x_f))] + E_{x_f}[g2(C(x_f) - E_{x_r} C(x_r))]

The concrete losses are [R] from Jolicoeur-Martineau 2018 (section 4 and appendix, "RSGAN", "RaSGAN", "RaLSGAN",
"RaHingeGAN"); with sigma the logistic sigmoid, -log sigma(a) = softplus(-a) and -log(1 - sigma(a)) = softplus(a):

    RSGAN     L_D = E[-log sigma(C(x_r) - C(x_f))]                        (pairs (x_r, x_f), sample i with sample i)
              L_G = E[-log sigma(C(x_f) - C(x_r))]
    RaSGAN    L_D = E_r[-log sigma(Dr)] + E_f[-log(1 - sigma(Df))]     Dr = C(x_r) - E C(x_f), Df = C(x_f) - E C(x_r)
              L_G = E_f[-log sigma(Df)] + E_r[-log(1 - sigma(Dr))]
    RaLSGAN   L_D = E_r[(Dr - 1)^2] + E_f[(Df + 1)^2]
              L_G = E_f[(Df - 1)^2] + E_r[(Dr + 1)^2]
    RaHinge   L_D = E_r[max(0, 1 - Dr)] + E_f[max(0, 1 + Df)]
              L_G = E_f[max(0, 1 - Df)] + E_r[max(0, 1 + Dr)]

The generator losses depend on the real scores too (``g_needs_real``): the generator gains by making reals look
*less* real relative to its fakes (seed 002 section 1.2: "in RGAN g1 is not 0"). The algorithm passes the
discriminator's scores on a real batch to ``g_loss``; gradients reach the generator only through ``fake_out``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Objective, flat, register_objective


def _scores(fake_out: torch.Tensor, real_out: torch.Tensor | None, who: str) -> tuple[torch.Tensor, torch.Tensor]:
    if real_out is None:
        raise ValueError(f"the {who} generator loss compares fakes with reals: pass real_out "
                         "(the discriminator's scores on a real batch) to g_loss")
    return flat(real_out), flat(fake_out)


def _relative_to_mean(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(C(x_r) - E C(x_f), C(x_f) - E C(x_r)): the relativistic *average* differences."""
    return real - fake.mean(), fake - real.mean()


class _Relativistic(Objective):
    separable = False
    g_needs_real = True


@register_objective
@dataclass
class RSGAN(_Relativistic):
    """Relativistic standard GAN: real sample i should score higher than fake sample i."""

    name = "rsgan"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = "Jolicoeur-Martineau 2018 (RSGAN), [R]; seed 002 part 3 section 1.2"

    @staticmethod
    def _paired(real: torch.Tensor, fake: torch.Tensor) -> None:
        if real.shape != fake.shape:
            raise ValueError(f"RSGAN pairs real and fake samples one to one, got {real.numel()} real and "
                             f"{fake.numel()} fake scores; use equal real and fake batch sizes")

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        real, fake = flat(real_out), flat(fake_out)
        self._paired(real, fake)
        return F.softplus(-(real - fake)).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        real, fake = _scores(fake_out, real_out, "RSGAN")
        self._paired(real, fake)
        return F.softplus(-(fake - real)).mean()


@register_objective
@dataclass
class RaSGAN(_Relativistic):
    """Relativistic average standard GAN."""

    name = "rasgan"
    source = "Jolicoeur-Martineau 2018 (RaSGAN), [R]; seed 002 part 3 section 1.3"

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        real_rel, fake_rel = _relative_to_mean(flat(real_out), flat(fake_out))
        return F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        real_rel, fake_rel = _relative_to_mean(*_scores(fake_out, real_out, "RaSGAN"))
        return F.softplus(-fake_rel).mean() + F.softplus(real_rel).mean()


@register_objective
@dataclass
class RaLSGAN(_Relativistic):
    """Relativistic average least-squares GAN (targets +1 / -1 for the relative scores)."""

    name = "ralsgan"
    source = "Jolicoeur-Martineau 2018 (RaLSGAN), [R]; seed 002 part 3 section 1.3"

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        real_rel, fake_rel = _relative_to_mean(flat(real_out), flat(fake_out))
        return (real_rel - 1.0).square().mean() + (fake_rel + 1.0).square().mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        real_rel, fake_rel = _relative_to_mean(*_scores(fake_out, real_out, "RaLSGAN"))
        return (fake_rel - 1.0).square().mean() + (real_rel + 1.0).square().mean()


@register_objective
@dataclass
class RaHinge(_Relativistic):
    """Relativistic average hinge GAN."""

    name = "rahinge"
    source = "Jolicoeur-Martineau 2018 (RaHingeGAN), [R]; seed 002 part 3 section 1.3"

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        real_rel, fake_rel = _relative_to_mean(flat(real_out), flat(fake_out))
        return F.relu(1.0 - real_rel).mean() + F.relu(1.0 + fake_rel).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        real_rel, fake_rel = _relative_to_mean(*_scores(fake_out, real_out, "RaHinge"))
        return F.relu(1.0 - fake_rel).mean() + F.relu(1.0 + real_rel).mean()
