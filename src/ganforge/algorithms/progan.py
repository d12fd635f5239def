"""ProGAN's step: the adversarial step at the phase's resolution (Karras et al. 2018; seed 002 chapter 3 part 1;
spec 22).

Progressive growing is not a new step: it is the unconditional adversarial step (``adversarial.py``: n_critic critic
updates, then one generator update; with ``objective: wgan-gp`` and its ``drift``, the paper's loss) on networks
that run at the resolution and fade-in weight of the current ``train.phases`` phase (``train/phases.py``). This family
adds only what the phase changes:

- ``enter_phase`` tells G and D (``models/progan.py``, built whole up front) the phase's resolution and alpha;
- real batches are average-pooled to the phase's resolution, and during a fade-in blended like the generator's output
  (the paper, figure 2: "we interpolate between two resolutions of the real images"; the authors' ``process_reals``):
  x = (1 - alpha) * upsample_2x(avgpool_2x(x_r)) + alpha * x_r, x_r the real images at resolution r;
- samples (grids, ``ganforge sample``, evaluation) come from the generator at the phase it last trained in,
  nearest-neighbour upsampled to the data's size, as the authors' code shows lower-resolution phases, so every
  consumer of samples sees one image size through the whole run.

Without ``train.phases`` (or after the last phase's fade-in) it is the plain step at the full resolution.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..objectives import Objective
from .adversarial import Adversarial
from .base import Batch, DataInfo, StepContext, register_algorithm


def downsample_reals(x: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Real images ``x`` (N, C, S, S) at the phase's ``resolution`` r (average pooling by S / r), during a fade-in
    (``alpha`` < 1, r > 4) blended with their r / 2 version upsampled back: the same mix the generator outputs."""
    size = x.shape[-1]
    if size % resolution:
        raise ConfigError(f"train.phases: image_size {resolution} does not divide the data's {size} px; use powers of "
                          "two up to data.image_size")
    if size != resolution:
        x = F.avg_pool2d(x, size // resolution)
    if alpha < 1.0 and resolution > 4:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


class _PhaseContext:
    """The trainer's step context with real batches at the phase's resolution; everything else passes through."""

    def __init__(self, ctx: StepContext, resolution: int, alpha: float):
        self._ctx, self._resolution, self._alpha = ctx, resolution, alpha

    def real_batch(self, stream: str = "main") -> Batch:
        batch = self._ctx.real_batch(stream)
        return dataclasses.replace(batch, x=downsample_reals(batch.x, self._resolution, self._alpha))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


@register_algorithm
class ProGAN(Adversarial):
    name = "progan"
    source = "Karras et al. 2018 (ProGAN), sections 3-4 and appendix A.1; seed 002 chapter 3 part 1 (spec 22)"

    # Adversarial's parameters, unchanged: wraps gives the builder (signature, type hints) that signature to check.
    @functools.wraps(Adversarial.__init__)
    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, **params: Any):
        super().__init__(nets, objective, data, **params)
        if data.kind != "image":
            raise ConfigError("algorithm 'progan' grows image networks; the data are vectors (use an image source such "
                              "as mnist5k, celeba:DIR or folder:DIR)")
        for key in ("G", "D"):
            if not hasattr(self.nets[key], "set_phase"):
                raise ConfigError(f"algorithm 'progan' needs networks that grow with the phase; networks.{key} "
                                  f"({type(self.nets[key]).__name__}) does not: use networks.{key}.arch=progan")
        self.full_size = int(data.sample_shape[-1])

    def check_phases(self, phases: Sequence[Any]) -> None:
        """Refuse, at build time, a ``train.phases`` resolution the networks do not grow through (called by the
        trainer's ``check_training_options``); a phase without image_size trains at the full size."""
        sizes = self.nets["G"].sizes
        for i, p in enumerate(phases):
            if p.image_size is not None and p.image_size not in sizes:
                raise ConfigError(f"train.phases[{i}].image_size={p.image_size}: these ProGAN networks grow through "
                                  f"{', '.join(map(str, sizes))} px (data.image_size={self.full_size}); use one of "
                                  "those or drop the phase")

    def phase_resolution(self) -> tuple[int, float]:
        """(resolution, alpha) of the phase last entered; the full size at alpha 1 without phases."""
        if self.phase is None:
            return self.full_size, 1.0
        return self.phase.image_size or self.full_size, float(self.phase.alpha)

    def enter_phase(self, phase: Any) -> None:
        super().enter_phase(phase)
        resolution, alpha = self.phase_resolution()
        for key in ("G", "D"):
            self.nets[key].set_phase(resolution, alpha)

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        phase = getattr(ctx, "phase", None)    # the step's phase is the word (the trainer has also entered it)
        if phase is not None and phase != self.phase:
            self.enter_phase(phase)
        resolution, alpha = self.phase_resolution()
        return super().train_step(_PhaseContext(ctx, resolution, alpha))

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        # Explicit resolution and alpha: ``nets`` may be the EMA copy, which enter_phase does not reach.
        resolution, alpha = self.phase_resolution()
        out = (nets or self.nets)["G"](inputs["z"], resolution=resolution, alpha=alpha)
        if resolution != self.full_size:
            out = F.interpolate(out, scale_factor=self.full_size // resolution, mode="nearest")
        return out
