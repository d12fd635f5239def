"""The class-conditional adversarial step: CGAN, with the label given to G and to D.

Mirza & Osindero 2014; seed 002 part 3 section 1 (CGAN: D judges the pair (c, x), "both that x is real and that x
and c match"); the book's CGAN (Atienza ch. 4) that seed 000 section 3 builds ACGAN on: G gets ``concat[z, one-hot
label]``, D gets the image and the label, the loss is the unconditional one with both conditioned on y
(eq. 4.3.1 / 4.3.2, spec 4.2):

    L_D = -E_x log D(x | y) - E_z log(1 - D(G(z | y) | y)),     L_G = -E_z log D(G(z | y) | y)

(the non-saturating objective; any objective works, the labels only change what G and D see). Per step, as the
book's loop: real images with their dataset labels; fakes from fresh noise with labels drawn uniformly
(``np.eye(10)[np.random.choice(10, batch_size)]``); one D update (``d_update``: ``combined``, the book's
``train_on_batch`` on the concatenated 2B batch with each loss a mean over it; ``sum``; ``separate`` real then fake
updates), then one G update through the frozen D on new noise and new uniform labels.

Where the sources differ:

- seed 002 section 1.3's algorithm has a third D term: a *real* image paired with a *wrong* condition must score
  low too, ``+ (1/m) sum log(1 - D(c, x_hat))`` (Reed et al. 2016's "matching-aware" D). The book's code has no such
  term, so it is off by default; ``mismatch_weight: 1.0`` adds it with the text's weight (each real image is paired
  with a label drawn uniformly from the other classes).
- the discriminator decides how the label enters: ``cgan-book`` (label -> Dense(H*W) -> an extra image channel, the
  book) or ``projection-book`` (Miyato & Koyama 2018's inner product of a class embedding with D's features, the
  design seed 002 section 1.4 reports works better). Same algorithm, different ``networks.D.arch``.

``fake_bn='eval'`` makes D's fakes with G's BatchNorm in inference mode (Keras ``generator.predict()``, spec 0.5).
Objectives: any that scores D's raw outputs (nonsaturating, minimax, lsgan, hinge, f-GAN, GLS-GAN, the relativistic
ones with D's scores on the real pairs in G's loss, ...); ``wgan`` with its weight clipping after each critic
iteration (``n_critic``); ``wgan-gp`` with its penalty on interpolated pairs: images ``eps x + (1 - eps) G(z|y')``
scored with the one-hot labels interpolated alike, ``eps y + (1 - eps) y'`` (both label-taking Ds accept soft labels),
the gradient taken with respect to the image, added to the D update that sees the fakes. Objectives that need an
auto-encoder D (ebgan, began) are refused (``algorithms/needs.py``).
"""
from __future__ import annotations

import contextlib
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import signature_params
from ..errors import ConfigError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import layout_labels, row_shared, unknown_controls
from .latent import LatentDist, draw_latent
from .needs import check_needs

DUpdate = Literal["sum", "combined", "separate"]


