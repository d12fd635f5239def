"""The unconditional adversarial step: n_critic discriminator updates, then one generator update.

Goodfellow et al. 2014, algorithm 1; seed 000 ``gan.train`` (spec 0.8) and WGAN algorithm 5.1.1 (n_critic);
seed 001's training function. How the discriminator sees one real and one fake batch is a choice the
sources make differently, so it is a parameter (``d_update``):

- ``sum``: one update on ``L_D = loss(real) + loss(fake)`` from two forward passes (the usual PyTorch form);
- ``combined``: one update on the concatenated 2B batch, loss averaged over it (seed 000 ``gan.train``:
  ``discriminator.train_on_batch(concat(real, fake), [1]*B + [0]*B)``), i.e. half the ``sum`` loss, and BN in D
  (if any) sees both halves together;
- ``separate``: two updates, first on the real batch, then on the fake batch (seed 000 WGAN listing 5.1.2,
  "this tweak prevents vanishing gradients"; seed 001 ``train()``).

``fake_bn='eval'`` makes the discriminator-step fakes with G's BatchNorm in inference mode, as Keras'
``generator.predict()`` does in the book code; ``'train'`` uses batch statistics (the common PyTorch port).
"""
from __future__ import annotations

import contextlib
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..objectives import Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import unknown_controls
from .latent import LatentDist, draw_latent


@register_algorithm
class Adversarial(Algorithm):
    name = "adversarial"
    source = "Goodfellow et al. 2014 (alg. 1); seed 000 gan.train and algorithm 5.1.1; seed 001 train()"

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, n_critic: int = 1,
                 d_update: Literal["sum", "combined", "separate"] = "sum", fake_bn: Literal["train", "eval"] = "train"):
        super().__init__(nets, objective, data)
        if latent_dim < 1 or n_critic < 1 or latent_std <= 0:
            raise ConfigError(f"algorithm: latent_dim and n_critic must be >= 1 and latent_std > 0 "
                              f"(got {latent_dim}, {n_critic}, {latent_std})")
        if d_update == "separate" and not objective.separable:
            raise ConfigError(f"algorithm.d_update=separate needs a loss that splits into real and fake terms; "
                              f"'{objective.name}' does not: use d_update=sum")
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        self.n_critic, self.d_update, self.fake_bn = n_critic, d_update, fake_bn

    # ---------------------------------------------------------------------------------------- training
    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    def discriminator_step(self, ctx: StepContext) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        real = ctx.real_batch().x
        z = self.noise(len(real), real.device)
        bn = eval_mode(G) if self.fake_bn == "eval" else contextlib.nullcontext()
        with torch.no_grad(), bn, ctx.autocast():
            fake = G(z)
        if self.d_update == "combined":
            with ctx.autocast():
                out = D(torch.cat([real, fake.to(real.dtype)]))
            real_out, fake_out = out[:len(real)], out[len(real):]
            loss = 0.5 * obj.d_loss(real_out, fake_out)
            ctx.update("D", loss)
        elif self.d_update == "separate":
            with ctx.autocast():
                real_out = D(real)
            loss_real = obj.d_real_loss(real_out)
            ctx.update("D", loss_real)
            with ctx.autocast():
                fake_out = D(fake)
            loss_fake = obj.d_fake_loss(fake_out)
            ctx.update("D", loss_fake)
            loss = 0.5 * (loss_real + loss_fake)   # what the book's loop logs
        else:
            with ctx.autocast():
                real_out, fake_out = D(real), D(fake)
            loss = obj.d_loss(real_out, fake_out)
            ctx.update("D", loss)
        logs = {"d_loss": loss.detach(), "d_real": real_out.detach().float().mean(),
                "d_fake": fake_out.detach().float().mean()}
        logs.update(obj.after_d_step(real_out.detach(), fake_out.detach()))
        return logs, real

    def generator_step(self, ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        z = self.noise(len(real), real.device)
        with frozen(D):
            with ctx.autocast():
                fake_out = D(G(z))
                real_out = D(real) if obj.g_needs_real else None
            loss = obj.g_loss(fake_out, real_out)
            ctx.update("G", loss)
        return {"g_loss": loss.detach()}

    def train_step(self, ctx: StepContext) -> dict[str, Any]:
        sums: dict[str, torch.Tensor] = {}
        for _ in range(self.n_critic):
            d_logs, real = self.discriminator_step(ctx)
            for k, v in d_logs.items():
                sums[k] = sums.get(k, 0) + torch.as_tensor(v)
        logs: dict[str, Any] = {k: v / self.n_critic for k, v in sums.items()}
        logs.update(self.generator_step(ctx, real))
        return logs

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        unknown_controls(controls, (), f"'{self.name}' (an unconditional GAN)")
        return {"z": self.noise(n, device, generator)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["z"])
