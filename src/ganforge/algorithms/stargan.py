"""StarGAN: one generator G(x, c) translating an image into any of several domains, one discriminator with a source
head and a domain classification head.

Source: seed 002 chapter 3 part 2 (spec 27: a single G conditioned on the target domain label replaces CycleGAN's
one generator per pair of domains; D also classifies the domain; the input is recovered by translating back to the
original domain). The losses and the step are the paper's, Choi et al. 2018, "StarGAN: Unified Generative
Adversarial Networks for Multi-Domain Image-to-Image Translation" (CVPR), section 3 (eqs. 1-7), in the official
code's form (yunjey/stargan ``solver.py``):

  c = the target domain (one-hot, single-label domains) or target attributes (multi-hot, CelebA), c' = the input's.
  The targets are the batch's own labels shuffled (the official code's ``label_org[randperm]``).

  D step (optimizer group D), ``n_critic`` times per G step, each on a fresh batch:
    L_D = d(D_src(x), D_src(G(x, c))) + lambda_gp GP + lambda_cls L_cls(D_cls(x), c')
  G step (optimizer group G), on the last D step's batch and targets:
    L_G = adv(D_src(G(x, c))) + lambda_cls L_cls(D_cls(G(x, c)), c) + lambda_rec |x - G(G(x, c), c')|_1

with d / adv the objective's losses of D's raw per-patch source scores (the paper: WGAN-GP, ``wgan-gp``, whose
gradient penalty the objective's needs add on the source head: lambda_gp is ``objective.gp_weight``) and L_cls the
domain classification loss: cross-entropy over the domains for single-label data, and for multi-hot attributes the
binary cross-entropy of each attribute summed over attributes and averaged over the batch (the official code's
``binary_cross_entropy_with_logits(..., size_average=False) / N``). |.|_1 is the mean over pixels.
The paper's weights: lambda_cls 1, lambda_rec 10, lambda_gp 10.

The condition: the data's ``domain`` field (single-label; ``algorithm.domains`` names them in index order), else its
``attributes`` (multi-hot, CelebA; ``algorithm.attributes`` may name them), else its class ``label`` (the classes as
domains). Not implemented: the mask vector for training on several datasets with different label sets at once
(the paper's section 3.2, CelebA + RaFD).

Progress grids come from the held-out batch (``data.held_out``, else the main data): the input, then the input
translated to each domain (single-label; the first 5) or with each attribute flipped (multi-hot; the first 5).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import unknown_controls
from .needs import check_needs

PANEL_DOMAINS = 5     # the most target columns a progress grid shows


def condition_source(data: DataInfo) -> str:
    """Which batch key carries the domain: ``domain``, ``attributes`` or ``label`` (first that the data yields)."""
    keys = set(data.keys) | set(data.field_shapes)
    for key in ("domain", "attributes"):
        if key in keys:
            return key
    if data.num_classes > 1:
        return "label"
    raise DataError("algorithm 'stargan' translates between domains, but the data has no domain field, attributes or "
                    "class labels; use e.g. --data 'mnist5k?domains=plain,negative,edges' or "
                    "--data 'celeba:DIR?attrs=Black_Hair,Blond_Hair,Brown_Hair,Male,Young'")


def domain_names(data: DataInfo, domains: Sequence[str] | None, attributes: Sequence[str] | None) -> list[str]:
    """The names of the n_c condition entries, checked against the data (their count is the condition's size)."""
    key = condition_source(data)
    if key == "attributes":
        (count,) = data.field_shapes["attributes"]
        names = list(attributes) if attributes else [f"attribute{i}" for i in range(count)]
        if len(names) != count:
            raise ConfigError(f"algorithm.attributes names {len(names)} attributes but the data has {count}")
        return names
    if key == "label":
        return list(data.class_names or [str(i) for i in range(data.num_classes)])
    if not domains or len(domains) < 2:
        raise ConfigError("algorithm 'stargan' on data with a domain field needs algorithm.domains: the domain names "
                          "in the data's index order, e.g. [plain, negative, edges]")
    return list(domains)


@register_algorithm
class StarGAN(Algorithm):
    name = "stargan"
    source = ("seed 002 chapter 3 part 2 (StarGAN); Choi et al. 2018, StarGAN: Unified Generative Adversarial "
              "Networks for Multi-Domain Image-to-Image Translation, section 3; official code yunjey/stargan")
    roles = {"G": "generator", "D": "discriminator"}
    optimizer_groups = {"G": ("G",), "D": ("D",)}
    ema_networks = ("G",)
    sampling_network = "G"
    samples_from_data = True
    translate_controls = ("to", "attrs")
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS})
    refused_because = {Need.AFTER_D_STEP: "its source head is trained with its classification head, not alone",
                       Need.ENERGY_D: "its discriminator is a classifier, not an auto-encoder",
                       Need.PULLAWAY_TERM: "its discriminator has no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo,
                 lambda_cls: float = 1.0, lambda_rec: float = 10.0, n_critic: int = 5,
                 domains: Sequence[str] | None = None, attributes: Sequence[str] | None = None):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        for key, value in (("lambda_cls", lambda_cls), ("lambda_rec", lambda_rec)):
            if not value >= 0:
                raise ConfigError(f"algorithm.{key} must be >= 0 (the paper: lambda_cls 1, lambda_rec 10), got {value}")
        if not (isinstance(n_critic, int) and n_critic >= 1):
            raise ConfigError(f"algorithm.n_critic must be an integer >= 1 (the paper: 5), got {n_critic}")
        self.lambda_cls, self.lambda_rec, self.n_critic = lambda_cls, lambda_rec, n_critic
        self.condition_key = condition_source(data)
        self.multi_label = self.condition_key == "attributes"
        self.names = domain_names(data, domains, attributes)

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """G takes the image and the n_c-entry condition; D classifies into the n_c entries."""
        ctx = super().network_context(params, data)
        n_c = len(domain_names(data, params.get("domains"), params.get("attributes")))
        for key in ("G", "D"):
            ctx[key].update(cond_dim=n_c)
        return ctx

    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        """Checks that the data's domain indices and names fit ``algorithm.domains``."""
        if self.condition_key == "domain":
            top = int(dataset.fields["domain"].max())
            named = dataset.meta.get("domains")
            if top >= len(self.names) or (named and list(named) != self.names):
                raise ConfigError(f"algorithm.domains is [{', '.join(self.names)}] but the data's domains are "
                                  f"[{', '.join(named) if named else f'0..{top}'}]; name them in the data's order")
        return {"domains": ", ".join(self.names)}

    @property
    def n_c(self) -> int:
        return len(self.names)

    # -- conditions ----------------------------------------------------------------------------------------------------
    def condition(self, batch: Any) -> torch.Tensor:
        """The batch's own condition c': N x n_c float (one-hot of its domain or label, or its attributes)."""
        value = batch[self.condition_key]
        if self.multi_label:
            return value.float()
        return F.one_hot(value.long(), self.n_c).float()

    def shuffled_targets(self, original: torch.Tensor) -> torch.Tensor:
        """The target conditions: the batch's own, in a random order (the official code's choice)."""
        return original[torch.randperm(len(original), device=original.device)]

    # -- losses (also what the unit tests check against direct computation) -----------------------------------------
    def classification_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the domains (single-label), or per-attribute binary cross-entropy summed over the
        attributes and averaged over the batch (multi-hot), of D_cls's logits against a condition."""
        logits = logits.float()
        if self.multi_label:
            return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / len(logits)
        return F.cross_entropy(logits, target.argmax(1))

    def discriminator_losses(self, real_out: Any, fake_out: Any, c_org: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_D without the penalty (the needs add it): d(D_src(x), D_src(G(x, c))) + lambda_cls L_cls(D_cls(x), c')."""
        adv = self.objective.d_loss(real_out.source, fake_out.source)
        cls = self.classification_loss(real_out.classes, c_org)
        return {"d_loss": adv + self.lambda_cls * cls, "d_adv": adv, "d_cls": cls}

    def generator_losses(self, real: torch.Tensor, rec: torch.Tensor, fake_out: Any, c_trg: torch.Tensor,
                         real_source: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """L_G = adv(D_src(G(x, c))) + lambda_cls L_cls(D_cls(G(x, c)), c) + lambda_rec |x - G(G(x, c), c')|_1."""
        adv = self.objective.g_loss(fake_out.source, real_source)
        cls = self.classification_loss(fake_out.classes, c_trg)
        rec_loss = (real.float() - rec.float()).abs().mean()
        total = adv + self.lambda_cls * cls + self.lambda_rec * rec_loss
        return {"g_loss": total, "g_adv": adv, "g_cls": cls, "rec": rec_loss}

    # -- training ------------------------------------------------------------------------------------------------------
    def discriminator_step(self, ctx: StepContext) -> tuple[dict[str, torch.Tensor], Any]:
        G, D = self.nets["G"], self.nets["D"]
        batch = ctx.real_batch()
        real = batch.x
        c_org = self.condition(batch)
        c_trg = self.shuffled_targets(c_org)
        logs: dict[str, Any] = {}
        with ctx.autocast():
            with torch.no_grad():
                fake = G(real, c_trg)
            real_out, fake_out = D(real), D(fake)
        parts = self.discriminator_losses(real_out, fake_out, c_org)
        loss = self.needs.penalty(parts["d_loss"], lambda x: D(x).source, real, fake, logs)
        ctx.update("D", loss)
        self.needs.clip(D)
        with torch.no_grad():
            accuracy = self.classification_accuracy(real_out.classes, c_org)
        logs.update({k: v.detach() for k, v in parts.items()}, d_loss=loss.detach(), d_cls_acc=accuracy)
        return logs, (real, c_org, c_trg)

    def classification_accuracy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Share of right domains (single-label) or of right attributes (multi-hot) in D_cls's logits."""
        if self.multi_label:
            return ((logits > 0).float() == target).float().mean()
        return (logits.argmax(1) == target.argmax(1)).float().mean()

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G, D = self.nets["G"], self.nets["D"]
        sums: dict[str, torch.Tensor] = {}
        for _ in range(self.n_critic):
            d_logs, (real, c_org, c_trg) = self.discriminator_step(ctx)
            for k, v in d_logs.items():
                sums[k] = sums.get(k, 0) + torch.as_tensor(v)
        logs: dict[str, torch.Tensor | float] = {k: v / self.n_critic for k, v in sums.items()}

        # G step on the last D step's batch and targets: D's weights frozen, gradients flow through it to G.
        with frozen(D), ctx.autocast():
            fake = G(real, c_trg)
            rec = G(fake, c_org)
            fake_out = D(fake)
            real_source = self.needs.real_scores(lambda: D(real).source)
        parts = self.generator_losses(real, rec, fake_out, c_trg, real_source)
        ctx.update("G", parts["g_loss"])
        logs.update({k: v.detach() for k, v in parts.items()})
        return logs

    # -- sampling from data and translating ----------------------------------------------------------------------------
    def target_condition(self, n: int, device: torch.device, to: Any = None, attrs: Any = None) -> torch.Tensor:
        """N x n_c condition from ``to`` (a domain's name or index, single-label data) or ``attrs`` (attribute
        names to set; the others 0; multi-hot data)."""
        if self.multi_label:
            if to is not None:
                raise ConfigError(f"'{self.name}' was trained on attributes ({', '.join(self.names)}): give attrs="
                                  "[names to set], not to=")
            if attrs is None:
                raise ConfigError(f"'{self.name}' needs attrs=[...]: the attributes to set, of {', '.join(self.names)}")
            wanted = [attrs] if isinstance(attrs, str) else list(attrs)
            unknown = [a for a in wanted if a not in self.names]
            if unknown:
                raise ConfigError(f"unknown attribute(s) {', '.join(map(str, unknown))}; the model knows "
                                  f"{', '.join(self.names)}")
            c = torch.zeros(n, self.n_c, device=device)
            c[:, [self.names.index(a) for a in wanted]] = 1.0
            return c
        if attrs is not None:
            raise ConfigError(f"'{self.name}' was trained on single-label domains ({', '.join(self.names)}): give "
                              "to=DOMAIN, not attrs=")
        if to is None:
            raise ConfigError(f"'{self.name}' needs to=DOMAIN: one of {', '.join(self.names)}")
        index = self.names.index(to) if to in self.names else (int(to) if str(to).isdigit() else -1)
        if not 0 <= index < self.n_c:
            raise ConfigError(f"unknown domain {to!r}; the model translates to {', '.join(self.names)} "
                              f"(or their indices 0..{self.n_c - 1})")
        return F.one_hot(torch.full((n,), index, dtype=torch.long, device=device), self.n_c).float()

    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      batch: Any = None, **controls: Any) -> dict[str, torch.Tensor]:
        """The held-out images, their own condition and a target: ``to`` / ``attrs`` when given, else the next
        domain (single-label) or the first attribute flipped (multi-hot)."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        if batch is None:
            raise ConfigError(f"algorithm '{self.name}' translates images: its samples come from data (the held-out "
                              "batch), not from noise")
        if self.condition_key not in batch:
            raise DataError(f"algorithm '{self.name}' needs the held-out images' {self.condition_key} to draw "
                            f"grids; use a held-out source that yields it")
        image = batch["image"][:n].to(device)
        c_org = self.condition({self.condition_key: batch[self.condition_key][:n].to(device)})
        if controls.get("to") is not None or controls.get("attrs") is not None:
            c_trg = self.target_condition(len(image), device, controls.get("to"), controls.get("attrs"))
        elif self.multi_label:
            c_trg = c_org.clone()
            c_trg[:, 0] = 1 - c_trg[:, 0]
        else:
            c_trg = c_org.roll(1, dims=1)
        return {"image": image, "c_org": c_org, "c_trg": c_trg}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["image"], inputs["c_trg"])

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """input | the input translated to each domain (single-label) or with each attribute flipped (multi-hot),
        the first PANEL_DOMAINS of them."""
        image, c_org = inputs["image"], inputs["c_org"]
        panels = {"input": image}
        for k, name in enumerate(self.names[:PANEL_DOMAINS]):
            if self.multi_label:
                c = c_org.clone()
                c[:, k] = 1 - c[:, k]
                label = f"flip {name}"
            else:
                c = F.one_hot(torch.full((len(image),), k, dtype=torch.long, device=image.device), self.n_c).float()
                label = f"to {name}"
            panels[label] = nets["G"](image, c)
        return panels

    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  to: Any = None, attrs: Any = None, **controls: Any) -> torch.Tensor:
        """G(x, c): each image to the domain ``to`` (name or index), or with exactly the attributes ``attrs`` set."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        c = self.target_condition(len(inputs), inputs.device, to, attrs)
        return (nets or self.nets)["G"](inputs, c)
