"""Energy-based objectives with an auto-encoder discriminator: EBGAN (Zhao et al. 2017) and BEGAN (Berthelot et al.
2017); seed 002 part 3 sections 2-3.

Contract for both: the discriminator is an auto-encoder and its output is the **per-sample reconstruction energy**,
a non-negative tensor of shape (B,) (or (B, 1)): e.g. ``((D_ae(x) - x) ** 2).flatten(1).mean(1)`` (EBGAN's mean squared
error) or ``(D_ae(x) - x).abs().flatten(1).mean(1)`` (BEGAN's L1, eta = 1). Low energy = looks like data (seed 002
section 2: the auto-encoder "remembers" the real data, so a small reconstruction error means a realistic input).
The objectives never apply an activation to it; hyperparameters with a scale (EBGAN's margin) are in the energy's
units, so they depend on that choice of reduction.

EBGAN [R] (Zhao et al. section 2.2 and 2.4, reconstructed; seed 002 gives no formula):

    L_D = E[D(x)] + E[max(0, m - D(G(z)))]
    L_G = E[D(G(z))]  (+ lambda_PT * f_PT(S) with the "pull-away term" on the encoder's codes S of the fake batch)

BEGAN [R] (Berthelot et al. section 3.4, reconstructed; seed 002 names only its contributions), with
L(v) = the energy of v:

    L_D = L(x) - k_t L(G(z))
    L_G = L(G(z))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),   k_0 = 0
    M_global = L(x) + |gamma L(x) - L(G(z))|        (the convergence measure, seed 002 contribution 4)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, ConfigError
from .base import Objective, flat, register_objective


def pullaway_term(embeddings: torch.Tensor) -> torch.Tensor:
    """EBGAN's pull-away term (Zhao et al. 2017 eq. 6, [R]) on a batch of codes S (N samples, any trailing shape):

        f_PT(S) = 1 / (N (N - 1)) * sum_{i != j} ( S_i^T S_j / (||S_i|| ||S_j||) )^2

    the mean squared cosine similarity between distinct samples; it is small when the codes point in different
    directions, which discourages the generator from collapsing to one mode.
    """
    codes = embeddings.float().flatten(1)
    n = codes.shape[0]
    if n < 2:
        raise ValueError(f"the pull-away term compares samples pairwise and needs a batch of at least 2, got {n}")
    unit = F.normalize(codes, dim=1)
    cosine = unit @ unit.T
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=codes.device)
    return cosine[off_diagonal].square().sum() / (n * (n - 1))


@register_objective
@dataclass
class EBGAN(Objective):
    """EBGAN: energy of reals pulled down, energy of fakes pushed up to the margin ``margin``.

    ``margin``: m, in the energy's units. Zhao et al. choose m per data set by grid search and give no universal
    value; the default 1.0 is our choice for a per-pixel *mean* reconstruction error of images scaled to [0, 1] or
    [-1, 1] (where the energy rarely exceeds a few units); set it in the recipe for other reductions.
    ``pt_weight``: lambda_PT = 0.1 (Zhao et al. section 4, "EBGAN-PT"); 0 turns the pull-away term off. The
    algorithm adds ``pt_weight * pullaway_term(codes_of_fakes)`` to the generator loss.
    """

    name = "ebgan"
    source = "Zhao et al. 2017 (EBGAN, eqs. 1-2, 6), [R]; seed 002 part 3 section 2"
    energy_based = True

    margin: float = 1.0
    pt_weight: float = 0.1

    def __post_init__(self) -> None:
        if not self.margin > 0:
            raise ConfigError(f"objective.margin must be > 0 (EBGAN pushes fake energies up to it), got {self.margin}")
        if not self.pt_weight >= 0:
            raise ConfigError(f"objective.pt_weight must be >= 0 (0 disables the pull-away term), got {self.pt_weight}")

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return flat(real_out).mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return F.relu(self.margin - flat(fake_out)).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return flat(fake_out).mean()


@register_objective
@dataclass
class BEGAN(Objective):
    """BEGAN: auto-encoder energies balanced by the proportional controller k_t.

    ``gamma``: the diversity ratio gamma = E[L(G(z))] / E[L(x)] the controller aims for, in [0, 1]; lower means
    sharper but less diverse samples (Berthelot et al. section 3.3; they show 0.3, 0.5 and 0.7, 0.5 is our default).
    ``lambda_k``: the controller's gain, 0.001 (Berthelot et al. section 3.4). ``k_0``: 0 (same section).

    ``k_t`` is a plain float, treated as a constant in the discriminator loss; ``after_d_step`` updates it from the
    energies the discriminator step computed (the paper updates it once per training step, after both players).
    """

    name = "began"
    source = "Berthelot et al. 2017 (BEGAN, section 3.3-3.4), [R]; seed 002 part 3 section 3"
    energy_based = True

    gamma: float = 0.5
    lambda_k: float = 0.001
    k_0: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"objective.gamma must be in [0, 1] (BEGAN's diversity ratio), got {self.gamma}")
        if not self.lambda_k >= 0:
            raise ConfigError(f"objective.lambda_k must be >= 0 (BEGAN uses 0.001), got {self.lambda_k}")
        if not 0.0 <= self.k_0 <= 1.0:
            raise ConfigError(f"objective.k_0 must be in [0, 1] (BEGAN starts at 0), got {self.k_0}")
        # k_t is state, not a hyperparameter: a plain attribute, so it is neither a config key nor in the repr.
        self.k = float(self.k_0)

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        return flat(real_out).mean()

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        return -self.k * flat(fake_out).mean()

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        return flat(fake_out).mean()

    @staticmethod
    def _energies(real_out: torch.Tensor, fake_out: torch.Tensor) -> tuple[float, float]:
        with torch.no_grad():
            return float(flat(real_out).mean()), float(flat(fake_out).mean())

    def convergence_measure(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> float:
        """M_global = L(x) + |gamma L(x) - L(G(z))| (batch means)."""
        real_energy, fake_energy = self._energies(real_out, fake_out)
        return real_energy + abs(self.gamma * real_energy - fake_energy)

    def after_d_step(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, float]:
        """Proportional control of k_t; returns the updated ``k_t`` and the convergence measure ``M``."""
        real_energy, fake_energy = self._energies(real_out, fake_out)
        balance = self.gamma * real_energy - fake_energy
        self.k = min(max(self.k + self.lambda_k * balance, 0.0), 1.0)
        return {"k_t": self.k, "M": real_energy + abs(balance)}

    def state_dict(self) -> dict[str, Any]:
        return {"k_t": self.k}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "k_t" not in state:
            raise CheckpointError("the checkpoint's BEGAN objective state has no 'k_t'; it was not written by a BEGAN "
                                  "run -- resume with the matching objective or start a fresh run")
        self.k = float(state["k_t"])
