"""The objective vocabulary: loss functions of discriminator outputs, with no networks inside.

An objective turns raw discriminator outputs (``real_out`` on data, ``fake_out`` on generated samples;
any shape, one score per sample, *before* any output activation) into the discriminator's and the
generator's losses, each a scalar mean over the batch. Networks always return raw scores; sigmoid /
probability forms of the textbooks are folded into the loss (e.g. BCE-with-logits), which is the
same function computed stably.

Objectives whose discriminator loss is a sum of a term on real and a term on fake outputs are
``separable``; the book's "separate real and fake updates" (seed 000, WGAN listing 5.1.2; seed 001)
needs that split.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..errors import ConfigError


class Objective:
    """Base class. Subclasses set ``name``/``source`` and implement the loss terms."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = ""
    separable: ClassVar[bool] = True       # d_loss == d_real_loss + d_fake_loss
    g_needs_real: ClassVar[bool] = False   # relativistic losses compare fakes with reals in the G loss too
    energy_based: ClassVar[bool] = False   # scores are auto-encoder reconstruction energies (EBGAN, BEGAN)

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

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


_OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(cls: type[Objective]) -> type[Objective]:
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a name")
    _OBJECTIVES[cls.name] = cls
    return cls


def objective_names() -> list[str]:
    return sorted(_OBJECTIVES)


def objective_class(name: str) -> type[Objective]:
    if name not in _OBJECTIVES:
        import difflib
        close = difflib.get_close_matches(name, _OBJECTIVES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown objective '{name}'{hint}; known: {', '.join(objective_names())}")
    return _OBJECTIVES[name]


def flat(t: torch.Tensor) -> torch.Tensor:
    """All scores as one fp32 vector: losses run in full precision even under autocast, and a
    patch discriminator's map (B x 1 x H x W) counts every patch as one decision."""
    return t.float().reshape(-1)
