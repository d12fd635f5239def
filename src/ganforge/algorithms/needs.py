"""An objective's needs, checked once when an algorithm is built and applied by a few shared functions.

An objective declares what it needs beyond its two losses (``Objective.needs()``, a set of ``Need``); an algorithm
declares what it can provide (``Algorithm.supported_needs``). ``check_needs``, called by every algorithm's
constructor, refuses an objective whose needs the algorithm cannot meet with one ``ConfigError`` line naming the
objective, the algorithm, the unmet needs and what to use instead; what it can meet it applies with the methods of
the returned ``ObjectiveNeeds``, at the same few places of every family's step:

========================  =========================================================================================
need                      where the algorithm applies it
========================  =========================================================================================
``WEIGHT_CLIP``           ``clip(D, ...)`` after each D update (WGAN, seed 000 algorithm 5.1.1 line 7)
``GRADIENT_PENALTY``      ``penalty(loss, critic, real, fake, logs)`` added to each D loss (WGAN-GP), logged as ``gp``
``AFTER_D_STEP``          ``after_d_step(real_out, fake_out, logs)`` after each D step (BEGAN's k_t), logged
``REAL_SCORES_IN_G``      ``real_scores(lambda: D(real))`` passed to ``g_loss`` (relativistic GANs)
``JOINT_D_LOSS``          the D loss is computed from real and fake scores together (``objective.d_loss``)
``ENERGY_D``              an auto-encoder D (only ``adversarial`` has one: ``networks.D.arch=autoencoder``)
``PULLAWAY_TERM``         EBGAN's pull-away term on D's codes of the fakes (``adversarial``)
========================  =========================================================================================

What each family provides (a need not listed is refused at build time):

==============  ===========================================================================================
algorithm       needs it meets
==============  ===========================================================================================
adversarial     all (a joint D loss not with ``d_update=separate``)
conditional     clip, penalty (conditions interpolated with the images), after_d_step, real scores, joint
acgan           clip, penalty (on the source head), after_d_step, real scores, joint
infogan         clip, penalty (on the source head), after_d_step, real scores, joint
stackedgan      clip and penalty for both stages' D, real scores, joint; no after_d_step (one objective state
                cannot follow two discriminators)
triplegan       none: its losses are its own per-pair log-likelihood terms (objective minimax or nonsaturating)
==============  ===========================================================================================

An objective without a need goes through none of these functions' work, so the default recipes compute exactly
what they computed before needs were declared.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import AbstractSet, Any

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..objectives import OBJECTIVES, Need, Objective
from ..regularizers import clip_weights_

ALL_NEEDS: frozenset[Need] = frozenset(Need)


def objectives_within(supported: AbstractSet[Need], exclude: Iterable[str] = ()) -> list[str]:
    """Names of the registered objectives whose needs (with their default hyperparameters) lie in ``supported``."""
    skip = set(exclude)
    return [name for name, cls in OBJECTIVES.items() if name not in skip and cls().needs() <= supported]


def check_needs(algorithm: str, objective: Objective, supported: AbstractSet[Need],
                why: Mapping[Need, str] | None = None, instead: str | None = None) -> ObjectiveNeeds:
    """The objective's needs as ``algorithm`` meets them; raises one ConfigError line for needs outside ``supported``.

    ``why``: for a refused need, why this algorithm (with its settings) cannot meet it; ``instead``: what to do
    (default: the registered objectives the algorithm can train with)."""
    needs = objective.needs()
    missing = [need for need in Need if need in needs and need not in supported]   # enum order: a stable message
    if missing:
        reasons = [why[n] for n in missing if why and n in why]
        because = f" ({'; '.join(dict.fromkeys(reasons))})" if reasons else ""
        if instead is None:
            options = objectives_within(supported, exclude=(objective.name,))
            instead = f"use objective.name={', '.join(options)}" if options else "use another algorithm"
        raise ConfigError(f"objective '{objective.name}' needs {' and '.join(n.value for n in missing)}, which "
                          f"algorithm '{algorithm}' does not provide{because}; {instead}")
    return ObjectiveNeeds(objective, needs)


def clip_critics(value: float | None, *critics: nn.Module) -> None:
    """WGAN's weight clipping: every parameter of each critic into [-value, value]; nothing when value is None."""
    if value is not None:
        for critic in critics:
            clip_weights_(critic, value)


class ObjectiveNeeds:
    """What an objective needs, bound to it, with one small method per place a need applies in a training step.

    Each method does nothing (and runs no forward pass, draws no random number) when the objective does not have
    that need."""

    def __init__(self, objective: Objective, needs: frozenset[Need]):
        from .regularization import Regularization
        self.objective, self.needs = objective, needs
        # The recipe's `regularize:` sample penalties (R1, R2, DRAGAN), attached by the build
        # (Algorithm.attach_regularization): added to each D loss where the objective's penalty goes.
        self.regularization = Regularization()
        self.clip_value: float | None = getattr(objective, "clip_value", None) if Need.WEIGHT_CLIP in needs else None

    def __contains__(self, need: object) -> bool:
        return need in self.needs

    def clip(self, *critics: nn.Module) -> None:
        """After a D update: the objective's weight clipping (``objective.clip_value``) of the critics."""
        clip_critics(self.clip_value, *critics)

    def penalty(self, loss: torch.Tensor, critic: Callable[..., torch.Tensor], real: torch.Tensor,
                fake: torch.Tensor, logs: MutableMapping[str, Any], key: str = "gp",
                cond: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``loss`` plus the objective's penalty on ``critic`` (inputs -> raw scores; with ``cond``, a conditional
        critic ``critic(x, condition)`` and the (real, fake) conditions), logged under ``key``, and the recipe's
        ``regularize:`` sample penalties due at this step (``algorithms/regularization.py``)."""
        if Need.GRADIENT_PENALTY in self.needs:
            value = self.objective.d_penalty(critic, real, fake, cond=cond)
            logs[key] = value.detach()
            loss = loss + value
        if self.regularization.has_d_terms:
            loss = self.regularization.d_terms(loss, critic, real, fake, logs, key=key, cond=cond)
        return loss

    def after_d_step(self, real_out: torch.Tensor, fake_out: torch.Tensor, logs: MutableMapping[str, Any]) -> None:
        """After a D step: the objective's state update from the step's raw scores; what it reports goes to logs."""
        if Need.AFTER_D_STEP in self.needs:
            logs.update(self.objective.after_d_step(real_out.detach(), fake_out.detach()))

    def real_scores(self, score: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """``score()`` (D's raw scores on the step's real batch) for ``g_loss`` when the objective compares fakes
        with reals, else None without calling it (no extra forward pass through D)."""
        return score() if Need.REAL_SCORES_IN_G in self.needs else None
