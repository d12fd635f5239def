"""BiGAN / ALI: a GAN with an encoder, learned by a discriminator of (image, code) pairs.

Sources: seed 002 chapter 3 part 3 (spec 31: the encoder E maps an image to a code, the decoder G a code to an image,
and the discriminator takes an (image, code) pair and decides whether it came from the encoder, (x, E(x)), or from
the decoder, (G(z'), z'); at the optimum the two joint distributions agree and E and G invert each other). The models
are Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning" (BiGAN, ICLR; section 3, eq. 3) and Dumoulin
et al. 2017, "Adversarially Learned Inference" (ALI, ICLR; section 2), the same game found twice:

  min_{G,E} max_D  V(D, E, G) = E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))]

With D's raw scores s_real = D(x, E(x)) and s_fake = D(G(z), z) and the configured objective's D loss ``d``:

  D step (optimizer group D):        L_D  = d(s_real, s_fake)                          (+ the objective's penalty)
  G and E step (optimizer group G):  L_GE = d(s_fake, s_real)       ``ge_loss: swapped`` (the default)
                                     L_GE = -d(s_real, s_fake)      ``ge_loss: negated``

``swapped`` is BiGAN's "inverted labels" (section 3.4: G and E are trained to make D call the encoder's pairs fake and
the decoder's real, the non-saturating form of the game, as the official code does; ALI's code trains the same way);
with the cross-entropy objectives it is -log D(G(z), z) - log(1 - D(x, E(x))), and with least squares, hinge or
Wasserstein losses it is their D loss with the roles of the two kinds of pair exchanged. ``negated`` is the game
itself (G and E minimise what D maximises), the minimax form. G and E are one optimizer group (``optim.G``): one
update of both per step, as in the papers' joint update of theta_G and theta_E.

The step, as the official BiGAN code: one real batch x and one noise batch z per step; the D update on the pairs made
with G and E's current weights (no gradient to them), then the G/E update on the same x and z through the updated D
(its weights frozen). The encoder's codes of real images and the noise are both inputs of D, so a gradient penalty
(``objective.name: wgan-gp``, ``regularize: r1``) is taken with respect to the image of each pair with its code
interpolated alike and held constant (``regularizers.gradient_penalty``'s ``cond``, as for conditional critics).

Stochastic encoder (ALI section 2.2, ``networks.E.stochastic: true``): E gives a mean and log-variance, and the step
uses z = mu + sigma * eps (the reparameterisation trick: gradients flow into mu and sigma); ``encode`` gives the mean.
``ali`` is this algorithm with a stochastic encoder required and Gaussian noise by default.

Using a run: ``sample`` draws G(z); ``encode(images)`` (``Model.encode``, ``ganforge encode``) gives E(x) (the
posterior mean); ``translate`` (``ganforge translate``) gives the reconstructions G(E(x)). Progress grids show each
noise sample beside its re-generation through the encoder, columns ``G(z) | G(E(G(z)))``.

Objectives: any whose needs the step can meet (weight clipping of D, a gradient penalty, a joint D loss; relativistic
losses compare the two kinds of pair in both updates through ``d``); not BEGAN's state or auto-encoder discriminators.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import unknown_controls
from .latent import LatentDist, draw_latent
from .needs import check_needs

GELoss = Literal["swapped", "negated"]


@register_algorithm
class BiGAN(Algorithm):
    name = "bigan"
    auto_bf16 = True     # measured: bench/bf16_check.py (train/precision.py)
    source = ("seed 002 chapter 3 part 3 (BiGAN); Donahue et al. 2017, Adversarial Feature Learning, section 3; "
              "official code jeffdonahue/bigan")
    roles = {"G": "generator", "E": "encoder", "D": "joint-discriminator"}
    optimizer_groups = {"G": ("G", "E"), "D": ("D",)}
    ema_networks = ("G", "E")
    sampling_network = "G"
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS})
    refused_because = {Need.AFTER_D_STEP: "its objective state would follow a discriminator of pairs it was not "
                                          "written for",
                       Need.ENERGY_D: "its discriminator scores (image, code) pairs; it is not an auto-encoder",
                       Need.PULLAWAY_TERM: "its discriminator has no auto-encoder codes"}
    requires_stochastic_encoder = False

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 50,
                 latent_dist: LatentDist = "uniform", latent_std: float = 1.0, ge_loss: GELoss = "swapped"):
        """``latent_dim`` 50 and ``latent_dist`` uniform: the official MNIST run (train_mnist.sh: NOISE=u-50)."""
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if latent_dim < 1 or not latent_std > 0:
            raise ConfigError(f"algorithm: latent_dim must be >= 1 and latent_std > 0 (BiGAN's MNIST: 50 and "
                              f"uniform noise), got {latent_dim} and {latent_std}")
        if ge_loss not in ("swapped", "negated"):
            raise ConfigError(f"algorithm.ge_loss must be swapped (BiGAN's inverted labels) or negated (the minimax "
                              f"game), got {ge_loss!r}")
        self.latent_dim, self.latent_dist, self.latent_std, self.ge_loss = latent_dim, latent_dist, latent_std, ge_loss
        E = self.nets["E"]
        if getattr(E, "latent_dim", latent_dim) != latent_dim:
            raise ConfigError(f"networks.E makes {E.latent_dim}-d codes but algorithm.latent_dim is {latent_dim}; "
                              "remove networks.E.latent_dim (the algorithm sets it)")
        stochastic = bool(getattr(E, "stochastic", False))
        if self.requires_stochastic_encoder and not stochastic:
            raise ConfigError(f"algorithm '{self.name}' trains a stochastic encoder (ALI section 2.2); set "
                              "networks.E.stochastic=true, or use algorithm.name=bigan for a deterministic one")

    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    # -- losses (also what the unit tests check against direct computation) -----------------------------------------
    def discriminator_losses(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:
        """D's loss on its scores of encoder pairs (x, E(x)) as real and decoder pairs (G(z), z) as fake."""
        return {"d_loss": self.objective.d_loss(real_scores, fake_scores)}

    def generator_losses(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:
        """G and E's loss on D's scores of the two kinds of pair (module docstring): ``ge_loss``, and, for a
        separable objective with swapped labels, G's part (its pairs called real) and E's (its pairs called fake)."""
        obj = self.objective
        if self.ge_loss == "negated":
            return {"ge_loss": -obj.d_loss(real_scores, fake_scores)}
        out = {"ge_loss": obj.d_loss(fake_scores, real_scores)}
        if obj.separable:
            out.update(g_part=obj.d_real_loss(fake_scores), e_part=obj.d_fake_loss(real_scores))
        return out

    # -- training ------------------------------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, E, D = self.nets["G"], self.nets["E"], self.nets["D"]
        x = ctx.real_batch().x
        z = self.noise(len(x), x.device)
        logs: dict[str, Any] = {}

        # D step: both kinds of pair from the current G and E, no gradient to them.
        with torch.no_grad(), ctx.autocast():
            code, fake = E(x), G(z)
        with ctx.autocast():
            real_out, fake_out = D(x, code), D(fake, z)
        d = self.discriminator_losses(real_out, fake_out)
        loss_d = self.needs.penalty(d["d_loss"], lambda image, c: D(image, c), x, fake, logs, cond=(code, z))
        ctx.update("D", loss_d)
        self.needs.clip(D)

        # G and E step on the same x and z through the updated D, its weights frozen.
        with frozen(D), ctx.autocast():
            real_out_g, fake_out_g = D(x, E(x)), D(G(z), z)
        ge = self.generator_losses(real_out_g, fake_out_g)
        ctx.update("G", ge["ge_loss"])
        return {**logs, **{k: v.detach() for k, v in {**d, **ge}.items()}, "d_loss": loss_d.detach(),
                "d_real": real_out.detach().float().mean(), "d_fake": fake_out.detach().float().mean()}

    # -- sampling ------------------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        unknown_controls(controls, (), f"'{self.name}' (samples from noise)")
        return {"z": self.noise(n, device, generator)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["z"])

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """Each noise sample and its re-generation through the encoder: how far E inverts G so far."""
        sample = nets["G"](inputs["z"])
        return {"G(z)": sample, "G(E(G(z)))": nets["G"](nets["E"].mean(sample))}

    # -- encoding and reconstruction -------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor, nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        """E(x) of a batch of images in the model's value range, in inference mode (a stochastic encoder's mean)."""
        E = (nets or self.nets)["E"]
        with eval_mode(E):
            return E.mean(images)

    @torch.no_grad()
    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  **controls: Any) -> torch.Tensor:
        """The reconstructions G(E(x)) of ``inputs`` (the model's value range), in inference mode."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}' (it reconstructs images through E and G)")
        G = (nets or self.nets)["G"]
        code = self.encode(inputs, nets)
        with eval_mode(G):
            return G(code)


@register_algorithm
class ALI(BiGAN):
    name = "ali"
    source = ("seed 002 chapter 3 part 3 (BiGAN); Dumoulin et al. 2017, Adversarially Learned Inference, section 2 "
              "(stochastic encoder, reparameterisation)")
    requires_stochastic_encoder = True

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 64,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, ge_loss: GELoss = "swapped"):
        """Gaussian prior N(0, I) (ALI's p(z)); a stochastic encoder (``networks.E.stochastic: true``) required."""
        super().__init__(nets, objective, data, latent_dim, latent_dist, latent_std, ge_loss)
