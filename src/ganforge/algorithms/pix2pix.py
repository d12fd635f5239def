"""pix2pix: image-to-image translation with a conditional GAN and an L1 term.

Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks" (arXiv 1611.07004); seed 001's
pix2pix section (spec 25): G translates the source image x; D is given the source and a translation, concatenated
along channels, and judges whether the translation is a plausible one of x ("the discriminator is given the source
image and the target image"). With D's raw patch scores and the objective's losses (``objectives/``):

    L_D = d_weight * objective.d_loss(D(x, y), D(x, G(x)))         d_weight 0.5: "we divide the objective by 2 while
                                                                  optimizing D" (section 3.3)
    L_G = objective.g_loss(D(x, G(x))) + lambda_l1 * mean |y - G(x)|          lambda_l1 = 100 (section 4)

on images in [-1, 1] (so the L1 term is twice ``metrics.paired.l1``'s figure). The paper's objective is the
non-saturating one (section 3.3, "we train to maximize log D(x, G(x, z))"); the official code's other choice,
least squares, is ``objective.name=lsgan`` with ``objective.scaling=sum`` (then L_D = 0.5 (MSE(D(x,y), 1) +
MSE(D(x,G(x)), 0)) and L_G's adversarial term MSE(D(x,G(x)), 1), as there). There is no z: the noise is G's dropout
(``models/unet.py`` says how sampling treats it).

One step, as the official code's ``optimize_parameters``: G(x) once; one D update on the real pair and the detached
fake pair; then one G update through the updated, frozen D on the same G(x) (same dropout masks). The paper's random
jitter and mirroring (section 6.2: resize 256 -> 286, random crop back to 256, random horizontal flip) are
augmentations of the batch, applied to the image and its target alike: ``jitter_scale`` (286 / 256 = 1.1171875 in the
paper; 1 = none) and ``mirror``. Their random draws come from torch's generator, checkpointed with the run.

Objective needs (``algorithms/needs.py``): weight clipping of D after its update; a gradient penalty on D's input,
taken with respect to the translation with the source fixed (interpolates between y and G(x), each paired with x) and
added, at its own weight, to the halved D loss; a state update after the D step; D's scores on the real pair in G's
loss (relativistic objectives); a joint D loss. Refused: auto-encoder discriminators (ebgan, began), whose energy a
PatchGAN on pairs does not give.

The data's ``direction`` (``aligned:DIR?direction=BtoA``) decides what is translated into what; ``translate`` maps
images of the data's input kind and takes no direction.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import unknown_controls
from .needs import check_needs

SEED_LIMIT = 2 ** 62        # per-image dropout seeds are drawn below this


def run_generator(G: nn.Module, image: torch.Tensor, seeds: torch.Tensor | None) -> torch.Tensor:
    """G(image); when G draws dropout noise in eval mode (``noise_at_test``), image i's masks come from a generator
    seeded with ``seeds[i]`` (0 when there are none), so each output depends on its own image and seed only."""
    if G.training or not getattr(G, "noise_at_test", False):
        return G(image)
    values = seeds.tolist() if seeds is not None else [0] * len(image)
    return G(image, generators=[torch.Generator(device=image.device).manual_seed(int(s)) for s in values])


@register_algorithm
class Pix2Pix(Algorithm):
    name = "pix2pix"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = ("Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks (arXiv 1611.07004) "
              "sections 3-4 and 6; seed 001's pix2pix section")
    roles = {"G": "generator", "D": "discriminator"}
    optimizer_groups = {"G": ("G",), "D": ("D",)}
    ema_networks = ("G",)
    needs_keys = ("target",)
    samples_from_data = True
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.AFTER_D_STEP, Need.REAL_SCORES_IN_G,
                                 Need.JOINT_D_LOSS})
    refused_because = {Need.ENERGY_D: "its D is a PatchGAN scoring (source, translation) pairs, not an auto-encoder",
                       Need.PULLAWAY_TERM: "its D has no auto-encoder codes"}
    translate_controls = ()

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, lambda_l1: float = 100.0,
                 d_weight: float = 0.5, jitter_scale: float = 1.0, mirror: bool = False):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if not lambda_l1 >= 0:
            raise ConfigError(f"algorithm.lambda_l1 must be >= 0 (the paper: 100), got {lambda_l1}")
        if not d_weight > 0:
            raise ConfigError(f"algorithm.d_weight must be > 0 (the paper halves D's objective: 0.5), got {d_weight}")
        if not jitter_scale >= 1:
            raise ConfigError(f"algorithm.jitter_scale must be >= 1 (1: no jitter; the paper: 286/256 = 1.1171875), "
                              f"got {jitter_scale}")
        self.lambda_l1, self.d_weight = lambda_l1, d_weight
        self.jitter_scale, self.mirror = jitter_scale, mirror

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """G maps the image's channels to the target's; D sees both, concatenated (C_in + C_out channels)."""
        ctx = super().network_context(params, data)
        if data.kind == "image":
            makes = tuple(data.field_shapes.get("target", data.sample_shape))
            c_in = data.sample_shape[0]
            ctx["G"].update(channels=c_in, sample_shape=makes)
            ctx["D"].update(channels=c_in + makes[0])
        return ctx

    # ---------------------------------------------------------------------------------------- training
    def augment(self, image: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The paper's random jitter (bicubic resize by ``jitter_scale``, random crop back) and mirroring (a random
        horizontal flip with probability 1/2), the same for an image and its target; per sample."""
        if self.jitter_scale == 1 and not self.mirror:
            return image, target
        pair = torch.cat([image, target.to(image.dtype)], 1)
        n, _, h, w = pair.shape
        if self.jitter_scale > 1:
            big_h, big_w = round(h * self.jitter_scale), round(w * self.jitter_scale)
            lo, hi = self.value_range or (-1.0, 1.0)
            big = F.interpolate(pair, size=(big_h, big_w), mode="bicubic", align_corners=False).clamp(lo, hi)
            tops = torch.randint(0, big_h - h + 1, (n,)).tolist()
            lefts = torch.randint(0, big_w - w + 1, (n,)).tolist()
            pair = torch.stack([big[i, :, t:t + h, l:l + w] for i, (t, l) in enumerate(zip(tops, lefts))])
        if self.mirror:
            flip = (torch.rand(n) < 0.5).to(pair.device).view(n, 1, 1, 1)
            pair = torch.where(flip, pair.flip(-1), pair)
        return pair[:, :image.shape[1]], pair[:, image.shape[1]:]

    def discriminate(self, source: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        """D's raw patch scores of (source, translation), concatenated along channels as the official code does."""
        return self.nets["D"](torch.cat([source, translation.to(source.dtype)], 1))

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        batch = ctx.real_batch()
        x, y = self.augment(batch["image"], batch["target"])
        with ctx.autocast():
            fake = G(x)
        logs: dict[str, torch.Tensor | float] = {}

        # D: real pairs (x, y) against fake pairs (x, G(x)), G's graph cut.
        with ctx.autocast():
            fake_out = self.discriminate(x, fake.detach())
            real_out = self.discriminate(x, y)
        d_loss = self.d_weight * obj.d_loss(real_out, fake_out)
        d_total = self.needs.penalty(d_loss, lambda image: self.discriminate(x, image), y, fake.detach(), logs)
        ctx.update("D", d_total)
        self.needs.clip(D)
        self.needs.after_d_step(real_out, fake_out, logs)

        # G: fool the updated D on the same translation, and stay near the target in L1.
        with frozen(D):
            with ctx.autocast():
                fake_out_g = self.discriminate(x, fake)
                real_out_g = self.needs.real_scores(lambda: self.discriminate(x, y))
            g_adv = obj.g_loss(fake_out_g, real_out_g)
            g_l1 = (fake.float() - y.float()).abs().mean()
            g_loss = g_adv + self.lambda_l1 * g_l1
            ctx.update("G", g_loss)
        logs.update({"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "g_adv": g_adv.detach(),
                     "g_l1": g_l1.detach(), "d_real": real_out.detach().float().mean(),
                     "d_fake": fake_out.detach().float().mean()})
        return logs

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device, batch: Any = None,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """The first ``n`` images of ``batch`` (the held-out batch for grids) with their targets, and one dropout
        seed per image drawn from ``generator`` (the noise of ``inference: paper``)."""
        unknown_controls(controls, (), f"'{self.name}' (it translates images)")
        if batch is None:
            raise ConfigError(f"'{self.name}' translates images rather than sampling from noise; translate images "
                              "with ganforge translate (Model.translate / algorithm.translate)")
        image = batch["image"][:n].to(device)
        inputs = {"image": image,
                  "noise_seed": torch.randint(0, SEED_LIMIT, (len(image),), generator=generator).to(device)}
        if "target" in batch:
            inputs["target"] = batch["target"][:n].to(device)
        return inputs

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return run_generator((nets or self.nets)["G"], inputs["image"], inputs.get("noise_seed"))

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        panels = {"input": inputs["image"], "output": self.generate(inputs, nets)}
        if "target" in inputs:
            panels["target"] = inputs["target"]
        return panels

    # ---------------------------------------------------------------------------------------- translation
    def translation_input_shape(self, **controls: Any) -> tuple[int, ...]:
        unknown_controls(controls, self.translate_controls, f"'{self.name}' (the data fixed its direction)")
        return tuple(self.data.sample_shape)

    @torch.no_grad()
    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None, seed: int = 0,
                  **controls: Any) -> torch.Tensor:
        """G's translations of ``inputs`` in inference mode (``models/unet.py``: under ``inference: paper`` the
        dropout noise of ``seed``, the same for every image, so an image's output depends on it and the seed only)."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}' (the data fixed its direction)")
        G = (nets or self.nets)["G"]
        seeds = torch.full((len(inputs),), int(seed), dtype=torch.int64)
        with eval_mode(G):
            return run_generator(G, inputs, seeds)
