"""Regularizers as scheduled objects, configured once (the recipe's ``regularize:`` section) for every family.

The penalty functions live in :mod:`ganforge.regularizers`; this module decides *where and when* they apply, the same
way in every family, so that a family never re-implements them:

* **sample penalties** on a discriminator's inputs, added to each D loss at the one place every family already
  passes its critic, its real and its fake batch (``ObjectiveNeeds.penalty``, ``algorithms/needs.py``; conditional
  critics keep their conditions fixed):

  ==========  ==========================================================  ========================================
  ``r1``      ``gamma/2 E_real ||grad_x D(x)||^2``                         Mescheder et al. 2018 eq. 9; seed 002 part
                                                                           2 section 4.3 (BigGAN's R1, gamma 10)
  ``r2``      the same on the fakes                                        Mescheder et al. 2018 eq. 10
  ``dragan``  ``lambda E (||grad D(x + a delta)|| - 1)^2`` around the      Kodali et al. 2017 ("On Convergence and
              reals, ``delta = c std(x) U[0,1)``, ``a ~ U[0,1)``           Stability of GANs", DRAGAN: lambda 10,
                                                                           c 0.5)
  ==========  ==========================================================  ========================================

  Each takes ``every: k`` (lazy regularisation, Karras et al. 2020 StyleGAN2 section 3.1: the penalty only in the
  steps ``step % k == 0``, times k, so its average strength is unchanged; with ``n_critic`` > 1 every critic
  iteration of such a step has it);
* **parameter penalties** of a network, added once to each optimizer update of the group that trains it (by the
  trainer's ``optimizer_step``, whatever the family's step looks like; logged as ``ortho_<network>``):
  ``orthogonal: {G: beta}`` is BigGAN's ``beta ||W^T W (.) (1 - I)||_F^2`` (Brock et al. 2019 section 3.1, beta 1e-4;
  seed 002 part 2 section 4 with the spec's errata).

Weight clipping stays the objective's (``wgan``'s ``clip_value``), spectral normalisation a network switch
(``networks.<key>.spectral_norm``), the WGAN-GP penalty the objective's (``wgan-gp``): those were already one
mechanism for every family. The ``adversarial`` family's own keys (``algorithm.r1_gamma`` / ``r1_every`` /
``orthogonal_reg``) remain as its historical spelling of the same terms; giving a term both ways is refused.

A recipe without a ``regularize:`` section computes exactly what it computed before (no term, no random draw).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..regularizers import gradient_penalty, orthogonal_regularization, r1_penalty

SAMPLE_PENALTIES = ("r1", "r2", "dragan")
PENALTY_KEYS = {"r1": ("gamma", "every"), "r2": ("gamma", "every"), "dragan": ("weight", "c", "every")}
DEFAULTS = {"r1": {"gamma": 10.0}, "r2": {"gamma": 10.0}, "dragan": {"weight": 10.0, "c": 0.5}}
SECTION_KEYS = SAMPLE_PENALTIES + ("orthogonal",)


@dataclass(frozen=True)
class SamplePenalty:
    """One penalty on a discriminator's inputs: its kind, weight (gamma for r1 / r2, lambda for dragan), lazy
    interval and DRAGAN's perturbation scale."""

    name: str
    weight: float
    every: int = 1
    c: float = 0.5

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def __call__(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                 cond: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """The weighted penalty (before the lazy gain)."""
        if self.name in ("r1", "r2"):
            x = real if self.name == "r1" else fake
            scores = critic if cond is None else (lambda inp, c=cond[0 if self.name == "r1" else 1]: critic(inp, c))
            return r1_penalty(scores, x.detach(), self.weight)
        # DRAGAN: points between each real sample and a noisy copy of it (the std over the whole batch, as the
        # authors' code computes it), one interpolation coefficient per sample (gradient_penalty's eps).
        x = real.detach().float()
        noisy = x + self.c * x.std() * torch.rand(x.shape, device=x.device, dtype=x.dtype)
        return self.weight * gradient_penalty(critic, x, noisy, center=1.0,
                                              cond=None if cond is None else (cond[0], cond[0]))


@dataclass
class Regularization:
    """The configured terms, and the step they are applied at (set by the trainer before each step)."""

    penalties: tuple[SamplePenalty, ...] = ()
    orthogonal: dict[str, float] = field(default_factory=dict)
    step: int = 0
    logs: dict[str, torch.Tensor] = field(default_factory=dict)    # parameter terms of this step, for the trainer

    @property
    def has_d_terms(self) -> bool:
        return bool(self.penalties)

    def d_terms(self, loss: torch.Tensor, critic: Callable[..., torch.Tensor], real: torch.Tensor,
                fake: torch.Tensor, logs: MutableMapping[str, Any], key: str = "gp",
                cond: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``loss`` plus each sample penalty due at this step (times its lazy gain), each logged under its name
        (``key`` names the critic: ``gp`` -> ``r1``, ``gp_B`` -> ``r1_B``, ``d1_gp`` -> ``d1_r1``)."""
        for penalty in self.penalties:
            if not penalty.due(self.step):
                continue
            value = penalty(critic, real, fake, cond)
            if penalty.every > 1:
                value = value * penalty.every
            logs[key.replace("gp", penalty.name) if "gp" in key else f"{key}_{penalty.name}"] = value.detach()
            loss = loss + value
        return loss

    def parameter_terms(self, nets: Mapping[str, nn.Module]) -> torch.Tensor | None:
        """The parameter penalties of those of ``nets`` (one optimizer group's networks) that have one, summed;
        None when none has. Each is remembered in ``logs`` as ``ortho_<network>``."""
        total: torch.Tensor | None = None
        for key, net in nets.items():
            if key in self.orthogonal:
                term = orthogonal_regularization(net, beta=self.orthogonal[key])
                self.logs[f"ortho_{key}"] = term.detach()
                total = term if total is None else total + term
        return total


def _number(value: Any, where: str, low: float, strict: bool, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number ({hint}), got {value!r}")
    if value < low or (strict and value == low):
        raise ConfigError(f"{where} must be {'>' if strict else '>='} {low:g} ({hint}), got {value}")
    return float(value)


def parse_regularize(raw: Any, roles: Mapping[str, str], algorithm: str) -> Regularization:
    """The ``regularize:`` section as a Regularization; one ConfigError line for anything wrong in it."""
    if raw is None or raw == {}:
        return Regularization()
    if not isinstance(raw, Mapping):
        raise ConfigError("regularize must be a mapping, e.g. regularize: {r1: {gamma: 10, every: 16}, "
                          "orthogonal: {G: 1.0e-4}}")
    penalties = []
    for name, params in raw.items():
        if name not in SECTION_KEYS:
            raise ConfigError(f"unknown regularizer 'regularize.{name}'; choose from {', '.join(SECTION_KEYS)}")
        where = f"regularize.{name}"
        if name == "orthogonal":
            continue
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where} must be a mapping of {', '.join(PENALTY_KEYS[name])}, e.g. {where}: "
                              f"{{{PENALTY_KEYS[name][0]}: 10}}, got {params!r}")
        for key in params:
            if key not in PENALTY_KEYS[name]:
                raise ConfigError(f"unknown key '{where}.{key}'; {name} takes {', '.join(PENALTY_KEYS[name])}")
        merged = {**DEFAULTS[name], **params}
        weight_key = PENALTY_KEYS[name][0]
        weight = _number(merged[weight_key], f"{where}.{weight_key}", 0.0, True,
                         "R1 / R2: gamma, 10 in BigGAN" if name != "dragan" else "DRAGAN: lambda 10")
        every = merged.get("every", 1)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"{where}.every must be an integer >= 1 (StyleGAN2's lazy R1: 16), got {every!r}")
        c = _number(merged.get("c", 0.5), f"{where}.c", 0.0, True, "DRAGAN's noise scale: 0.5") \
            if name == "dragan" else 0.5
        penalties.append(SamplePenalty(name, weight, every, c))
    orthogonal: dict[str, float] = {}
    ortho = raw.get("orthogonal")
    if ortho is not None:
        if not isinstance(ortho, Mapping) or not ortho:
            raise ConfigError("regularize.orthogonal must map networks to beta, e.g. regularize.orthogonal: "
                              "{G: 1.0e-4} (BigGAN)")
        for key, beta in ortho.items():
            if key not in roles:
                raise ConfigError(f"regularize.orthogonal.{key}: algorithm '{algorithm}' has no network {key}; it has "
                                  f"{', '.join(roles)}")
            orthogonal[str(key)] = _number(beta, f"regularize.orthogonal.{key}", 0.0, True, "BigGAN: 1e-4")
    return Regularization(tuple(penalties), orthogonal)
