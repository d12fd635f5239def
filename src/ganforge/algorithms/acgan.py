"""ACGAN as the book implements it (seed 000 section 3, acgan-mnist-5.3.1.py listings 5.3.1-5.3.4; spec 4).

Like CGAN, G gets ``concat[z, one-hot label]``; unlike CGAN, D sees only the image and has two outputs, the
probability that it is real (source) and the class (an auxiliary classifier head sharing D's trunk:
``acgan-book``). The losses (eq. 5.3.1 / 5.3.2, spec 4.2):

    L_D = -E_x log D(x) - E_z log(1 - D(G(z|y))) - E_x log P(c|x) - E_z log P(c|G(z|y))
    L_G = -E_z log D(G(z|y)) - E_z log P(c|G(z|y))

In the listing: ``loss=['binary_crossentropy', 'categorical_crossentropy']`` with weights 1.0 and 1.0 for both D
and the adversarial model; D's targets are source [1]*B + [0]*B and labels concat(real dataset labels, sampled fake
labels), the adversarial model's are source 1 and the same labels fed to G. Per step: one D update on the
concatenated 2B batch (``d_update: combined``, each loss a mean over 2B), then one G update on new noise and new
uniform labels. The source term is the configured objective (``nonsaturating`` = the book's BCE), so
``objective.name=lsgan`` etc. give ACGAN variants; the class term is the softmax cross-entropy, weighted by
``aux_weight`` (1.0: the book's loss weights). The book logs loss, srcloss, lblloss, srcacc, lblacc for both
models; here ``d_src_loss``, ``d_aux_loss``, ``d_aux_acc`` (over the 2B batch, the book's lblacc),
``d_aux_acc_real``, ``g_src_loss``, ``g_aux_loss``, ``g_aux_acc``.

The objective's needs (``algorithms/needs.py``) apply to the source head: ``wgan``'s weight clipping of all of D after
each critic iteration (as CGAN's), ``wgan-gp``'s penalty on the source score of interpolated images, added to the D
update that sees the fakes (logged ``gp``), the relativistic objectives' real source scores in G's loss. Auto-encoder
objectives (ebgan, began) are refused: this D is a classifier with a class head.
"""
from __future__ import annotations

