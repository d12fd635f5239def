"""StackGAN (two stages trained one after the other) and StackGAN++ (a tree of generators trained jointly).

Sources: seed 002 chapter 3 part 1 and seed 001 (spec 20; errata 25: stage II has its own conditioning augmentation);
Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative Adversarial Networks"
(ICCV), section 3 (eq. 3-6) and 4; Zhang et al. 2018, "StackGAN++: Realistic Image Synthesis with Stacked Generative
Adversarial Networks" (TPAMI), section 4 (eq. 5-7 as recalled). Networks: ``models/stackgan.py``; conditioning
augmentation (CA) and its KL term: ``nn/conditioning_augmentation.py``; the text side (the frozen text encoder, the
mismatched text, the matching-aware D loss) is ``algorithms/text_conditioning.py``'s, shared with GAN-INT-CLS.

Convention (spec 20.5): D minimises the objective's D loss (= maximises the papers' L_D), G minimises its G loss (the
papers' saturating log(1 - D) is replaced by the non-saturating form, as their code does: ``objective:
nonsaturating``; any objective whose D loss splits into real and fake terms works).

``stackgan2`` (StackGAN++), one step, the authors' order (one G forward; D updates on its detached images, then G
through the updated, frozen D on the same images):
  per scale i (s_i the tree's image, x_i the real batch area-downsampled to S_i, phi / phi' the right / wrong text):
    L_D_i = d(D_i(x_i), D_i(s_i))                                         the unconditional term
          + matching_aware_d_loss(D_i(x_i, phi), D_i(x_i, phi'), D_i(s_i, phi))    the conditional one (with text)
    L_G_i = g(D_i(s_i)) unconditional; (g(D_i(s_i)) + g(D_i(s_i, phi))) / 2 with text (the paper's 1/2 each;
            ``uncond_weight`` scales the unconditional term, the code's COEFF.UNCOND_LOSS = 1)
  L_D = sum_i L_D_i (one optimizer over every D_i: the same update as one per D, their parameters are disjoint);
  L_G = sum_i L_G_i + kl_weight * KL(CA) + sum_{i>=1} L_C_i with the colour-consistency term
    L_C_i = mean_batch( lambda_1 ||mu(s_i) - mu(s_{i-1})||^2 + lambda_2 ||Sigma(s_i) - Sigma(s_{i-1})||_F^2 ),
    mu and Sigma the mean and covariance of one image's pixel colours (``colour_consistency``; the paper: lambda_1 = 1,
    lambda_2 = 5, recalled; its code takes MSE means over the entries and a global factor COLOR_LOSS, e.g. 50).
``stackgan`` (StackGAN v1): the stage is the ``train.phases`` phase's image_size: the stage-I size (image_size /
  ``stage2_scale``) trains stage I, the full size stage II (spec 20.5 "stage I is trained first, then stage II with
  stage I fixed"), so one run trains both and resumes anywhere; without phases a run trains stage II on the stage I
  it has (e.g. ``--init-from`` a stage-I run: the paper's two runs).
  stage I:  L_D0 = matching_aware(D_0(x_0, phi), D_0(x_0, phi'), D_0(G_0(z, c_0), phi)),
            L_G0 = g(D_0(G_0(z, c_0), phi)) + kl_weight * KL(c_0)                       (eq. 3-4)
  stage II: s_0 = G_0(z, c_0) with stage I frozen (no gradient, BN in inference mode: its weights and statistics
            stay those stage I ended with); L_D = matching_aware(D_1(x, phi), D_1(x, phi'), D_1(G(s_0, c), phi)),
            L_G = g(D_1(G(s_0, c), phi)) + kl_weight * KL(c), c stage II's own CA sample (eq. 5-6, errata 25).

Logged: ``d_i`` / ``g_i`` each scale's (stage's) losses, ``d_real_i`` / ``d_fake_i`` its unconditional scores (StackGAN:
``d_real`` / ``d_wrong`` / ``d_fake`` the conditional ones, ``stage``), ``kl``, ``colour``, ``g_adv`` (G's adversarial
terms alone). ``stackgan2-unconditional`` is StackGAN++ without text (no CA, no text encoder network).

Sampling: StackGAN++'s final branch; StackGAN's stage II (during stage I, its stage-I image enlarged to the full size,
nearest, as ProGAN shows lower phases). The progress grid shows every scale / stage enlarged, a column each.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..models.stackgan import scale_sizes
from ..nn.conditioning_augmentation import kl_to_standard_normal
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import row_shared, unknown_controls
from .latent import draw_latent
from .needs import check_needs
from .text_conditioning import TEXT_ENCODER_ROLE, TextConditioning, matching_aware_d_loss

V1 = ("Zhang et al. 2017 (StackGAN) sections 3-4; seed 002 chapter 3 part 1 and seed 001 (spec 20.1-20.5, errata 25)")
V2 = "Zhang et al. 2018 (StackGAN++) section 4; seed 002 chapter 3 part 1 (spec 20.6)"
REFUSED = {Need.ENERGY_D: "its discriminators score images (and texts), they are not auto-encoders",
           Need.PULLAWAY_TERM: "its discriminators have no auto-encoder codes",
           Need.JOINT_D_LOSS: "its discriminator losses add separate real, fake (and mismatched) terms",
           Need.GRADIENT_PENALTY: "no penalty on interpolated (image, text) pairs is built for its discriminators",
           Need.WEIGHT_CLIP: "its discriminators are not clipped critics",
           Need.AFTER_D_STEP: "its per-scale discriminators would all update the one objective state",
           Need.REAL_SCORES_IN_G: "its generator loss scores only the generated images"}


# ---------------------------------------------------------------------------------------------- the terms
def colour_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the mean colour (N x C) and the covariance of its pixels' colours (N x C x C, divided by the
    number of pixels as the authors' ``compute_mean_covariance``)."""
    n, c = images.shape[:2]
    pixels = images.float().reshape(n, c, -1)
    mean = pixels.mean(2)
    centred = pixels - mean[:, :, None]
    return mean, centred @ centred.transpose(1, 2) / pixels.shape[2]


