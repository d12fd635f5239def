"""LapGAN: a Laplacian pyramid of GANs, the coarsest level an ordinary GAN, each finer level a conditional GAN that
generates the band-pass residual given the upsampled coarser image; samples are drawn coarse to fine.

Source: seed 002 chapter 3 part 1 (spec 21: the pyramids, the architecture, the sampling formula); the model and its
training are the paper's, Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a Laplacian
Pyramid of Adversarial Networks" (NIPS), sections 3-4, with the official code's step (facebookarchive/eyescream,
``cifar/train/adversarial.lua`` and ``conditional_adversarial.lua``).

Levels run from the coarsest, 0, to the finest, K-1 (``algorithm.levels`` = K; the paper numbers them the other way).
One step trains every level on the pyramid of the real batch x (``models/lapgan.py``: d, u and the operator
``algorithm.pyramid``), each level on its own pair, as the paper trains them, independently:

  level 0:      real I_0 = d^(K-1)(x),                     fake G_0(z),            D_0(image)
  level k >= 1: real (h_k, l_k) = (I_k - u(I_{k-1}), l_k),  fake (G_k(z_k, l_k), l_k), D_k(residual, l_k)
                with I_k the real image's level k and l_k = u(I_{k-1}) the real low-pass image (the paper: "D_k
                discriminates (h_k, l_k) from (h~_k, l_k)"; at training time the condition is always real).

  D step (group D):  L_D = sum_k w d(D_k(real_k), D_k(fake_k))           ``d_k`` each, ``d_loss`` the sum
  G step (group G):  L_G = sum_k adv(D_k(G_k(z'_k, l_k)))                 ``g_k`` each, ``g_loss`` the sum

with d / adv the configured objective's discriminator / generator losses of the raw scores (the paper's eq. 2 is the
GAN minimax; its code's BCE with G's fakes labelled real is ``objective: nonsaturating``), fresh noise for each step,
and w = 1/2 for ``d_update: combined`` (the code: one BCE mean over a D batch of half real, half fake samples) or 1
for ``sum``. No tensor is shared between levels, so the gradient of the sum with respect to a level's weights is that
level's own loss's: one optimizer step over the sum is K independent steps. Objectives with a penalty (WGAN-GP) or
weight clipping apply per level (a level-k penalty interpolates the residuals, its condition being the same real
l_k on both sides), logged ``gp_k``.

Sampling (spec 21.4, coarse to fine): I~_0 = G_0(z), I~_k = u(I~_{k-1}) + G_k(z_k, u(I~_{k-1})); the finest level is
the sample, clipped to the data's range (the coarse image is tanh, the residuals are not bounded). The inputs are z
(``latent_dim``, U(-1, 1) by default as the paper) and one noise plane z_k per refining level (``z_1`` ..). The
progress grid shows each level's output enlarged (u repeated) to the final size, a column per level, a row per
sample (``grid_panels``); ``ganforge sample`` gives the final images. The paper's class-conditional CIFAR-10 variant
is not built.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError, DataError
from ..models.lapgan import check_pyramid, laplacian_pairs, level_sizes, upsample_to
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import unknown_controls
from .latent import LatentDist, draw_latent
from .needs import check_needs

DUpdate = Literal["combined", "sum"]


@register_algorithm
class LapGAN(Algorithm):
    name = "lapgan"
    source = ("seed 002 chapter 3 part 1 (LapGAN); Denton et al. 2015, Deep Generative Image Models using a Laplacian "
              "Pyramid of Adversarial Networks, sections 3-4; official code facebookarchive/eyescream")
    roles = {"G": "pyramid-generator", "D": "pyramid-discriminator"}
    optimizer_groups = {"G": ("G",), "D": ("D",)}
    ema_networks = ("G",)
    sampling_network = "G"
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS})
    refused_because = {Need.AFTER_D_STEP: "its per-level discriminators would all update the one objective state",
                       Need.ENERGY_D: "its discriminators are classifiers, not auto-encoders",
                       Need.PULLAWAY_TERM: "its discriminators have no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "uniform", latent_std: float = 1.0, levels: int = 3,
                 pyramid: str = "area-bilinear", d_update: DUpdate = "combined"):
        """``levels``: pyramid levels K (the paper's CIFAR-10: 3, 8 -> 16 -> 32 here); ``pyramid``: the d/u operator
        (``models/lapgan.py``); ``d_update``: combined (the code's D loss, a mean over real and fake) or sum."""
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if latent_dim < 1 or not latent_std > 0:
            raise ConfigError(f"algorithm: latent_dim must be >= 1 and latent_std > 0 (the paper: 100 and uniform "
                              f"noise), got {latent_dim} and {latent_std}")
        if d_update not in ("combined", "sum"):
            raise ConfigError(f"algorithm.d_update must be combined (the paper's code) or sum, got {d_update!r}")
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        self.pyramid, self.d_update = check_pyramid(pyramid), d_update
        self.d_weight = 0.5 if d_update == "combined" else 1.0
        shape = image_shape(data)
        self.sizes = level_sizes(shape[-1], levels)
        for key in ("G", "D"):
            net = self.nets[key]
            if tuple(net.sizes) != self.sizes:
                raise ConfigError(f"networks.{key} has levels of {list(net.sizes)} px but the pyramid of "
                                  f"algorithm.levels={levels} on {shape[-1]} px images is {list(self.sizes)}; remove "
                                  f"networks.{key}.levels (the algorithm sets it)")
        if self.nets["G"].pyramid != self.pyramid:
            raise ConfigError(f"networks.G samples with the {self.nets['G'].pyramid} pyramid but algorithm.pyramid is "
                              f"{self.pyramid}; remove networks.G.pyramid (the algorithm sets it)")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """Both networks get the number of levels and the pyramid operator the algorithm trains with."""
        ctx = super().network_context(params, data)
        for key in ctx:
            ctx[key].update(levels=params.get("levels", cls.default_param("levels")),
                            pyramid=params.get("pyramid", cls.default_param("pyramid")))
        return ctx

    # -- noise ----------------------------------------------------------------------------------------------------------
    def noise(self, n: int, device: torch.device,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(z of the coarsest level, [z_1 .. z_{K-1}] the refining levels' noise planes), each of the latent
        distribution (the code draws them all U(-1, 1))."""
        G = self.nets["G"]
        z = draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)
        planes = []
        for k in range(1, len(self.sizes)):
            shape = G.noise_shape(k)
            flat = draw_latent(n, shape[0] * shape[1] * shape[2], self.latent_dist, self.latent_std, device, generator)
            planes.append(flat.view(n, *shape))
        return z, planes

    # -- the pyramid of a real batch, and the losses (also what the unit tests check against direct computation) ------
    def real_levels(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """What each level's D sees as real: [(I_0, None), (h_1, l_1), ..., (h_{K-1}, l_{K-1})]."""
        coarse, pairs = laplacian_pairs(x, len(self.sizes), self.pyramid)
        return [(coarse, None)] + [(h, low) for low, h in pairs]

    def fake_levels(self, G: nn.Module, z: torch.Tensor, planes: list[torch.Tensor],
                    lows: list[torch.Tensor | None]) -> list[torch.Tensor]:
        """What each level's G makes at training time: [G_0(z), G_1(z_1, l_1), ...], each conditioned on the real
        low-pass image of its level (``lows[k]``; ``lows[0]`` is None)."""
        return [G.coarse(z)] + [G.residual(k, planes[k - 1], lows[k]) for k in range(1, len(self.sizes))]

    def discriminator_losses(self, real_scores: list[torch.Tensor],
                             fake_scores: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each level's D loss (``d_k``: w times the objective's loss of its scores) and their sum ``d_loss``."""
        out = {f"d_{k}": self.d_weight * self.objective.d_loss(r, f)
               for k, (r, f) in enumerate(zip(real_scores, fake_scores))}
        return {"d_loss": torch.stack(list(out.values())).sum(), **out}

    def generator_losses(self, fake_scores: list[torch.Tensor],
                         real_scores: list[torch.Tensor | None] | None = None) -> dict[str, torch.Tensor]:
        """Each level's G loss (``g_k``) on its D's scores of its fakes (and of its reals, for objectives that compare
        them), and their sum ``g_loss``."""
        reals = real_scores or [None] * len(fake_scores)
        out = {f"g_{k}": self.objective.g_loss(f, r) for k, (f, r) in enumerate(zip(fake_scores, reals))}
        return {"g_loss": torch.stack(list(out.values())).sum(), **out}

    # -- training -------------------------------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, D = self.nets["G"], self.nets["D"]
        x = ctx.real_batch().x
        n, levels = len(x), len(self.sizes)
        reals = self.real_levels(x)
        lows = [low for _, low in reals]
        logs: dict[str, Any] = {}

        # D step: every level on its real pair and on its G's fake, made without gradients.
        z, planes = self.noise(n, x.device)
        with torch.no_grad(), ctx.autocast():
            fakes = self.fake_levels(G, z, planes, lows)
        real_out, fake_out = [], []
        with ctx.autocast():
            for k, ((real, low), fake) in enumerate(zip(reals, fakes)):
                real_out.append(D(k, real, low))
                fake_out.append(D(k, fake.to(real.dtype), low))
        d = self.discriminator_losses(real_out, fake_out)
        loss_d = torch.zeros((), device=x.device)
        for k, ((real, low), fake) in enumerate(zip(reals, fakes)):
            if low is None:
                critic, cond = (lambda inp, k=k: D(k, inp)), None
            else:
                critic, cond = (lambda inp, c, k=k: D(k, inp, c)), (low, low)
            loss_d = loss_d + self.needs.penalty(d[f"d_{k}"], critic, real, fake, logs, key=f"gp_{k}", cond=cond)
        ctx.update("D", loss_d)
        self.needs.clip(D)

        # G step: new noise, D's weights frozen (gradients still flow through D to G).
        z, planes = self.noise(n, x.device)
        with frozen(D), ctx.autocast():
            gen = self.fake_levels(G, z, planes, lows)
            scores = [D(k, fake, low) for k, (fake, low) in enumerate(zip(gen, lows))]
            real_scores = [self.needs.real_scores(lambda k=k, r=r, low=low: D(k, r, low))
                           for k, (r, low) in enumerate(reals)]
        g = self.generator_losses(scores, real_scores)
        ctx.update("G", g["g_loss"])

        logs.update({k: v.detach() for k, v in {**d, **g}.items()})
        logs["d_loss"] = loss_d.detach()
        for k in range(levels):
            logs[f"d_real_{k}"] = real_out[k].detach().float().mean()
            logs[f"d_fake_{k}"] = fake_out[k].detach().float().mean()
        return logs

    # -- sampling -------------------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """z of the coarsest level and the noise plane ``z_k`` of each refining level k."""
        unknown_controls(controls, (), f"'{self.name}' (an unconditional Laplacian pyramid of GANs)")
        z, planes = self.noise(n, device, generator)
        return {"z": z, **{f"z_{k}": p for k, p in enumerate(planes, start=1)}}

    def _planes(self, inputs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        return [inputs[f"z_{k}"] for k in range(1, len(self.sizes))]

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range or (float("-inf"), float("inf"))
        return x.clamp(lo, hi)

    def levels_of(self, inputs: Mapping[str, torch.Tensor],
                  nets: Mapping[str, nn.Module] | None = None) -> list[torch.Tensor]:
        """Every level's sample I~_0 .. I~_{K-1} (coarse to fine, each at its own size, clipped to the data's range)."""
        G = (nets or self.nets)["G"]
        return [self._clip(level) for level in G.levels_from(inputs["z"], self._planes(inputs))]

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return self._clip((nets or self.nets)["G"](inputs["z"], self._planes(inputs)))

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """Each level's output enlarged to the final size, coarse to fine (the last column is the final sample)."""
        size = self.sizes[-1]
        return {f"level {k} ({s} px)": upsample_to(level, size, self.pyramid)
                for k, (s, level) in enumerate(zip(self.sizes, self.levels_of(inputs, nets)))}


def image_shape(data: DataInfo) -> tuple[int, ...]:
    """C x S x S of the data, or one DataError line: a pyramid needs square images."""
    shape = tuple(data.sample_shape)
    if data.kind != "image" or len(shape) != 3 or shape[1] != shape[2]:
        raise DataError(f"algorithm 'lapgan' builds a pyramid of square images, but the data holds {data.kind}s of "
                        f"shape {list(shape)}; use square image data (e.g. mnist5k, cifar10:DIR) or set "
                        "data.image_size")
    return shape

