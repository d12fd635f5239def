"""Phases: a schedule over the steps of a run that the algorithm reads from the step context (``ctx.phase``).

For progressive growing (Karras et al. 2018, ProGAN section 3 and appendix A.1; seed 002 part 4 "ProGAN"): the
networks are built whole, with every resolution's layers, up front (so optimizers, the EMA copy and DDP never
need rebuilding) and the phase says which resolution trains now, how far its fade-in has come, and the batch size
(the paper shrinks it as the resolution grows, to fit memory). ``train.phases`` lists them in order::

    train:
      phases:
        - {name: "4x4", steps: 2000, image_size: 4, batch_size: 64}
        - {name: "8x8", steps: 4000, image_size: 8, batch_size: 64, fade_steps: 2000}
        - {name: "16x16", image_size: 16, batch_size: 32, fade_steps: 2000}     # the last: until train.steps

A phase is a pure function of the step (``phase_at``), so a run resumed in the middle of a phase, or of a fade-in,
continues exactly: nothing about it is checkpointed beyond the step, and the sampler's state already is. The last
phase lasts until ``train.steps`` (its own ``steps``, if given, only bounds it when the run is longer: then the
schedule's end is the last phase's end and the steps after it stay in that phase at alpha 1).

``alpha`` rises linearly from ``1 / fade_steps`` at the phase's first step to 1 after ``fade_steps`` steps (ProGAN's
fade-in weight of the new layers, "alpha increases linearly from 0 to 1"); 1 throughout a phase without fade-in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import ConfigError


@dataclass(frozen=True)
class Phase:
    """Where a step stands in the phase schedule."""

    index: int                    # 0-based position in train.phases
    name: str                     # train.phases[i].name, or "phase i"
    start: int                    # the run step at which the phase begins
    steps: int | None             # its length (None: the last phase, until train.steps)
    step_in_phase: int            # 0 at the phase's first step
    image_size: int | None        # the resolution to train at (None: the data's)
    batch_size: int | None        # the main stream's global batch in this phase (None: train.batch_size)
    alpha: float                  # fade-in weight of the phase's new layers, in (0, 1]

    @property
    def fading(self) -> bool:
        return self.alpha < 1.0


def check_phases(phases: Sequence["PhaseLike"], path: str) -> None:
    """Refuse a schedule that cannot run, each problem in one line naming the key."""
    names: set[str] = set()
    for i, p in enumerate(phases):
        where = f"{path}[{i}]"
        last = i == len(phases) - 1
        if p.steps is None and not last:
            raise ConfigError(f"{where}.steps is missing: every phase but the last needs its length in steps (the "
                              "last lasts until train.steps)")
        if p.steps is not None and p.steps < 1:
            raise ConfigError(f"{where}.steps must be >= 1, got {p.steps}")
        if p.fade_steps < 0 or (p.steps is not None and p.fade_steps > p.steps):
            raise ConfigError(f"{where}.fade_steps must be between 0 and the phase's steps ({p.steps}), got "
                              f"{p.fade_steps}")
        if p.batch_size is not None and p.batch_size < 1:
            raise ConfigError(f"{where}.batch_size must be >= 1, got {p.batch_size}")
        if p.image_size is not None and not 1 <= p.image_size <= 4096:
            raise ConfigError(f"{where}.image_size must be between 1 and 4096, got {p.image_size}")
        if p.name:
            if p.name in names:
                raise ConfigError(f"{where}.name {p.name!r} is used by an earlier phase; give each phase its own name")
            names.add(p.name)


class PhaseLike:    # the fields phase_at reads (config.PhaseConfig has them); for type hints only
    name: str
    steps: int | None
    image_size: int | None
    batch_size: int | None
    fade_steps: int


def phase_at(phases: Sequence[PhaseLike], step: int) -> Phase | None:
    """The phase that step ``step`` (0-based: the step being computed) falls in; None without phases."""
    if not phases:
        return None
    start = 0
    for i, p in enumerate(phases):
        last = i == len(phases) - 1
        if last or step < start + (p.steps or 0):
            offset = step - start
            alpha = min(1.0, (offset + 1) / p.fade_steps) if p.fade_steps else 1.0
            return Phase(index=i, name=p.name or f"phase {i}", start=start, steps=p.steps, step_in_phase=offset,
                         image_size=p.image_size, batch_size=p.batch_size, alpha=alpha)
        start += p.steps or 0
    raise AssertionError("unreachable: the last phase takes every later step")


def phase_batch_sizes(phases: Sequence[PhaseLike], default: int) -> list[int]:
    """Every global batch size the schedule uses (``default`` for phases without their own)."""
    return sorted({p.batch_size or default for p in phases} or {default})
