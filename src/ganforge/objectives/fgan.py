"""f-GAN: variational divergence minimisation for any f-divergence (Nowozin, Cseke & Tomioka 2016; seed 002 part 1
section 2).

An f-divergence ``D_f(P||Q) = int q(x) f(p(x)/q(x)) dx`` (seed 002 eq. 1; f convex, f(1) = 0) has the variational
lower bound obtained from the Fenchel conjugate ``f*(t) = sup_u {u t - f(u)}`` (seed 002 eqs. 6-15):

    D_f(P||Q) >= sup_T E_{x~P}[T(x)] - E_{x~Q}[f*(T(x))]

with equality at ``T*(x) = f'(p(x)/q(x))``. With P = p_data and Q = p_g the discriminator is T, written
``T(x) = g_f(V(x))``: V is the network's raw score and g_f an output activation that maps the reals into the domain
of f* (Nowozin et al. table 2, [R] -- seed 002's table lists f and f* but not g_f). So, as batch means:

    L_D = -( E_real[g_f(v)] - E_fake[f*(g_f(v))] )
    L_G (saturating)     = -E_fake[f*(g_f(v))]     (the generator's side of the same saddle objective)
    L_G (nonsaturating)  = -E_fake[g_f(v)]         (Nowozin et al. section 3.2: maximise g_f(V(G(z))) instead,
                                                    the f-GAN form of Goodfellow's "-log D" trick; the default)

For ``divergence: gan`` these are exactly the GAN losses: L_D is the binary cross-entropy with logits, the
saturating L_G is ``log(1 - D(G(z)))`` and the non-saturating one ``-log D(G(z))``.

The table (f from seed 002 part 1 section 2; g_f from Nowozin et al. table 2; f* from both):

    name               f(u)                              g_f(v)                    f*(t)
    total_variation    1/2 |u - 1|                       1/2 tanh(v)               t
    kl                 u log u                           v                         exp(t - 1)
    reverse_kl         -log u                            -exp(-v)                  -1 - log(-t)
    pearson            (u - 1)^2                         v                         t^2/4 + t
    neyman             (1 - u)^2 / u                     1 - exp(-v)               2 - 2 sqrt(1 - t)
    squared_hellinger  (sqrt(u) - 1)^2                   1 - exp(-v)               t / (1 - t)
    jeffrey            (u - 1) log u                     v                         W(e^(1-t)) + 1/W(e^(1-t)) + t - 2
    js                 -(u+1) log((1+u)/2) + u log u     log 2 - log(1 + exp(-v))  -log(2 - exp(t))
    gan                u log u - (u+1) log(u+1)          -log(1 + exp(-v))         -log(1 - exp(t))

Notes on the table. The loss depends only on f (through f* and g_f), not on the divergence's printed name; two
printed names disagree with their f in the seed (and in Nowozin's table 1): with ``f = (u-1)^2``,
``int q f(p/q) = int (p-q)^2/q`` (the seed prints (q-p)^2/p for Pearson and the reverse for Neyman), and the
tabulated JS generator gives twice the 1/2-normalised Jensen-Shannon divergence the seed prints beside it.
W is the Lambert W function (principal branch), computed here by Newton's method. ``f*(g_f(v))`` is computed in a
closed, numerically stable form for each divergence (e.g. softplus for js / gan), equal to composing the two.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Objective, flat, register_objective

Fn = Callable[[torch.Tensor], torch.Tensor]


def lambert_w_exp(s: torch.Tensor, newton_steps: int = 40) -> torch.Tensor:
    """W(exp(s)), the principal Lambert W of e^s, for any real ``s``; differentiable in ``s``.

    Solves ``w + log w = s`` through y = log w, i.e. ``e^y + y = s``: a convex increasing equation on which Newton's
    method started to the right of the root (y0 = s for s < 1, log s otherwise) decreases monotonically to it
    without overshooting. The iterations run without autograd in float64; one final Newton step from the converged
    (detached) point carries the exact derivative dw/ds = w / (1 + w) (implicit function theorem).
    """
    with torch.no_grad():
        s64 = s.detach().double()
        y = torch.where(s64 < 1.0, s64, torch.log(s64.clamp_min(1.0)))
        for _ in range(newton_steps):
            y = y - (torch.exp(y) + y - s64) / (torch.exp(y) + 1.0)
        y = y.to(s.dtype)
    y = y - (torch.exp(y) + y - s) / (torch.exp(y) + 1.0)
    return torch.exp(y)


def _jeffrey_conjugate(t: torch.Tensor) -> torch.Tensor:
    w = lambert_w_exp(1.0 - t)
    return w + 1.0 / w + t - 2.0


@dataclass(frozen=True)
class Divergence:
    """One row of the f-GAN table: the generator f, output activation g_f, conjugate f* and f*(g_f(v))."""

    f: Fn                        # the convex generator, for reference and documentation
    activation: Fn               # g_f: raw score v -> T = g_f(v), inside dom f*
    conjugate: Fn                # f*(t), defined on dom f*
    conjugate_of_activation: Fn  # f*(g_f(v)), the same value in a numerically stable closed form


_LOG2 = math.log(2.0)

DIVERGENCES: dict[str, Divergence] = {
    "total_variation": Divergence(
        f=lambda u: 0.5 * (u - 1.0).abs(),
        activation=lambda v: 0.5 * torch.tanh(v),
        conjugate=lambda t: t,
        conjugate_of_activation=lambda v: 0.5 * torch.tanh(v)),
    "kl": Divergence(
        f=lambda u: u * torch.log(u),
        activation=lambda v: v,
        conjugate=lambda t: torch.exp(t - 1.0),
        conjugate_of_activation=lambda v: torch.exp(v - 1.0)),
    "reverse_kl": Divergence(
        f=lambda u: -torch.log(u),
        activation=lambda v: -torch.exp(-v),
        conjugate=lambda t: -1.0 - torch.log(-t),
        conjugate_of_activation=lambda v: v - 1.0),          # -1 - log(exp(-v))
    "pearson": Divergence(
        f=lambda u: (u - 1.0).square(),
        activation=lambda v: v,
        conjugate=lambda t: 0.25 * t.square() + t,
        conjugate_of_activation=lambda v: 0.25 * v.square() + v),
    "neyman": Divergence(
        f=lambda u: (1.0 - u).square() / u,
        activation=lambda v: 1.0 - torch.exp(-v),
        conjugate=lambda t: 2.0 - 2.0 * torch.sqrt(1.0 - t),
        conjugate_of_activation=lambda v: 2.0 - 2.0 * torch.exp(-0.5 * v)),   # sqrt(1 - g) = exp(-v/2)
    "squared_hellinger": Divergence(
        f=lambda u: (torch.sqrt(u) - 1.0).square(),
        activation=lambda v: 1.0 - torch.exp(-v),
        conjugate=lambda t: t / (1.0 - t),
        conjugate_of_activation=lambda v: torch.expm1(v)),   # (1 - e^-v) / e^-v
    "jeffrey": Divergence(
        f=lambda u: (u - 1.0) * torch.log(u),
        activation=lambda v: v,
        conjugate=_jeffrey_conjugate,
        conjugate_of_activation=_jeffrey_conjugate),
    "js": Divergence(
        f=lambda u: -(u + 1.0) * torch.log((1.0 + u) / 2.0) + u * torch.log(u),
        activation=lambda v: _LOG2 - F.softplus(-v),
        conjugate=lambda t: -torch.log(2.0 - torch.exp(t)),
        conjugate_of_activation=lambda v: F.softplus(v) - _LOG2),   # -log(2 - 2 sigmoid(v))
    "gan": Divergence(
        f=lambda u: u * torch.log(u) - (u + 1.0) * torch.log(u + 1.0),
        activation=lambda v: -F.softplus(-v),                # log sigmoid(v)
        conjugate=lambda t: -torch.log(1.0 - torch.exp(t)),
        conjugate_of_activation=lambda v: F.softplus(v)),    # -log(1 - sigmoid(v))
}

G_FORMS = ("nonsaturating", "saturating")


@register_objective
@dataclass
class FGAN(Objective):
    """f-GAN losses for the divergence named in ``divergence`` (see the module table)."""

    name = "fgan"
    auto_bf16 = True     # measured (KL): bench/bf16_check.py (train/precision.py)
    source = "Nowozin et al. 2016 (tables 1-2, section 3.2); seed 002 part 1 section 2 (eqs. 1-18, f / f* table)"

    divergence: str = "gan"
    g_form: str = "nonsaturating"

    def __post_init__(self) -> None:
        if self.divergence not in DIVERGENCES:
            raise ConfigError(f"objective.divergence '{self.divergence}' is unknown; "
                              f"choose one of {', '.join(DIVERGENCES)}")
        if self.g_form not in G_FORMS:
            raise ConfigError(f"objective.g_form must be one of {', '.join(G_FORMS)}, got '{self.g_form}'")

    @property
    def table(self) -> Divergence:
        return DIVERGENCES[self.divergence]

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return -self.table.activation(flat(real_out)).mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return self.table.conjugate_of_activation(flat(fake_out)).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        fake = flat(fake_out)
        if self.g_form == "saturating":
            return -self.table.conjugate_of_activation(fake).mean()
        return -self.table.activation(fake).mean()

    def divergence_estimate(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """The variational lower bound ``E_real[g_f(v)] - E_fake[f*(g_f(v))]`` on D_f(p_data || p_g), for logging."""
        return -self.d_loss(real_out, fake_out)
