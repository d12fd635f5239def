"""GAN-INT-CLS: text-to-image synthesis with a matching-aware discriminator and interpolated text embeddings.

Reed et al. 2016, "Generative Adversarial Text to Image Synthesis" (ICML), algorithm 1 and sections 4.1-4.2; seed
001's text-to-photo synthesis and seed 002 part 3 section 1.3 (the third, mismatched term). Per step, with h = phi(t)
the frozen text encoder's embedding of the real batch's captions (``text_conditioning.py``):

- D: scores of (real image, right text) s_r, (real image, wrong text) s_w (each caption swapped for another caption of
  the batch) and (fake image G(z, h), right text) s_f, each its own forward pass as Reed's code does (D has
  BatchNorm); ``cls: true`` minimises ``matching_aware_d_loss`` = d_real(s_r) + (d_fake(s_w) + d_fake(s_f)) / 2
  (GAN-CLS), ``cls: false`` the plain conditional d_real(s_r) + d_fake(s_f) (GAN, GAN-INT).
- G: g_loss(D(G(z, h), h)) and, with ``int_weight`` > 0 (GAN-INT), ``int_weight`` times the same loss on interpolated
  embeddings ``beta h + (1 - beta) h[perm]`` (beta = 0.5, the paper's "fixing beta = 0.5 works well"), a second draw
  of z: "the discriminator has not seen them, so G learns to fill the gaps on the text manifold".

Sampling: ``texts`` (``ganforge sample --text / --text-file``) one caption per row, ``interpolate_text=(A, B)`` (each
row walks from A to B across its columns with z fixed along the row, the paper's figure 6), ``share_noise`` (column j
the same z in every row: "same style, other caption"); neither text control: captions from the run's bank.
Objectives: any whose D loss splits into real and fake terms (nonsaturating, minimax, lsgan, hinge, wgan with its
clipping, wgan-gp with its penalty between real and fake images under the right text).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import row_constant, row_shared, unknown_controls
from .latent import draw_latent
from .needs import check_needs
from .text_conditioning import TEXT_ENCODER_ROLE, TextConditioning, matching_aware_d_loss


@register_algorithm
class GanIntCls(TextConditioning, Algorithm):
    name = "gan-int-cls"
    source = "Reed et al. 2016, Generative Adversarial Text to Image Synthesis (algorithm 1, GAN-CLS; section 4.2 GAN-INT)"
    roles = {"G": "generator", "D": "discriminator", "T": TEXT_ENCODER_ROLE}
    optimizer_groups = {"G": ("G",), "D": ("D",)}
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.AFTER_D_STEP, Need.REAL_SCORES_IN_G})
    refused_because = {Need.JOINT_D_LOSS: "its matching-aware D loss weighs real-right, real-wrong and fake-right "
                                          "pairs separately",
                       Need.ENERGY_D: "its D scores (image, text) pairs; there is no text-taking auto-encoder D",
                       Need.PULLAWAY_TERM: "its D has no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 text_dim: int = 128, cls: bool = True, int_weight: float = 1.0, beta: float = 0.5,
                 text_encoder_epochs: int = 8, text_encoder_seed: int = 0, text_encoder_batch_size: int = 48):
        super().__init__(nets, objective, data)
        if latent_dim < 1 or text_dim < 1:
            raise ConfigError(f"algorithm: latent_dim and text_dim must be >= 1 (got {latent_dim}, {text_dim})")
        if not int_weight >= 0 or not 0 <= beta <= 1:
            raise ConfigError(f"algorithm.int_weight must be >= 0 (0: no GAN-INT) and beta in [0, 1] (the paper: 0.5), "
                              f"got {int_weight} and {beta}")
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        self.weight_clip = self.needs.clip_value
        self.latent_dim, self.text_dim, self.cls, self.int_weight, self.beta = latent_dim, text_dim, cls, int_weight, beta
        self.init_text_conditioning(text_dim, text_encoder_epochs, text_encoder_seed, text_encoder_batch_size)
        for key in ("G", "D"):
            if not getattr(self.nets[key], "takes_text", False):
                raise ConfigError(f"algorithm '{self.name}' gives phi(t) to {key}, but networks.{key} "
                                  f"({type(self.nets[key]).__name__}) takes no text; use networks.{key}.arch=gan-int-cls")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        return cls.text_network_context(super().network_context(params, data), params)

    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        """Pretrain (or read from the cache) the text encoder on the run's data and load it into networks.T."""
        facts = self.setup_text_encoder(dataset)
        self.to(device)
        return facts

    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, "normal", 1.0, device, generator)

    # ---------------------------------------------------------------------------------------- training
    def discriminator_step(self, ctx: StepContext) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        batch = ctx.real_batch()
        real, tokens = batch.x, batch["text"]
        n = len(real)
        h = self.embed(tokens)
        with torch.no_grad(), ctx.autocast():
            fake = G(self.noise(n, real.device), h).to(real.dtype)
        logs: dict[str, torch.Tensor] = {}
        with ctx.autocast():
            s_real = D(real, h)
            s_fake = D(fake, h)
            s_wrong = D(real, self.embed(self.wrong_text(tokens))) if self.cls else None
        if s_wrong is not None:
            loss = matching_aware_d_loss(obj, s_real, s_wrong, s_fake)
            logs["d_mismatch"] = s_wrong.detach().float().mean()
        else:
            loss = obj.d_loss(s_real, s_fake)
        ctx.update("D", self.needs.penalty(loss, D, real, fake, logs, cond=(h, h)))
        logs.update(d_loss=loss.detach(), d_real=s_real.detach().float().mean(), d_fake=s_fake.detach().float().mean())
        self.needs.after_d_step(s_real, s_fake, logs)
        self.needs.clip(D)
        return logs, real, h

    def generator_step(self, ctx: StepContext, real: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        n = len(real)
        logs: dict[str, torch.Tensor] = {}
        with frozen(D):
            with ctx.autocast():
                out = D(G(self.noise(n, real.device), h), h)
                real_out = self.needs.real_scores(lambda: D(real, h))
            loss = obj.g_loss(out, real_out)
            total = loss
            if self.int_weight > 0:
                h_int = self.interpolated_embeddings(h, self.beta)
                with ctx.autocast():
                    out_int = D(G(self.noise(n, real.device), h_int), h_int)
                    real_int = self.needs.real_scores(lambda: D(real, h_int))
                int_loss = obj.g_loss(out_int, real_int)
                total = loss + self.int_weight * int_loss
                logs["g_int"] = int_loss.detach()
            ctx.update("G", total)
        return {"g_loss": loss.detach(), **logs}

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        d_logs, real, h = self.discriminator_step(ctx)
        return {**d_logs, **self.generator_step(ctx, real, h)}

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """``texts``: a caption per row; ``interpolate_text=(A, B)``: rows walk from A to B, z fixed along each row;
        ``share_noise``: column j the same z in every row; neither text control: captions of the run's bank."""
        unknown_controls(controls, ("texts", "interpolate_text", "share_noise"),
                         f"'{self.name}' (a text-to-image GAN)")
        if controls.get("texts") and controls.get("interpolate_text"):
            raise ConfigError("--text and --interpolate-text both choose the captions; give one of them")
        emb = self.sample_embeddings(n, generator, controls)
        draw = lambda m: self.noise(m, torch.device("cpu"), generator)   # noqa: E731
        z = row_constant(n, controls, draw) if controls.get("interpolate_text") else row_shared(n, controls, draw)
        return {"z": z.to(device), "text": emb.to(device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["z"], inputs["text"])