@register_algorithm
class Conditional(Algorithm):
    name = "conditional"
    source = ("Mirza & Osindero 2014; seed 002 part 3 section 1 (CGAN); the book's CGAN (Atienza ch. 4) under seed "
              "000 section 3 (eq. 4.3.1-4.3.2)")
    needs_labels = True
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.AFTER_D_STEP, Need.REAL_SCORES_IN_G,
                                 Need.JOINT_D_LOSS})
    refused_because = {Need.ENERGY_D: "its D scores (image, label) pairs; there is no label-taking auto-encoder D",
                       Need.PULLAWAY_TERM: "its D has no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, n_critic: int = 1,
                 d_update: DUpdate = "sum", fake_bn: Literal["train", "eval"] = "train", mismatch_weight: float = 0.0):
        super().__init__(nets, objective, data)
        if latent_dim < 1 or n_critic < 1 or latent_std <= 0:
            raise ConfigError(f"algorithm: latent_dim and n_critic must be >= 1 and latent_std > 0 "
                              f"(got {latent_dim}, {n_critic}, {latent_std})")
        if not mismatch_weight >= 0:
            raise ConfigError(f"algorithm.mismatch_weight must be >= 0 (0: the book, 1: seed 002's third term), "
                              f"got {mismatch_weight}")
        supported, why = self.supported_needs, dict(self.refused_because)
        if d_update == "separate" or mismatch_weight > 0:
            # These score real, fake (and mismatched) pairs in separate loss terms.
            what = "d_update=separate" if d_update == "separate" else "mismatch_weight > 0"
            supported = supported - {Need.JOINT_D_LOSS}
            why[Need.JOINT_D_LOSS] = (f"algorithm.{what} needs a loss that splits into real and fake terms: "
                                      "set algorithm.d_update=sum and mismatch_weight=0")
        self.needs = check_needs(self.name, objective, supported, why=why)
        # WGAN's weight clipping (objective.clip_value, seed 000 algorithm 5.1.1): after each critic iteration.
        self.weight_clip: float | None = self.needs.clip_value
        self.num_classes = data.num_classes
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        self.n_critic, self.d_update, self.fake_bn = n_critic, d_update, fake_bn
        self.mismatch_weight = mismatch_weight
        self.check_networks()

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        ctx = super().network_context(params, data)
        ctx["G"]["cond_dim"] = data.num_classes        # G's input: concat[z, one-hot label]
        return ctx

    def check_networks(self) -> None:
        """G must take the one-hot label as its ``cond`` input, and D must take the label (CGAN / projection)."""
        G, D = self.nets["G"], self.nets["D"]
        if "cond_dim" not in signature_params(type(G)):
            raise ConfigError(f"algorithm '{self.name}' feeds the label to G, but networks.G ({type(G).__name__}) "
                              "takes no condition; use networks.G.arch=dcgan-book")
        if not getattr(D, "takes_labels", False):
            raise ConfigError(f"algorithm '{self.name}' gives the label to D, but networks.D ({type(D).__name__}) "
                              "judges images only; use networks.D.arch=cgan-book or projection-book "
                              "(or algorithm.name=acgan for a D with a class head)")
        if getattr(D, "num_classes", self.num_classes) != self.num_classes:
            raise ConfigError(f"networks.D was built for {D.num_classes} classes but the data has {self.num_classes}")

    # ---------------------------------------------------------------------------------------- inputs
    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.num_classes).float()

    def random_labels(self, n: int, device: torch.device) -> torch.Tensor:
        """Uniform labels for fakes, from the (checkpointed) global RNG: ``np.random.choice(10, n)``."""
        return torch.randint(self.num_classes, (n,), device=device)

    def wrong_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """A label drawn uniformly from the *other* classes, per sample (seed 002's mismatched pairs)."""
        shift = torch.randint(1, self.num_classes, labels.shape, device=labels.device)
        return (labels + shift) % self.num_classes

    def make_fakes(self, ctx: StepContext, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(fake images without gradient, their labels) for a discriminator update."""
        G = self.nets["G"]
        z, labels = self.noise(n, device), self.random_labels(n, device)
        bn = eval_mode(G) if self.fake_bn == "eval" else contextlib.nullcontext()
        with torch.no_grad(), bn, ctx.autocast():
            fake = G(z, self.one_hot(labels))
        return fake, labels

    # ---------------------------------------------------------------------------------------- training
    # Hooks for families that extend this step (``algorithms/biggan.py``'s S2GAN / S3GAN): which labels D scores
    # the real images with, and extra loss terms on D's and G's updates. Here: the data's labels, no extra terms.
    def real_pairs(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(real images, the labels D's real pairs get) for a discriminator update."""
        batch = ctx.real_batch()
        return batch.x, batch.y

    def extra_d_loss(self, real: torch.Tensor, y_real: torch.Tensor,
                     logs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """A term added to the D update that sees the reals (logged into ``logs``); None: nothing."""
        return None

    def extra_g_loss(self, ctx: StepContext, fake: torch.Tensor, labels: torch.Tensor,
                     logs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """A term added to G's loss on its fakes (D frozen; logged into ``logs``); None: nothing."""
        return None

    def discriminator_step(self, ctx: StepContext) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        D, obj = self.nets["D"], self.objective
        real, y_real = self.real_pairs(ctx)
        n = len(real)
        fake, y_fake = self.make_fakes(ctx, n, real.device)
        fake = fake.to(real.dtype)
        # (images, labels, is the pair real?) for each part of D's batch
        parts = [(real, y_real, True), (fake, y_fake, False)]
        weights = [1.0, 1.0]
        if self.mismatch_weight > 0:
            parts.append((real, self.wrong_labels(y_real), False))
            weights.append(self.mismatch_weight)

        def term(out: torch.Tensor, is_real: bool) -> torch.Tensor:
            return obj.d_real_loss(out) if is_real else obj.d_fake_loss(out)

        penalty_logs: dict[str, torch.Tensor] = {}

        def with_penalty(loss: torch.Tensor) -> torch.Tensor:
            """The objective's penalty (WGAN-GP) on pairs between the real and the fake pairs, if it has one."""
            return self.needs.penalty(loss, D, real, fake, penalty_logs,
                                      cond=(self.one_hot(y_real), self.one_hot(y_fake)))

        if self.d_update == "separate":
            outs, losses = [], []
            for i, ((x, y, is_real), w) in enumerate(zip(parts, weights)):
                with ctx.autocast():
                    out = D(x, self.one_hot(y))
                part_loss = w * term(out, is_real)
                extra = self.extra_d_loss(real, y_real, penalty_logs) if i == 0 else None   # with the reals
                update = with_penalty(part_loss) if i == 1 else part_loss              # the penalty with the fakes
                ctx.update("D", update if extra is None else update + extra)
                outs.append(out.detach())
                losses.append(part_loss.detach())
            loss = sum(losses) / len(losses)        # what the book's loop logs: the mean of the updates' losses
        else:
            with ctx.autocast():
                out = D(torch.cat([p[0] for p in parts]), self.one_hot(torch.cat([p[1] for p in parts])))
            outs = list(out.split(n))
            if len(parts) == 2:
                loss = obj.d_loss(outs[0], outs[1])
            else:
                loss = sum(w * term(o, p[2]) for o, p, w in zip(outs, parts, weights))
            if self.d_update == "combined":
                # Keras' mean over the concatenated batch: every sample (pair) counts once.
                loss = loss / sum(weights)
            extra = self.extra_d_loss(real, y_real, penalty_logs)
            ctx.update("D", with_penalty(loss) if extra is None else with_penalty(loss) + extra)
            loss, outs = loss.detach(), [o.detach() for o in outs]
        logs = {"d_loss": loss, "d_real": outs[0].float().mean(), "d_fake": outs[1].float().mean()}
        if len(outs) > 2:
            logs["d_mismatch"] = outs[2].float().mean()
        logs.update(penalty_logs)
        self.needs.after_d_step(outs[0], outs[1], logs)
        return logs, real, y_real

    def generator_step(self, ctx: StepContext, real: torch.Tensor, y_real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        n = len(real)
        z, labels = self.noise(n, real.device), self.random_labels(n, real.device)
        logs: dict[str, torch.Tensor] = {}
        with frozen(D):
            with ctx.autocast():
                fake = G(z, self.one_hot(labels))
                fake_out = D(fake, self.one_hot(labels))
                real_out = self.needs.real_scores(lambda: D(real, self.one_hot(y_real)))
            loss = obj.g_loss(fake_out, real_out)
            extra = self.extra_g_loss(ctx, fake, labels, logs)
            ctx.update("G", loss if extra is None else loss + extra)
        return {"g_loss": loss.detach(), **logs}

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        sums: dict[str, torch.Tensor] = {}
        for _ in range(self.n_critic):
            d_logs, real, y_real = self.discriminator_step(ctx)
            self.needs.clip(self.nets["D"])
            for k, v in d_logs.items():
                sums[k] = sums.get(k, 0) + torch.as_tensor(v)
        logs: dict[str, torch.Tensor | float] = {k: v / self.n_critic for k, v in sums.items()}
        logs.update(self.generator_step(ctx, real, y_real))
        return logs

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """``label``: every sample that class; ``labels``: one class per row (``--labels 0-9``: a row per digit);
        neither: uniform random labels. ``share_noise``: column j has the same z in every row ("same style, other
        digit")."""
        unknown_controls(controls, ("label", "labels", "share_noise"), f"'{self.name}' (a class-conditional GAN)")
        labels = layout_labels(n, self.num_classes, controls, generator)
        z = row_shared(n, controls, lambda m: self.noise(m, torch.device("cpu"), generator))
        return {"z": z.to(device), "y": labels.to(device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["z"], self.one_hot(inputs["y"]))

    def sample_labels(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return inputs["y"]
