"""The objective vocabulary: loss functions of discriminator outputs, with no networks inside.

An objective turns raw discriminator outputs (``real_out`` on data, ``fake_out`` on generated samples;
any shape, one score per sample, *before* any output activation) into the discriminator's and the
generator's losses, each a scalar mean over the batch. Networks always return raw scores; sigmoid /
probability forms of the textbooks are folded into the loss (e.g. BCE-with-logits), which is the
same function computed stably.

Objectives whose discriminator loss is a sum of a term on real and a term on fake outputs are
``separable``; the book's "separate real and fake updates" (seed 000, WGAN listing 5.1.2; seed 001)
needs that split.

What an objective asks of the training algorithm beyond the two losses is declared in one place, ``needs()``
(a set of ``Need``): weight clipping of D, an input-gradient penalty on D, a state update after each D step, D's
real scores in the generator loss, an auto-encoder D, EBGAN's pull-away term, a D loss that does not split. Every
algorithm checks that set when it is built (``algorithms/needs.py``): it applies what it supports and refuses the
rest with one line, so no objective setting is silently ignored.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ..registry import Registry


class Need(enum.Enum):
    """Something an objective needs from the algorithm that trains with it; the value says what, for messages."""

    WEIGHT_CLIP = "weight clipping of D after each D update (objective.clip_value)"
    GRADIENT_PENALTY = "a gradient penalty on D's inputs in the D loss (objective.gp_weight)"
    AFTER_D_STEP = "a state update after each D step (objective.after_d_step, e.g. BEGAN's k_t)"
    REAL_SCORES_IN_G = "D's scores on a real batch in the generator loss"
    ENERGY_D = "an auto-encoder D whose output is a reconstruction energy"
    PULLAWAY_TERM = "EBGAN's pull-away term on D's codes of the fakes (objective.pt_weight)"
    JOINT_D_LOSS = "a D loss of real and fake scores together (it does not split into a real and a fake term)"


Critic = Callable[..., torch.Tensor]


class Objective:
    """Base class. Subclasses set ``name``/``source`` and implement the loss terms."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = ""
    separable: ClassVar[bool] = True       # d_loss == d_real_loss + d_fake_loss
    g_needs_real: ClassVar[bool] = False   # relativistic losses compare fakes with reals in the G loss too
    energy_based: ClassVar[bool] = False   # scores are auto-encoder reconstruction energies (EBGAN, BEGAN)
    # Whether ``train.precision: auto`` may take bf16 with this loss (where the algorithm is measured too): only
    # objectives measured to learn as well in bf16 (bench/bf16_check.py); a class's own declaration, not inherited.
    auto_bf16: ClassVar[bool] = False

    def d_real_loss(self, real_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not separable into real and fake terms")

    def d_fake_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not separable into real and fake terms")

    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        return self.d_real_loss(real_out) + self.d_fake_loss(fake_out)

    def g_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    # Stateful objectives (BEGAN's k_t) update themselves after a discriminator step and checkpoint
    # their state; the default has none.
    def after_d_step(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, float]:
        return {}

    # Objectives with a penalty on D (WGAN-GP) override this; the algorithm adds it to each D loss.
    def d_penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                  generator: torch.Generator | None = None,
                  cond: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The penalty for ``critic`` (inputs -> scores; with ``cond``, ``critic(inputs, condition)``) on this real
        and fake batch, already weighted."""
        raise NotImplementedError(f"objective '{self.name}' adds no penalty to the discriminator loss")

    def needs(self) -> frozenset[Need]:
        """What this objective, with its hyperparameters, needs from the training algorithm.

        Derived from what the objective defines, so a new objective declares a need by defining it: a
        ``clip_value`` that is not None, an overridden ``d_penalty`` (unless its ``gp_weight`` is 0), an overridden
        ``after_d_step``, ``g_needs_real``, ``energy_based``, a ``pt_weight`` > 0, ``separable = False``."""
        found = set()
        if getattr(self, "clip_value", None) is not None:
            found.add(Need.WEIGHT_CLIP)
        if type(self).d_penalty is not Objective.d_penalty and getattr(self, "gp_weight", 1.0) > 0:
            found.add(Need.GRADIENT_PENALTY)
        if type(self).after_d_step is not Objective.after_d_step:
            found.add(Need.AFTER_D_STEP)
        if self.g_needs_real:
            found.add(Need.REAL_SCORES_IN_G)
        if self.energy_based:
            found.add(Need.ENERGY_D)
        if getattr(self, "pt_weight", 0.0) > 0:
            found.add(Need.PULLAWAY_TERM)
        if not self.separable:
            found.add(Need.JOINT_D_LOSS)
        return frozenset(found)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


def register_objective(cls: type[Objective]) -> type[Objective]:
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a name")
    return OBJECTIVES.add(cls.name, cls, cls.source)


def objective_names() -> list[str]:
    return OBJECTIVES.names()


def objective_class(name: str) -> type[Objective]:
    return OBJECTIVES.get(name)


def flat(t: torch.Tensor) -> torch.Tensor:
    """All scores as one fp32 vector: losses run in full precision even under autocast, and a
    patch discriminator's map (B x 1 x H x W) counts every patch as one decision."""
    return t.float().reshape(-1)
