"""The adversarial step plus StyleGAN2's path-length regularisation of the generator (Karras et al. 2020, section
3.2; not in the seed, whose StyleGAN is v1; ``algorithm.name: stylegan``, an option of the StyleGAN recipes).

Everything else StyleGAN needs is the generator's own (``models/stylegan.py``: style mixing, w_avg, noise) or already
the library's (R1 and its lazy form: ``regularize.r1``; EMA of G: ``train.ema``), so without ``pl_weight`` this is
exactly the ``adversarial`` algorithm. The penalty, every ``pl_every`` G updates (lazy, StyleGAN2's 4):

    a <- a + pl_decay (mean_i ||J_w^T y||_2 - a),    L_pl = pl_weight E_w,y (||J_w^T y||_2 - a)^2

with J_w the Jacobian of the images g(w) with respect to the per-layer styles w (N, L, w_dim), y ~ N(0, I) / sqrt(H
W) an image of random directions, ||.|| summed over w_dim and averaged over the layers, a the running mean of the
lengths (the authors' ``pl_mean``, decay 0.01, the algorithm's tensor state in training.safetensors), on a batch of
``batch / pl_batch_shrink`` fresh latents (2), weight 2. It is backpropagated with gain ``pl_every`` into that step's
G update (one optimizer step, as ganforge's lazy R1; StyleGAN2 takes a separate one).
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..objectives import Objective
from .adversarial import Adversarial
from .base import DataInfo, StepContext, register_algorithm


class PathLengthMean(nn.Module):
    """The running mean a of the path lengths (a buffer: checkpointed bit-exactly as the algorithm's state)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pl_mean", torch.zeros(()))


def path_lengths(G: nn.Module, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """||J_w^T y|| per sample (N,) for latents z, with the graph kept (create_graph) so the penalty trains G."""
    ws = G.styles(z)
    images = G.synthesize(ws)
    h, w = images.shape[-2:]
    y = torch.randn(images.shape, device=images.device, dtype=images.dtype, generator=generator) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.float().pow(2).sum(dim=2).mean(dim=1).sqrt()


class _PenaltyBeforeGStep:
    """A StepContext that adds the path-length penalty (gain ``gain``) to the G update just before its optimizer step,
    whatever shape the adversarial generator step has (one update, or micro-batches)."""

    def __init__(self, ctx: StepContext, penalty: Any, gain: float) -> None:
        self._ctx, self._penalty, self._gain = ctx, penalty, gain

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def update(self, group: str, loss: torch.Tensor) -> None:
        self._ctx.backward(group, loss)
        self.optimizer_step(group)

    def optimizer_step(self, group: str) -> None:
        if group == "G":
            self._ctx.backward("G", self._penalty(), gain=self._gain)
        self._ctx.optimizer_step(group)


@register_algorithm
class StyleGANPathLength(Adversarial):
    name = "stylegan"
    source = "Karras et al. 2020 (StyleGAN2), section 3.2 (path-length regularisation); the adversarial step"

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, pl_weight: float = 2.0,
                 pl_every: int = 4, pl_decay: float = 0.01, pl_batch_shrink: int = 2, **adversarial: Any):
        super().__init__(nets, objective, data, **adversarial)
        if not pl_weight >= 0 or pl_every < 1 or not 0 < pl_decay <= 1 or pl_batch_shrink < 1:
            raise ConfigError(f"algorithm: pl_weight must be >= 0 (StyleGAN2: 2), pl_every >= 1 (4), pl_decay in "
                              f"(0, 1] (0.01), pl_batch_shrink >= 1 (2); got {pl_weight}, {pl_every}, {pl_decay}, "
                              f"{pl_batch_shrink}")
        G = self.nets["G"]
        if pl_weight > 0 and not (hasattr(G, "styles") and hasattr(G, "synthesize")):
            raise ConfigError(f"algorithm.pl_weight: path-length regularisation needs a generator with a W space "
                              f"(networks.G.arch: stylegan), got {type(G).__name__}; set pl_weight=0 or change G")
        self.pl_weight, self.pl_every = pl_weight, pl_every
        self.pl_decay, self.pl_batch_shrink = pl_decay, pl_batch_shrink
        self.state_modules["path_length"] = PathLengthMean()

    @property
    def pl_mean(self) -> torch.Tensor:
        return self.state_modules["path_length"].pl_mean

    def path_length_penalty(self, batch: int, device: torch.device, logs: dict[str, torch.Tensor]) -> torch.Tensor:
        """pl_weight E (||J^T y|| - a)^2 on batch / pl_batch_shrink fresh latents, a updated first (the authors')."""
        z = self.noise(max(1, batch // self.pl_batch_shrink), device)
        lengths = path_lengths(self.nets["G"], z)
        with torch.no_grad():
            self.pl_mean.lerp_(lengths.mean().detach().to(self.pl_mean.dtype), self.pl_decay)
        penalty = self.pl_weight * (lengths - self.pl_mean).pow(2).mean()
        logs["pl_length"], logs["pl"] = lengths.mean().detach(), penalty.detach()
        return penalty

    def generator_step(self, ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.pl_weight or ctx.step % self.pl_every:
            return super().generator_step(ctx, real)
        pl_logs: dict[str, torch.Tensor] = {}
        wrapped = _PenaltyBeforeGStep(ctx, lambda: self.path_length_penalty(len(real), real.device, pl_logs),
                                      float(self.pl_every))
        logs = super().generator_step(wrapped, real)     # type: ignore[arg-type]
        logs.update(pl_logs)
        return logs


def _signature() -> inspect.Signature:
    """The adversarial algorithm's parameters plus the path-length ones, as the config reads them (it checks recipe
    keys against the constructor's signature; ``**adversarial`` alone would hide them)."""
    base = list(inspect.signature(Adversarial.__init__).parameters.values())
    own = [p for name, p in inspect.signature(StyleGANPathLength.__init__).parameters.items()
           if name.startswith("pl_")]
    return inspect.Signature(base + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own])


StyleGANPathLength.__init__.__signature__ = _signature()     # type: ignore[attr-defined]
