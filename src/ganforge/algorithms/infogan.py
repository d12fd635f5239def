"""InfoGAN as the book implements it (seed 004 section 10.2, infogan-mnist-6.1.1.py listings 6.1.1-6.1.4; spec 5).

Generator input [z, one-hot categorical code, c1, c2]: z ~ U(-1, 1) (62-d, the book script's entry point
``build_and_train_models(latent_size=62)``; the listing's default is 100: ``algorithm.latent_dim=100``), the
categorical code uniform over 10 values, continuous codes c_k ~ N(0, 0.5^2). The Q network shares D's trunk
(``infogan-book`` discriminator). The mutual-information lower bound (eq. 10.5, H(c) constant) becomes, per the
listing:

- categorical code: ``categorical_crossentropy`` of Q's softmax, weight 1.0;
- each continuous code: ``mi_loss(c, q) = mean(-c * log(q + 1e-7))`` on the sigmoid head q, weight lambda = 0.5
  (``loss_weights = [1.0, 1.0, 0.5, 0.5]``);
- real/fake: binary cross-entropy (the objective), weight 1.0.

D and the adversarial model use the same losses and weights. Per step (listing 6.1.4): one D update on the
concatenated batch [real; fake] (targets [1; 0], the real images' *dataset labels* and fresh random codes for the
real half, the sampled label and codes for the fake half; each loss a mean over the 2B samples), then one G update
through the frozen D on a fresh fake batch labelled real with its own label and codes.

Where the book's code and the InfoGAN paper (Chen et al. 2016) differ, both are here; the book is the default:

- ``supervised: true`` (book, inherited from ACGAN): D's categorical head is trained on real images against their
  dataset labels. ``false``: the paper's unsupervised InfoGAN, Q's categorical loss on generated images only.
- ``code_loss: book`` (the listing's ``mi_loss`` on a sigmoid head, although c can be negative: for c < 0 the loss
  is minimised by q -> 0, bounded by the 1e-7, so it can go negative and the head learns the sign of c weighted
  by |c|). ``gaussian``: the paper's factored Gaussian Q with unit variance, i.e. ``0.5 * (c - mu)^2`` with mu the
  raw head output.
- ``code_loss_on_real: true`` (book): D's code losses include the real half, whose codes are random numbers
  unrelated to the images (``real_code1/2``); ``false`` masks them.

Other objectives replace the real/fake term, with what they need (``algorithms/needs.py``) applied to D's source
score: ``wgan``'s weight clipping of all of D (trunk and heads, as the book clips every critic weight) after its
update, ``wgan-gp``'s penalty on the source score of interpolated images (logged ``gp``), the relativistic objectives'
real source scores in G's loss (an extra pass of the step's real batch through the frozen D). Auto-encoder objectives
(ebgan, began) are refused: this D is a classifier with Q heads.
"""
from __future__ import annotations

import contextlib
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import check_names, layout_labels, row_shared, traversal, unknown_controls
from .latent import LatentDist, draw_latent
from .needs import check_needs

KERAS_EPSILON = 1e-7


def book_mi_loss(code: torch.Tensor, q_raw: torch.Tensor) -> torch.Tensor:
    """The listing's ``mi_loss(c, q) = K.mean(-K.sum(K.log(q + K.epsilon()) * c, axis=1))`` with q = sigmoid of the
    head's raw output; ``code`` and ``q_raw`` are B (or B x 1). Computed in fp32."""
    q = torch.sigmoid(q_raw.float().reshape(len(q_raw), -1))
    c = code.float().reshape(len(code), -1)
    return (-(torch.log(q + KERAS_EPSILON) * c).sum(1)).mean()