from typing import Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import signature_params
from ..errors import ConfigError
from ..objectives import Need, Objective
from .base import DataInfo, StepContext, frozen, register_algorithm
from .conditional import Conditional, DUpdate
from .latent import LatentDist


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Keras ``categorical_crossentropy`` on softmax(logits) with one-hot targets: mean_batch(-log p_label), in fp32."""
    return F.cross_entropy(logits.float(), labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.detach().argmax(1) == labels).float().mean()


@register_algorithm
class ACGAN(Conditional):
    name = "acgan"
    source = "seed 000 section 3, acgan-mnist-5.3.1.py listings 5.3.1-5.3.4 (spec 4); Odena et al. 2017"
    refused_because = {Need.ENERGY_D: "its D is a classifier with a source and a class head, not an auto-encoder",
                       Need.PULLAWAY_TERM: "its D has no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 100,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, n_critic: int = 1,
                 d_update: DUpdate = "sum", fake_bn: Literal["train", "eval"] = "train", aux_weight: float = 1.0):
        if not aux_weight >= 0:
            raise ConfigError(f"algorithm.aux_weight must be >= 0 (the book: 1.0), got {aux_weight}")
        super().__init__(nets, objective, data, latent_dim=latent_dim, latent_dist=latent_dist, latent_std=latent_std,
                         n_critic=n_critic, d_update=d_update, fake_bn=fake_bn)
        self.aux_weight = aux_weight

    def check_networks(self) -> None:
        G, D = self.nets["G"], self.nets["D"]
        if "cond_dim" not in signature_params(type(G)):
            raise ConfigError(f"algorithm 'acgan' feeds the label to G, but networks.G ({type(G).__name__}) takes no "
                              "condition; use networks.G.arch=dcgan-book")
        if getattr(D, "takes_labels", False) or not hasattr(D, "num_classes"):
            raise ConfigError(f"algorithm 'acgan' needs a discriminator with an auxiliary class head that sees the "
                              f"image only; networks.D ({type(D).__name__}) is not one: use networks.D.arch=acgan-book")
        if D.num_classes != self.num_classes:
            raise ConfigError(f"networks.D was built for {D.num_classes} classes but the data has {self.num_classes}")

    # ---------------------------------------------------------------------------------------- training
    def discriminator_step(self, ctx: StepContext) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        D, obj, w = self.nets["D"], self.objective, self.aux_weight
        batch = ctx.real_batch()
        real, y_real = batch.x, batch.y
        n = len(real)
        fake, y_fake = self.make_fakes(ctx, n, real.device)
        fake = fake.to(real.dtype)
        penalty_logs: dict[str, torch.Tensor] = {}

        def with_penalty(loss: torch.Tensor) -> torch.Tensor:
            """The objective's penalty (WGAN-GP) on the source score, if it has one."""
            return self.needs.penalty(loss, lambda x: D(x).source, real, fake, penalty_logs)

        if self.d_update == "separate":
            with ctx.autocast():
                out_real = D(real)
            src_real, aux_real = obj.d_real_loss(out_real.source), class_loss(out_real.label, y_real)
            ctx.update("D", src_real + w * aux_real)
            with ctx.autocast():
                out_fake = D(fake)
            src_fake, aux_fake = obj.d_fake_loss(out_fake.source), class_loss(out_fake.label, y_fake)
            ctx.update("D", with_penalty(src_fake + w * aux_fake))
            src_loss, aux_loss = 0.5 * (src_real + src_fake), 0.5 * (aux_real + aux_fake)   # logged as the book
            loss = src_loss + w * aux_loss
            real_src, fake_src = out_real.source, out_fake.source
            real_logits, fake_logits = out_real.label, out_fake.label
        else:
            with ctx.autocast():
                out = D(torch.cat([real, fake]))
            real_src, fake_src = out.source[:n], out.source[n:]
            real_logits, fake_logits = out.label[:n], out.label[n:]
            src_loss = obj.d_loss(real_src, fake_src)
            aux_loss = class_loss(real_logits, y_real) + class_loss(fake_logits, y_fake)
            if self.d_update == "combined":      # each Keras loss is a mean over the 2B batch
                src_loss, aux_loss = 0.5 * src_loss, 0.5 * aux_loss
            loss = src_loss + w * aux_loss
            ctx.update("D", with_penalty(loss))
        real_acc, fake_acc = accuracy(real_logits, y_real), accuracy(fake_logits, y_fake)
        logs = {"d_loss": loss.detach(), "d_src_loss": src_loss.detach(), "d_aux_loss": aux_loss.detach(),
                "d_aux_acc": 0.5 * (real_acc + fake_acc), "d_aux_acc_real": real_acc,
                "d_real": real_src.detach().float().mean(), "d_fake": fake_src.detach().float().mean()}
        logs.update(penalty_logs)
        self.needs.after_d_step(real_src, fake_src, logs)
        return logs, real, y_real

    def generator_step(self, ctx: StepContext, real: torch.Tensor, y_real: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        n = len(real)
        z, labels = self.noise(n, real.device), self.random_labels(n, real.device)
        with frozen(D):
            with ctx.autocast():
                out = D(G(z, self.one_hot(labels)))
                real_src = self.needs.real_scores(lambda: D(real).source)
            src_loss = obj.g_loss(out.source, real_src)
            aux_loss = class_loss(out.label, labels)
            loss = src_loss + self.aux_weight * aux_loss
            ctx.update("G", loss)
        return {"g_loss": loss.detach(), "g_src_loss": src_loss.detach(), "g_aux_loss": aux_loss.detach(),
                "g_aux_acc": accuracy(out.label, labels)}
