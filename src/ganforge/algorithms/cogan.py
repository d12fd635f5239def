"""CoGAN: two weight-sharing GANs that learn the joint distribution of two domains from unpaired samples.

Source: seed 002 chapter 3 part 2, "big transformation" (spec 28.2: make the two domains' networks agree by sharing
the parameters of some of their layers); the model is the paper's, Liu & Tuzel 2016, "Coupled Generative Adversarial
Networks" (NIPS), section 3, with the official code's step (mingyuliutw/CoGAN, ``trainer_cogan_mnistedge.py``):

  G = (g_A, g_B), the two generators sharing their first layers; D = (f_A, f_B), the two discriminators sharing their
  last layers (``models/cogan.py``, ``shared_layers`` per network). One z gives a pair (g_A(z), g_B(z)).

  D step (optimizer group D), on fakes of fresh noise:
    L_D = d(f_A(a), f_A(g_A(z))) + d(f_B(b), f_B(g_B(z)))                         ``d_A`` + ``d_B`` = ``d_loss``
  G step (optimizer group G), on new noise z':
    L_G = adv(f_A(g_A(z'))) + adv(f_B(g_B(z')))                                    ``g_A`` + ``g_B`` = ``g_loss``

with d / adv the objective's discriminator / generator losses of the raw scores. The paper's game is the sum of the
two GANs' value functions (section 3, eq. 4 and its learning algorithm); its code uses the softmax cross-entropy, i.e.
``objective: nonsaturating`` here, over the concatenated batch (a mean over all samples: the sums above divided by
4 for D and by 2 for G, a constant factor Adam's step does not see). The data are unpaired: domain A is the main
stream (``data.source``), domain B the stream ``b`` (``data.streams.b.source``), each drawn by its own sampler. What
couples the domains is only the weight sharing: with ``networks.G.shared_layers: 0`` and
``networks.D.shared_layers: 0`` the two GANs are independent and a z gives two unrelated images (the paper's
Figure 4 baseline).

Samples: ``generate`` / ``ganforge sample`` / FID give domain A images (g_A(z)), the domain of the main data;
``Model.sample(n, domain="b")`` gives domain B's (the ``domain`` sampling control: a or b); progress grids show
the pairs from one z side by side, columns ``domain A | domain B``. CoGAN does not translate a given image (the
paper does it by searching z, not implemented): ``ganforge translate`` refuses it in one line.

Objectives: any whose needs the step can meet (weight clipping of D, a gradient penalty on each domain's
discriminator, real scores in G's loss); not BEGAN's state (two discriminators, one objective state) nor
energy-based discriminators.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import unknown_controls
from .latent import LatentDist, draw_latent
from .needs import check_needs

DOMAIN_INDEX = {"a": 0, "b": 1}


@register_algorithm
class CoGAN(Algorithm):
    name = "cogan"
    source = ("seed 002 chapter 3 part 2 (CoGAN); Liu & Tuzel 2016, Coupled Generative Adversarial Networks, "
              "section 3; official code mingyuliutw/CoGAN")
    roles = {"G": "coupled-generator", "D": "coupled-discriminator"}
    optimizer_groups = {"G": ("G",), "D": ("D",)}
    ema_networks = ("G",)
    sampling_network = "G"
    streams = ("b",)
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS})
    refused_because = {Need.AFTER_D_STEP: "its two discriminators would both update the one objective state",
                       Need.ENERGY_D: "its discriminators are classifiers, not auto-encoders",
                       Need.PULLAWAY_TERM: "its discriminators have no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "uniform", latent_std: float = 1.0):
        """``latent_dist``: U(-1, 1) is the paper's Caffe code (its PyTorch port draws N(0, 1): ``normal``)."""
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if latent_dim < 1 or not latent_std > 0:
            raise ConfigError(f"algorithm: latent_dim must be >= 1 and latent_std > 0 (the paper: 100 and "
                              f"uniform noise), got {latent_dim} and {latent_std}")
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        shape_a, shape_b = domain_shapes(data)
        for key in ("G", "D"):
            net = self.nets[key]
            if (net.channels_a, net.channels_b) != (shape_a[0], shape_b[0]):
                raise ConfigError(f"networks.{key} has {net.channels_a} and {net.channels_b} channels but the data "
                                  f"{shape_a[0]} (data.source) and {shape_b[0]} (data.streams.b); the data set them: "
                                  f"remove networks.{key}.channels_b")

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """Both coupled networks get domain A's channels as ``channels`` and domain B's as ``channels_b``."""
        ctx = super().network_context(params, data)
        shape_a, shape_b = domain_shapes(data)
        for key in ctx:
            ctx[key].update(channels=shape_a[0], channels_b=shape_b[0], image_size=shape_a[-1], sample_shape=shape_a)
        return ctx

    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    # -- losses (also what the unit tests check against direct computation) -----------------------------------------
    def discriminator_losses(self, real_a: torch.Tensor, fake_a: torch.Tensor, real_b: torch.Tensor,
                             fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each domain's discriminator loss on its scores of real and fake images, and their sum."""
        d_a, d_b = self.objective.d_loss(real_a, fake_a), self.objective.d_loss(real_b, fake_b)
        return {"d_loss": d_a + d_b, "d_A": d_a, "d_B": d_b}

    def generator_losses(self, fake_a: torch.Tensor, fake_b: torch.Tensor,
                         real_scores: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
                         ) -> dict[str, torch.Tensor]:
        """Each domain's generator loss on its discriminator's scores of the fakes (and of the reals, for
        objectives that compare them), and their sum."""
        g_a = self.objective.g_loss(fake_a, real_scores[0])
        g_b = self.objective.g_loss(fake_b, real_scores[1])
        return {"g_loss": g_a + g_b, "g_A": g_a, "g_B": g_b}

    # -- training ------------------------------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, D = self.nets["G"], self.nets["D"]
        real_a, real_b = ctx.real_batch().x, ctx.real_batch("b").x     # independent draws: unpaired
        if len(real_a) != len(real_b):
            raise DataError(f"algorithm 'cogan' draws one z per pair, but the batches of domain A and B have "
                            f"{len(real_a)} and {len(real_b)} images; remove data.streams.b.batch_size (it then takes "
                            "train.batch_size)")
        logs: dict[str, Any] = {}

        # D step: the official code's order (D, then G), each with its own noise.
        z = self.noise(len(real_a), real_a.device)
        with torch.no_grad(), ctx.autocast():
            fake_a, fake_b = G(z)
        with ctx.autocast():
            out = {"ra": D(real_a, "a"), "fa": D(fake_a, "a"), "rb": D(real_b, "b"), "fb": D(fake_b, "b")}
        d = self.discriminator_losses(out["ra"], out["fa"], out["rb"], out["fb"])
        loss_d = self.needs.penalty(d["d_A"], lambda x: D(x, "a"), real_a, fake_a, logs, key="gp_A")
        loss_d = loss_d + self.needs.penalty(d["d_B"], lambda x: D(x, "b"), real_b, fake_b, logs, key="gp_B")
        ctx.update("D", loss_d)
        self.needs.clip(D)

        # G step: D's weights frozen (gradients still flow through D to G).
        z = self.noise(len(real_a), real_a.device)
        with frozen(D), ctx.autocast():
            gen_a, gen_b = G(z)
            score_a, score_b = D(gen_a, "a"), D(gen_b, "b")
            real_scores = (self.needs.real_scores(lambda: D(real_a, "a")),
                           self.needs.real_scores(lambda: D(real_b, "b")))
        g = self.generator_losses(score_a, score_b, real_scores)
        ctx.update("G", g["g_loss"])

        return {**logs, **{k: v.detach() for k, v in {**d, **g}.items()}, "d_loss": loss_d.detach(),
                "d_real_A": out["ra"].detach().float().mean(), "d_fake_A": out["fa"].detach().float().mean(),
                "d_real_B": out["rb"].detach().float().mean(), "d_fake_B": out["fb"].detach().float().mean()}

    # -- sampling ------------------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """Noise, and which domain to render (``domain``: a, the default, or b)."""
        unknown_controls(controls, ("domain",), f"'{self.name}' (a pair of GANs sampled from noise)")
        domain = controls.get("domain") or "a"
        if domain not in DOMAIN_INDEX:
            raise ConfigError(f"domain must be a (data.source) or b (data.streams.b), got {domain!r}")
        return {"z": self.noise(n, device, generator),
                "domain": torch.full((n,), DOMAIN_INDEX[domain], dtype=torch.long, device=device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        """Each z's image in its ``domain`` (0: A, 1: B; A when inputs have no domain)."""
        G, z = (nets or self.nets)["G"], inputs["z"]
        domain = inputs.get("domain")
        if domain is None or not bool(domain.any()):
            return G.domain(z, "a")
        if bool(domain.all()):
            return G.domain(z, "b")
        x_a, x_b = G(z)
        if x_a.shape != x_b.shape:
            raise ConfigError(f"samples of both domains in one batch need one shape, but domain A's are "
                              f"{list(x_a.shape[1:])} and B's {list(x_b.shape[1:])}; sample each domain apart")
        return torch.where(domain.view(-1, 1, 1, 1).bool(), x_b, x_a)

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """The pair each z gives: domain A | domain B (a row per z)."""
        x_a, x_b = nets["G"](inputs["z"])
        return {"domain A": x_a, "domain B": x_b}

    def output_shape(self) -> tuple[int, ...]:
        """Samples are domain A's images unless asked for B's."""
        return domain_shapes(self.data)[0]


def domain_shapes(data: DataInfo) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """C x H x W of domain A (the main data) and of domain B (stream ``b``; the main data's when the description
    has no streams, as a recipe checked without its data is). Both must have one image size: one line otherwise."""
    b = data.streams.get("b")
    shape_a, shape_b = tuple(data.sample_shape), tuple(b.sample_shape if b is not None else data.sample_shape)
    if data.kind != "image" or len(shape_a) != 3:
        raise DataError(f"algorithm 'cogan' generates pairs of images, but the data holds {data.kind}s of shape "
                        f"{list(shape_a)}; use image data (e.g. mnist5k, unaligned:DIR?domain=A)")
    if shape_a[1:] != shape_b[1:]:
        raise DataError(f"algorithm 'cogan' couples images of one size, but domain A (data.source) is "
                        f"{'x'.join(map(str, shape_a[1:]))} and domain B (data.streams.b) "
                        f"{'x'.join(map(str, shape_b[1:]))}; set data.image_size to give both one size")
    return shape_a, shape_b