def gaussian_code_loss(code: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``code`` under N(mean, 1), constants dropped (the paper's factored Gaussian Q)."""
    diff = code.float().reshape(len(code), -1) - mean.float().reshape(len(mean), -1)
    return (0.5 * diff.pow(2).sum(1)).mean()


CODE_LOSSES = {"book": book_mi_loss, "gaussian": gaussian_code_loss}


def _categories(num_categories: int, data: DataInfo) -> int:
    """Size of the categorical code: set explicitly, else the data's class count (10 digits), else 10."""
    if num_categories:
        return num_categories
    return data.num_classes if data.num_classes >= 2 else 10


@register_algorithm
class InfoGAN(Algorithm):
    name = "infogan"
    source = "seed 004 section 10.2, infogan-mnist-6.1.1.py listings 6.1.1-6.1.4 (spec 5); Chen et al. 2016"
    needs_labels = False   # checked in __init__: only the book's supervised mode needs them
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.AFTER_D_STEP, Need.REAL_SCORES_IN_G,
                                 Need.JOINT_D_LOSS})
    refused_because = {Need.ENERGY_D: "its D is the infogan-book classifier with Q heads, not an auto-encoder",
                       Need.PULLAWAY_TERM: "its D has no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 62,
                 latent_dist: LatentDist = "uniform", latent_std: float = 1.0, num_categories: int = 0,
                 num_codes: int = 2, code_std: float = 0.5, code_loss: Literal["book", "gaussian"] = "book",
                 label_weight: float = 1.0, code_weight: float = 0.5, supervised: bool = True,
                 code_loss_on_real: bool = True, fake_bn: Literal["train", "eval"] = "train"):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        if data.kind != "image":
            raise DataError("infogan's discriminator is the book's convolutional one (infogan-book): it needs image "
                            "data such as mnist5k, not vectors")
        if latent_dim < 1 or num_codes < 0 or code_std <= 0 or latent_std <= 0:
            raise ConfigError(f"algorithm: latent_dim must be >= 1, num_codes >= 0, code_std and latent_std > 0 "
                              f"(got {latent_dim}, {num_codes}, {code_std}, {latent_std})")
        if label_weight < 0 or code_weight < 0:
            raise ConfigError(f"algorithm: label_weight and code_weight must be >= 0 "
                              f"(got {label_weight}, {code_weight})")
        if num_categories and num_categories < 2:
            raise ConfigError(f"algorithm.num_categories must be >= 2 (or 0: the data's classes), got {num_categories}")
        self.num_categories = _categories(num_categories, data)
        if supervised:
            if data.num_classes < 2:
                raise DataError("infogan with algorithm.supervised=true (the book's) trains the categorical code "
                                "on the dataset labels, but this data has none; use labelled data or "
                                "--set algorithm.supervised=false (the paper's unsupervised InfoGAN)")
            if self.num_categories != data.num_classes:
                raise ConfigError(f"algorithm.num_categories={num_categories} but the data has {data.num_classes} "
                                  "classes; with supervised=true they must match (leave num_categories at 0)")
        D = self.nets["D"]
        if not hasattr(D, "num_codes"):
            raise ConfigError("infogan needs a discriminator with a Q network: networks.D.arch=infogan-book")
        if D.num_codes != num_codes or getattr(D, "num_classes", self.num_categories) != self.num_categories:
            raise ConfigError("networks.D has its own num_codes/num_classes; set algorithm.num_codes / "
                              "algorithm.num_categories instead (the networks take them from the algorithm)")
        self.latent_dim, self.latent_dist, self.latent_std = latent_dim, latent_dist, latent_std
        self.num_codes, self.code_std, self.code_loss = num_codes, code_std, code_loss
        self.label_weight, self.code_weight = label_weight, code_weight
        self.supervised, self.code_loss_on_real, self.fake_bn = supervised, code_loss_on_real, fake_bn
        self.code_names = tuple(f"c{k + 1}" for k in range(num_codes))

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        ctx = super().network_context(params, data)
        k = _categories(params.get("num_categories", 0), data)
        codes = params.get("num_codes", cls.default_param("num_codes"))
        ctx["G"].update(latent_dim=params.get("latent_dim", cls.default_param("latent_dim")), cond_dim=k + codes)
        ctx["D"].update(num_classes=k, num_codes=codes)
        return ctx

    # ---------------------------------------------------------------------------------------- training
    def noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return draw_latent(n, self.latent_dim, self.latent_dist, self.latent_std, device, generator)

    def draw_codes(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        """Continuous codes c_k ~ N(0, code_std^2), n x num_codes (each ``np.random.normal(scale=0.5, size=[n, 1])``)."""
        return draw_latent(n, self.num_codes, "normal", self.code_std, device, generator)

    def fake_inputs(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, categorical code, continuous codes) for a training batch, from the (checkpointed) global RNG."""
        z = self.noise(n, device)
        label = torch.randint(self.num_categories, (n,), device=device)   # np.eye(10)[np.random.choice(10, n)]
        return z, label, self.draw_codes(n, device)

    def condition(self, label: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The generator's extra inputs after z: [one-hot categorical code, c1, c2, ...] (listing 6.1.1 order)."""
        return torch.cat([F.one_hot(label, self.num_categories).to(codes.dtype), codes], 1)

    def code_terms(self, codes: torch.Tensor, q: torch.Tensor) -> list[torch.Tensor]:
        loss = CODE_LOSSES[self.code_loss]
        return [loss(codes[:, k], q[:, k]) for k in range(self.num_codes)]

    def discriminator_step(self, ctx: StepContext) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        batch = ctx.real_batch()
        real, n = batch.x, len(batch.x)
        z, fake_label, fake_codes = self.fake_inputs(n, real.device)
        real_codes = self.draw_codes(n, real.device)     # the listing's real_code1/2: unrelated to the images
        bn = eval_mode(G) if self.fake_bn == "eval" else contextlib.nullcontext()
        with torch.no_grad(), bn, ctx.autocast():
            fake = G(z, self.condition(fake_label, fake_codes))
        with ctx.autocast():
            out = D(torch.cat([real, fake.to(real.dtype)]))
        # One update on the 2n batch: each Keras loss is a mean over all 2n samples.
        src_loss = 0.5 * obj.d_loss(out.source[:n], out.source[n:])
        if self.supervised:
            label_logits, label_target = out.label, torch.cat([batch.y, fake_label])
        else:
            label_logits, label_target = out.label[n:], fake_label
        label_loss = F.cross_entropy(label_logits.float(), label_target)
        if self.code_loss_on_real:
            code_losses = self.code_terms(torch.cat([real_codes, fake_codes]), out.code)
        else:
            code_losses = self.code_terms(fake_codes, out.code[n:])
        loss = src_loss + self.label_weight * label_loss + self.code_weight * sum(code_losses)
        penalty_logs: dict[str, torch.Tensor] = {}
        ctx.update("D", self.needs.penalty(loss, lambda x: D(x).source, real, fake, penalty_logs))
        self.needs.clip(D)
        logs = {"d_loss": loss.detach(), "d_src_loss": src_loss.detach(), "d_label_loss": label_loss.detach(),
                "d_label_acc": (label_logits.detach().argmax(1) == label_target).float().mean(),
                "d_real": out.source[:n].detach().float().mean(), "d_fake": out.source[n:].detach().float().mean()}
        logs.update({f"d_{name}_loss": v.detach() for name, v in zip(self.code_names, code_losses)})
        logs.update(penalty_logs)
        self.needs.after_d_step(out.source[:n], out.source[n:], logs)
        return logs, real

    def generator_step(self, ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One G update on a fresh fake batch as large as the step's real batch ``real``, which D scores too when
        the objective's G loss compares fakes with reals (relativistic ones)."""
        G, D, obj = self.nets["G"], self.nets["D"], self.objective
        z, label, codes = self.fake_inputs(len(real), real.device)
        with frozen(D):
            with ctx.autocast():
                out = D(G(z, self.condition(label, codes)))
                real_src = self.needs.real_scores(lambda: D(real).source)
            src_loss = obj.g_loss(out.source, real_src)
            label_loss = F.cross_entropy(out.label.float(), label)
            code_losses = self.code_terms(codes, out.code)
            loss = src_loss + self.label_weight * label_loss + self.code_weight * sum(code_losses)
            ctx.update("G", loss)
        logs = {"g_loss": loss.detach(), "g_src_loss": src_loss.detach(), "g_label_loss": label_loss.detach(),
                "g_label_acc": (out.label.detach().argmax(1) == label).float().mean()}
        logs.update({f"g_{name}_loss": v.detach() for name, v in zip(self.code_names, code_losses)})
        return logs

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        logs: dict[str, torch.Tensor | float]
        logs, real = self.discriminator_step(ctx)
        logs.update(self.generator_step(ctx, real))
        return logs

    # ---------------------------------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """Controls: ``label``/``labels`` set the categorical code (a row per value with ``labels``);
        ``traverse=("c1", lo, hi)`` sweeps a continuous code along each row with everything else fixed along the
        row; ``fix={"c2": 0}`` holds codes constant; ``share_noise`` repeats z and the codes down each column."""
        model = "'infogan'"
        unknown_controls(controls, ("label", "labels", "traverse", "fix", "share_noise"), model)
        fix = controls.get("fix") or {}
        check_names(fix, self.code_names, "--fix", model)
        trav = traversal(n, controls)
        if trav is not None:
            check_names({trav[0]: None}, self.code_names, "--code", model)
        k = self.num_categories
        if controls.get("label") is not None or controls.get("labels"):
            label = layout_labels(n, k, controls, generator)
        elif trav is not None:   # a traversal row keeps one categorical code
            label = row_shared(n, controls, lambda m: torch.randint(k, (m,), generator=generator))
        else:
            label = torch.randint(k, (n,), generator=generator)
        z = row_shared(n, controls, lambda m: self.noise(m, torch.device("cpu"), generator))
        columns = []
        for name in self.code_names:
            if name in fix:
                columns.append(torch.full((n,), float(fix[name])))
            elif trav is not None and trav[0] == name:
                columns.append(trav[1].float())
            else:
                columns.append(row_shared(n, controls, lambda m: torch.randn(m, generator=generator) * self.code_std))
        codes = torch.stack(columns, 1) if columns else torch.zeros(n, 0)
        return {"z": z.to(device), "label": label.to(device), "codes": codes.to(device)}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        G = (nets or self.nets)["G"]
        return G(inputs["z"], self.condition(inputs["label"], inputs["codes"].to(inputs["z"].dtype)))

    def sample_labels(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The categorical code of each sample (what npz ``labels`` holds)."""
        return inputs["label"]