def colour_consistency(fine: torch.Tensor, coarse: torch.Tensor, mean_weight: float = 1.0,
                       cov_weight: float = 5.0) -> torch.Tensor:
    """StackGAN++'s L_C between two scales of the same samples: mean over the batch of lambda_1 ||mu_fine -
    mu_coarse||^2 + lambda_2 ||Sigma_fine - Sigma_coarse||_F^2."""
    mu_f, cov_f = colour_statistics(fine)
    mu_c, cov_c = colour_statistics(coarse)
    return (mean_weight * (mu_f - mu_c).pow(2).sum(1) + cov_weight * (cov_f - cov_c).pow(2).sum((1, 2))).mean()


def real_scales(x: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """The real batch at every scale, area-downsampled (the authors' loader resizes each image per scale)."""
    return [x if s == x.shape[-1] else F.adaptive_avg_pool2d(x, s) for s in sizes]


def enlarge(x: torch.Tensor, size: int) -> torch.Tensor:
    """An image enlarged (nearest) to ``size`` px: how a coarser scale is shown beside the final images."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="nearest")


def square_images(data: DataInfo, name: str) -> tuple[int, ...]:
    shape = tuple(data.sample_shape)
    if data.kind != "image" or len(shape) != 3 or shape[1] != shape[2]:
        raise DataError(f"algorithm '{name}' generates square images, but the data holds {data.kind}s of shape "
                        f"{list(shape)}; use square image data (e.g. emoji, digit-captions, folder:DIR with "
                        "data.image_size)")
    return shape


class _StackedFamily(TextConditioning, Algorithm):
    """What StackGAN and StackGAN++ share: the noise, the text (``text_conditioning.py``, when the run is
    conditional), each scale's losses."""

    supported_needs = frozenset()
    refused_because = REFUSED
    applies_sample_penalties = False
    conditional: ClassVar[bool] = True

    def _common(self, objective: Objective, latent_dim: int, kl_weight: float, text_dim: int,
                text_encoder_epochs: int, text_encoder_seed: int) -> None:
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if latent_dim < 1:
            raise ConfigError(f"algorithm.latent_dim must be >= 1 (the papers: 100), got {latent_dim}")
        if not kl_weight >= 0:
            raise ConfigError(f"algorithm.kl_weight must be >= 0 (the paper: lambda = 1), got {kl_weight}")
        self.latent_dim, self.kl_weight = latent_dim, kl_weight
        if self.conditional:
            self.init_text_conditioning(text_dim, text_encoder_epochs, text_encoder_seed)

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        ctx = super().network_context(params, data)
        return cls.text_network_context(ctx, params) if cls.conditional else ctx

    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        """A fresh conditional run loads the text encoder pretrained on its data (``text_conditioning.py``)."""
        if not self.conditional:
            return {}
        facts = self.setup_text_encoder(dataset)
        self.to(device)
        return facts

    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, "normal", 1.0, device, generator)

    # -- each scale's losses (unit-tested against direct computation) ---------------------------------------------------
    def scale_d_loss(self, real_u: torch.Tensor | None, fake_u: torch.Tensor | None,
                     real_c: torch.Tensor | None = None, wrong_c: torch.Tensor | None = None,
                     fake_c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One scale's D loss from its scores: the unconditional term d(real, fake) where there are unconditional
        scores, plus the matching-aware term (``text_conditioning.matching_aware_d_loss``) where there are
        conditional ones."""
        out: dict[str, torch.Tensor] = {}
        if real_u is not None:
            out["uncond"] = self.objective.d_loss(real_u, fake_u)
        if real_c is not None:
            out["cond"] = matching_aware_d_loss(self.objective, real_c, wrong_c, fake_c)
        out["total"] = torch.stack(list(out.values())).sum()
        return out

    def scale_g_loss(self, fake_u: torch.Tensor | None, fake_c: torch.Tensor | None,
                     uncond_weight: float = 1.0) -> torch.Tensor:
        """One scale's G loss: g(unconditional score) alone, g(conditional score) alone, or with both StackGAN++'s
        (uncond_weight * g(D(s)) + g(D(s, phi))) / 2."""
        if fake_c is None:
            return self.objective.g_loss(fake_u)
        if fake_u is None:
            return self.objective.g_loss(fake_c)
        return 0.5 * (uncond_weight * self.objective.g_loss(fake_u) + self.objective.g_loss(fake_c))

    # -- the text side (algorithms/text_conditioning.py) -------------------------------------------------------------
    def batch_text(self, batch: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(right, wrong) text embeddings of a real batch (the wrong one: another caption of the batch, GAN-CLS);
        (None, None) for an unconditional run."""
        if not self.conditional:
            return None, None
        tokens = batch["text"]
        return self.embed(tokens), self.embed(self.wrong_text(tokens))

    def text_inputs(self, n: int, generator: torch.Generator, device: torch.device, controls: dict[str, Any],
                    eps_keys: Sequence[str]) -> dict[str, torch.Tensor]:
        """z, phi(t) (``texts``: a caption per row, ``interpolate_text``, else the run's captions) and the CA draws."""
        unknown_controls(controls, ("texts", "interpolate_text", "share_noise"), f"'{self.name}' (text-conditional)")
        z = row_shared(n, controls, lambda m: self.noise(m, torch.device("cpu"), generator))
        emb = self.sample_embeddings(n, generator, controls)
        out = {"z": z.to(device), "text_emb": emb.to(device)}
        for key in eps_keys:   # the CA draws are inputs too: a seed gives the same samples every time
            out[key] = torch.randn(n, self.nets["G"].ca.cond_dim, generator=generator).to(device)
        return out


@register_algorithm
class StackGANPlusPlus(_StackedFamily):
    name = "stackgan2"
    source = V2
    roles = {"G": "tree-generator", "D": "multiscale-discriminator", "T": TEXT_ENCODER_ROLE}
    optimizer_groups = {"G": ("G",), "D": ("D",)}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 branches: int = 3, kl_weight: float = 1.0, uncond_weight: float = 1.0,
                 colour_mean_weight: float = 1.0, colour_cov_weight: float = 5.0, text_dim: int = 128,
                 text_encoder_epochs: int = 8, text_encoder_seed: int = 0):
        """``branches``: scales of the tree (the paper: 3, 64/128/256); ``colour_mean_weight`` /
        ``colour_cov_weight``: lambda_1 / lambda_2 of the colour-consistency term (0 / 0: off); ``text_dim``: the
        size of phi(t) (the text encoder's ``embed_dim``; the paper's char-CNN-RNN: 1024)."""
        super().__init__(nets, objective, data)
        self._common(objective, latent_dim, kl_weight, text_dim, text_encoder_epochs, text_encoder_seed)
        shape = square_images(data, self.name)
        self.sizes = scale_sizes(shape[-1], branches)
        for key, value in (("uncond_weight", uncond_weight), ("colour_mean_weight", colour_mean_weight),
                           ("colour_cov_weight", colour_cov_weight)):
            if not value >= 0:
                raise ConfigError(f"algorithm.{key} must be >= 0, got {value}")
        self.uncond_weight = uncond_weight
        self.colour_weights = (colour_mean_weight, colour_cov_weight)
        G, D = self.nets["G"], self.nets["D"]
        if tuple(G.sizes) != self.sizes or tuple(D.sizes) != self.sizes:
            raise ConfigError(f"networks.G / D are built for scales {list(G.sizes)} / {list(D.sizes)} px but "
                              f"algorithm.branches={branches} on {shape[-1]} px images gives {list(self.sizes)}; "
                              "remove networks.*.branches / sizes (the algorithm sets them)")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """G gets the number of branches, D the scales (and both the size of phi(t), 0 without text)."""
        ctx = super().network_context(params, data)
        branches = params.get("branches", cls.default_param("branches"))
        size = int(data.sample_shape[-1]) if data.kind == "image" else 0
        sizes = scale_sizes(size, branches) if size else ()
        ctx["G"].update(branches=branches)
        ctx["D"].update(sizes=sizes, unconditional=True)
        if not cls.conditional:
            ctx["G"]["text_dim"] = ctx["D"]["text_dim"] = 0
        return ctx


    # -- training -------------------------------------------------------------------------------------------------------
    def colour_loss(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        total = images[0].new_zeros((), dtype=torch.float32)
        for fine, coarse in zip(images[1:], images):
            total = total + colour_consistency(fine, coarse, *self.colour_weights)
        return total

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, D = self.nets["G"], self.nets["D"]
        batch = ctx.real_batch()
        x = batch.x
        reals = real_scales(x, self.sizes)
        right, wrong = self.batch_text(batch)
        z = self.noise(len(x), x.device)
        with ctx.autocast():
            fakes, mu, logvar = G.forward_all(z, right)
        logs: dict[str, torch.Tensor] = {}

        # D: every scale on its reals and on the tree's images, detached.
        d_total = x.new_zeros((), dtype=torch.float32)
        for i, (real, fake) in enumerate(zip(reals, fakes)):
            scale = D.scales[i]
            with ctx.autocast():
                f_real, f_fake = scale.features(real), scale.features(fake.detach().to(real.dtype))
                real_u, fake_u = scale.unconditional(f_real), scale.unconditional(f_fake)
                real_c = wrong_c = fake_c = None
                if self.conditional:
                    real_c, wrong_c = scale.conditional(f_real, right), scale.conditional(f_real, wrong)
                    fake_c = scale.conditional(f_fake, right)
            d = self.scale_d_loss(real_u, fake_u, real_c, wrong_c, fake_c)
            d_total = d_total + d["total"]
            logs[f"d_{i}"] = d["total"].detach()
            logs[f"d_real_{i}"] = real_u.detach().float().mean()
            logs[f"d_fake_{i}"] = fake_u.detach().float().mean()
        ctx.update("D", d_total)

        # G: the same images through the updated, frozen D.
        g_total = x.new_zeros((), dtype=torch.float32)
        with frozen(D):
            for i, fake in enumerate(fakes):
                scale = D.scales[i]
                with ctx.autocast():
                    f = scale.features(fake)
                    fake_u = scale.unconditional(f)
                    fake_c = scale.conditional(f, right) if self.conditional else None
                g = self.scale_g_loss(fake_u, fake_c, self.uncond_weight)
                g_total = g_total + g
                logs[f"g_{i}"] = g.detach()
        g_adv = g_total.detach()
        if mu is not None and self.kl_weight > 0:
            kl = kl_to_standard_normal(mu, logvar)
            g_total, logs["kl"] = g_total + self.kl_weight * kl, kl.detach()
        if any(w > 0 for w in self.colour_weights) and len(fakes) > 1:
            colour = self.colour_loss(fakes)
            g_total, logs["colour"] = g_total + colour, colour.detach()
        ctx.update("G", g_total)
        logs.update(d_loss=d_total.detach(), g_loss=g_total.detach(), g_adv=g_adv)
        return logs

    # -- sampling -------------------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """z, and with text the caption tokens and the CA draws ``eps``."""
        if not self.conditional:
            unknown_controls(controls, (), f"'{self.name}' (an unconditional StackGAN++)")
            return {"z": self.noise(n, torch.device("cpu"), generator).to(device)}
        return self.text_inputs(n, generator, device, controls, eps_keys=("eps",))

    def scales_of(self, inputs: Mapping[str, torch.Tensor],
                  nets: Mapping[str, nn.Module] | None = None) -> list[torch.Tensor]:
        G = (nets or self.nets)["G"]
        right = inputs["text_emb"] if self.conditional else None
        return G.forward_all(inputs["z"], right, inputs.get("eps"))[0]

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return self.scales_of(inputs, nets)[-1]

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """Every scale's images enlarged to the final size, coarse to fine (the last column is the sample)."""
        size = self.sizes[-1]
        return {f"scale {i} ({s} px)": enlarge(img, size)
                for i, (s, img) in enumerate(zip(self.sizes, self.scales_of(inputs, nets)))}


@register_algorithm
class UnconditionalStackGANPlusPlus(StackGANPlusPlus):
    """StackGAN++'s unconditional form (the paper's LSUN / ImageNet experiments): no text, no CA, D's unconditional
    scores only; the branches take z where the conditional tree takes the CA sample (the authors' code)."""

    name = "stackgan2-unconditional"
    source = V2 + ", its unconditional form"
    roles = {"G": "tree-generator", "D": "multiscale-discriminator"}
    needs_keys = ()
    conditional = False

@register_algorithm
class StackGAN(_StackedFamily):
    name = "stackgan"
    source = V1
    roles = {"G": "stacked-generator", "D": "multiscale-discriminator", "T": TEXT_ENCODER_ROLE}
    optimizer_groups = {"G": ("G",), "D": ("D",)}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 stage2_scale: int = 4, kl_weight: float = 1.0, text_dim: int = 128, text_encoder_epochs: int = 8,
                 text_encoder_seed: int = 0):
        """``stage2_scale``: the full size over stage I's (the paper: 256 / 64 = 4); ``kl_weight``: lambda of the CA
        regulariser (the paper's text: 1; its code's COEFF.KL: 2, both recalled); ``text_dim``: the size of phi(t)."""
        super().__init__(nets, objective, data)
        self._common(objective, latent_dim, kl_weight, text_dim, text_encoder_epochs, text_encoder_seed)
        shape = square_images(data, self.name)
        self.full_size = int(shape[-1])
        G, D = self.nets["G"], self.nets["D"]
        self.sizes = tuple(G.sizes)
        if self.sizes != (self.full_size // stage2_scale, self.full_size) or tuple(D.sizes) != self.sizes:
            raise ConfigError(f"networks.G / D are built for stages {list(G.sizes)} / {list(D.sizes)} px but "
                              f"algorithm.stage2_scale={stage2_scale} on {self.full_size} px images gives "
                              f"{[self.full_size // stage2_scale, self.full_size]}; remove networks.*.stage2_scale / "
                              "sizes (the algorithm sets them)")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """G gets stage2_scale and the text embedding's size, D the two stages' sizes and no unconditional score."""
        ctx = super().network_context(params, data)
        scale = params.get("stage2_scale", cls.default_param("stage2_scale"))
        size = int(data.sample_shape[-1]) if data.kind == "image" else 0
        ctx["G"].update(stage2_scale=scale)
        ctx["D"].update(sizes=(size // max(scale, 1), size), unconditional=False)
        return ctx

    def check_phases(self, phases: Sequence[Any]) -> None:
        """Each ``train.phases`` entry names its stage by its image_size: stage I's or the full size."""
        for i, p in enumerate(phases):
            if p.image_size is not None and p.image_size not in self.sizes:
                raise ConfigError(f"train.phases[{i}].image_size={p.image_size}: StackGAN's stages are {self.sizes[0]} "
                                  f"px (stage I) and {self.sizes[1]} px (stage II); use one of those")

    def stage(self, phase: Any = None) -> int:
        """1 or 2: the stage that ``phase`` (default: the one last entered) trains; 2 without phases."""
        phase = self.phase if phase is None else phase
        size = getattr(phase, "image_size", None)
        return 1 if size == self.sizes[0] else 2

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        phase = getattr(ctx, "phase", None)
        if phase is not None and phase != self.phase:
            self.enter_phase(phase)
        stage = self.stage()
        G, D = self.nets["G"], self.nets["D"]
        batch = ctx.real_batch()
        x = batch.x
        right, wrong = self.batch_text(batch)
        z = self.noise(len(x), x.device)
        if stage == 1:
            real = real_scales(x, self.sizes[:1])[0]
            with ctx.autocast():
                fake, mu, logvar = G.stage_one(z, right)
        else:
            real = x
            with torch.no_grad(), eval_mode(*G.stage_one_modules()), ctx.autocast():
                low = G.stage_one(z, right)[0]       # stage I fixed: no gradient, its BN statistics untouched
            with ctx.autocast():
                fake, mu, logvar = G.stage_two(low, right)
        scale = D.scales[stage - 1]

        with ctx.autocast():
            f_real, f_fake = scale.features(real), scale.features(fake.detach().to(real.dtype))
            real_c, wrong_c = scale.conditional(f_real, right), scale.conditional(f_real, wrong)
            fake_c = scale.conditional(f_fake, right)
        d = self.scale_d_loss(None, None, real_c, wrong_c, fake_c)
        ctx.update("D", d["total"])

        with frozen(D), ctx.autocast():
            g_adv = self.scale_g_loss(None, scale.conditional(scale.features(fake), right))
        kl = kl_to_standard_normal(mu, logvar)
        g_total = g_adv + self.kl_weight * kl
        ctx.update("G", g_total)
        return {"stage": float(stage), "d_loss": d["total"].detach(), "g_loss": g_total.detach(),
                "g_adv": g_adv.detach(), "kl": kl.detach(), "d_real": real_c.detach().float().mean(),
                "d_wrong": wrong_c.detach().float().mean(), "d_fake": fake_c.detach().float().mean()}

    # -- sampling -------------------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """z, the caption tokens, and each stage's CA draws (``eps``, ``eps_2``)."""
        return self.text_inputs(n, generator, device, controls, eps_keys=("eps", "eps_2"))

    def stages_of(self, inputs: Mapping[str, torch.Tensor],
                  nets: Mapping[str, nn.Module] | None = None, stage: int | None = None) -> list[torch.Tensor]:
        """[stage-I image] during stage I, [stage-I image, stage-II image] after (``stage`` overrides the phase's)."""
        G = (nets or self.nets)["G"]
        right = inputs["text_emb"]
        low = G.stage_one(inputs["z"], right, inputs.get("eps"))[0]
        if (stage or self.stage()) == 1:
            return [low]
        return [low, G.stage_two(low, right, inputs.get("eps_2"))[0]]

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return enlarge(self.stages_of(inputs, nets)[-1], self.full_size)

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """Stage I's images enlarged to the full size, then (in stage II) stage II's."""
        names = [f"stage I ({self.sizes[0]} px)", f"stage II ({self.sizes[1]} px)"]
        return {name: enlarge(img, self.full_size) for name, img in zip(names, self.stages_of(inputs, nets))}
