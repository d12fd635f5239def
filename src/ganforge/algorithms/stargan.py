"""StarGAN: one generator G(x, c) translating an image into any of several domains, one discriminator with a source
head and a domain classification head; with the mask vector, trained on several datasets with different label sets.

Source: seed 002 chapter 3 part 2 (spec 27: a single G conditioned on the target domain label replaces CycleGAN's
one generator per pair of domains; D also classifies the domain; the input is recovered by translating back to the
original domain; several datasets at once with a mask vector). The losses and the step are the paper's, Choi et al.
2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation" (CVPR),
section 3 (eqs. 1-7) and 3.2, in the official code's form (yunjey/stargan ``solver.py``):

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

Not in the paper, off by default (``lambda_id`` 0): an identity term lambda_id |x - G(x, c')|_1 in L_G (translating
an image to its own domain leaves it as it is), CycleGAN's identity loss (Zhu et al. 2017 section 5.2, after Taigman
et al. 2017) in StarGAN's terms; the CPU-budget digit recipe uses it (its comments say why).

The condition (one dataset): the data's ``domain`` field (single-label; ``algorithm.domains`` names them in index
order), else its ``attributes`` (multi-hot, CelebA; ``algorithm.attributes`` may name them), else its class ``label``
(the classes as domains).

The mask vector (section 3.2; several datasets, ``algorithm.datasets``): each entry names a dataset's stream
(``main`` = data.source, or a name of data.streams) and its label set (``domains: [...]`` or ``attributes: [...]``,
read from that stream's data as above), e.g. CelebA's attributes and RaFD's expressions. The condition is
``[c_1 | c_2 | ... | c_n | m]``: every dataset's labels side by side, those of the datasets the image is not from
set to zero, then m, the one-hot of the image's dataset; D_cls has one logit per label of every dataset (not the
mask), and L_cls is computed only on the logits and labels of the image's own dataset (the official code's
``out_cls[:, :c_dim]`` / ``out_cls[:, c_dim:]``). The step, as the official ``train_multi``: each of the
``n_critic`` rounds does one D update per dataset in turn (each on that dataset's own batch and shuffled targets);
in the last round each dataset's D update is followed by a G update on the same batch. Translation (``to`` /
``attrs``) and grids reach the domains of every dataset: the condition then carries that dataset's mask (a name
two datasets share is given as DATASET/NAME). The held-out images (``data.held_out``) are taken to be the first
dataset's, as the official code's fixed CelebA batch. A fresh run checks the main data's domain names against its
entry's (``setup`` sees only the main data; a stream's are taken as given).

Progress grids come from the held-out batch (``data.held_out``, else the main data): the input, then the input
translated to each domain (single-label; the first 5 of each dataset) or with each attribute flipped (multi-hot; the
first 5), and for datasets other than the held-out's own, with each of their attributes set alone.

The generator must let c reach its output: the builder probes G(x, c) with two conditions and refuses a G whose
output does not depend on c (``resnet-translator`` with instance norm: its reflection padding keeps the condition
planes constant and instance norm removes constants; ``models/stargan.py`` explains).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, eval_mode, frozen, register_algorithm
from .controls import unknown_controls
from .needs import check_needs

PANEL_DOMAINS = 5     # the most target columns a progress grid shows per dataset
PROBE_SIDE = 32       # the largest image side of the build-time probe that G's output depends on c
HELD_OUT = "held_out"  # config.HELD_OUT: the grid stream, never a dataset


def condition_source(data: DataInfo, where: str = "the data") -> str:
    """Which batch key carries the domain: ``domain``, ``attributes`` or ``label`` (first that the data yields)."""
    keys = set(data.keys) | set(data.field_shapes)
    for key in ("domain", "attributes"):
        if key in keys:
            return key
    if data.num_classes > 1:
        return "label"
    raise DataError(f"algorithm 'stargan' translates between domains, but {where} has no domain field, attributes "
                    "or class labels; use e.g. --data 'mnist5k?domains=plain,negative,edges' or "
                    "--data 'celeba:DIR?attrs=Black_Hair,Blond_Hair,Brown_Hair,Male,Young'")


def domain_names(data: DataInfo, domains: Sequence[str] | None, attributes: Sequence[str] | None,
                 where: str = "algorithm") -> list[str]:
    """The names of the n_c condition entries, checked against the data (their count is the condition's size)."""
    key = condition_source(data)
    if key == "attributes":
        (count,) = data.field_shapes["attributes"]
        names = list(attributes) if attributes else [f"attribute{i}" for i in range(count)]
        if len(names) != count:
            raise ConfigError(f"{where}.attributes names {len(names)} attributes but the data has {count}")
        return names
    if key == "label":
        return list(data.class_names or [str(i) for i in range(data.num_classes)])
    if not domains or len(domains) < 2:
        raise ConfigError(f"algorithm 'stargan' on data with a domain field needs {where}.domains: the domain names "
                          "in the data's index order, e.g. [plain, negative, edges]")
    return list(domains)


@dataclass(frozen=True)
class LabelSet:
    """One dataset's part of the condition: its stream, the batch key of its labels, their names, and where its
    entries start in the condition and in D_cls's logits (``offset``); ``index`` is its place in the mask."""

    name: str
    stream: str
    key: str
    names: tuple[str, ...]
    offset: int
    index: int

    @property
    def multi_label(self) -> bool:
        return self.key == "attributes"

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def part(self) -> slice:
        return slice(self.offset, self.offset + self.size)


DATASET_KEYS = ("stream", "name", "domains", "attributes")


def label_sets(data: DataInfo, domains: Sequence[str] | None = None, attributes: Sequence[str] | None = None,
               datasets: Sequence[Mapping[str, Any]] | None = None) -> list[LabelSet]:
    """The label sets of the condition: one (the main data's) without ``datasets``, else one per entry (the mask)."""
    if not datasets:
        key = condition_source(data)
        return [LabelSet("main", "main", key, tuple(domain_names(data, domains, attributes)), 0, 0)]
    if domains or attributes:
        raise ConfigError("algorithm.datasets gives each dataset its own domains / attributes; remove "
                          "algorithm.domains and algorithm.attributes")
    if isinstance(datasets, (str, bytes)) or not isinstance(datasets, Sequence) or len(datasets) < 2:
        raise ConfigError("algorithm.datasets lists two or more datasets, e.g. [{stream: main, domains: [plain, "
                          "negative]}, {stream: b, domains: [edges, thick]}] (one dataset: use algorithm.domains)")
    sets: list[LabelSet] = []
    offset = 0
    for i, entry in enumerate(datasets):
        where = f"algorithm.datasets[{i}]"
        if not isinstance(entry, Mapping) or "stream" not in entry:
            raise ConfigError(f"{where} must be a mapping with stream: main (data.source) or a data.streams name, "
                              "and domains: [...] or attributes: [...]")
        unknown = [k for k in entry if k not in DATASET_KEYS]
        if unknown:
            raise ConfigError(f"{where} has unknown key {unknown[0]!r}; it takes {', '.join(DATASET_KEYS)}")
        stream = str(entry["stream"])
        if stream == HELD_OUT:
            raise ConfigError(f"{where} reads stream '{HELD_OUT}', which is never trained on (grids and evaluation "
                              "only); name a data.streams stream or main")
        info = data if stream == "main" else data.streams.get(stream)
        if info is None:
            raise DataError(f"{where} reads data stream '{stream}', which the config lacks; add it with --set "
                            f"data.streams.{stream}.source=SOURCE")
        if tuple(info.sample_shape) != tuple(data.sample_shape):
            raise DataError(f"{where}: stream '{stream}' holds {'x'.join(map(str, info.sample_shape))} images but "
                            f"data.source {'x'.join(map(str, data.sample_shape))}; one generator takes both: set "
                            f"data.streams.{stream}.channels / image_size to match")
        key = condition_source(info, f"data stream '{stream}'")
        names = domain_names(info, entry.get("domains"), entry.get("attributes"), where)
        sets.append(LabelSet(str(entry.get("name", stream)), stream, key, tuple(names), offset, i))
        offset += len(names)
    for what, values in (("stream", [s.stream for s in sets]), ("name", [s.name for s in sets])):
        twice = next((v for v in values if values.count(v) > 1), None)
        if twice is not None:
            raise ConfigError(f"algorithm.datasets names the {what} '{twice}' twice; each dataset needs its own")
    if "main" not in [s.stream for s in sets]:
        raise ConfigError("algorithm.datasets must include the main data (an entry with stream: main)")
    return sets


def condition_dims(sets: Sequence[LabelSet]) -> tuple[int, int]:
    """(G's condition size, D_cls's logits): every dataset's labels, plus the mask's entries when there are several."""
    labels = sum(s.size for s in sets)
    return labels + (len(sets) if len(sets) > 1 else 0), labels


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
                 lambda_cls: float = 1.0, lambda_rec: float = 10.0, n_critic: int = 5, lambda_id: float = 0.0,
                 domains: Sequence[str] | None = None, attributes: Sequence[str] | None = None,
                 datasets: Sequence[Mapping[str, Any]] | None = None):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        for key, value in (("lambda_cls", lambda_cls), ("lambda_rec", lambda_rec), ("lambda_id", lambda_id)):
            if not value >= 0:
                raise ConfigError(f"algorithm.{key} must be >= 0 (the paper: lambda_cls 1, lambda_rec 10; lambda_id, "
                                  f"not the paper's, 0), got {value}")
        if not (isinstance(n_critic, int) and n_critic >= 1):
            raise ConfigError(f"algorithm.n_critic must be an integer >= 1 (the paper: 5), got {n_critic}")
        self.lambda_cls, self.lambda_rec, self.n_critic, self.lambda_id = lambda_cls, lambda_rec, n_critic, lambda_id
        self.sets = label_sets(data, domains, attributes, datasets)
        self.cond_dim, self.n_labels = condition_dims(self.sets)
        first = self.sets[0]
        # One dataset: the names of its condition entries (what translate's to= / attrs= take).
        self.condition_key, self.multi_label, self.names = first.key, first.multi_label, list(first.names)
        check_condition_reaches(self.nets["G"], data, self.cond_dim)

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """G takes the image and the condition (with the mask, if several datasets); D classifies every label."""
        ctx = super().network_context(params, data)
        g_dim, d_dim = condition_dims(label_sets(data, params.get("domains"), params.get("attributes"),
                                                 params.get("datasets")))
        ctx["G"].update(cond_dim=g_dim)
        ctx["D"].update(cond_dim=d_dim)
        return ctx

    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        """Checks that the main data's domain indices and names fit its label set's domains."""
        main = next(s for s in self.sets if s.stream == "main")
        if main.key == "domain":
            top = int(dataset.fields["domain"].max())
            named = dataset.meta.get("domains")
            if top >= main.size or (named and list(named) != list(main.names)):
                where = "algorithm.domains" if len(self.sets) == 1 else f"algorithm.datasets[{main.index}].domains"
                raise ConfigError(f"{where} is [{', '.join(main.names)}] but the data's domains are "
                                  f"[{', '.join(named) if named else f'0..{top}'}]; name them in the data's order")
        if len(self.sets) == 1:
            return {"domains": ", ".join(self.names)}
        return {"datasets": "; ".join(f"{s.name} ({s.stream}): {', '.join(s.names)}" for s in self.sets)}

    @property
    def n_c(self) -> int:
        return self.cond_dim

    # -- conditions ----------------------------------------------------------------------------------------------------
    def own_labels(self, batch: Any, label_set: LabelSet | None = None) -> torch.Tensor:
        """The batch's labels in its dataset's own terms: N x size (one-hot of its domain or label, or attributes)."""
        s = label_set or self.sets[0]
        value = batch[s.key]
        if s.multi_label:
            return value.float()
        return F.one_hot(value.long(), s.size).float()

    def full_condition(self, labels: torch.Tensor, label_set: LabelSet | None = None) -> torch.Tensor:
        """N x cond_dim: ``labels`` (N x the set's size) at the set's place, the other datasets' labels zero, then
        the mask (one-hot of the set) when there are several datasets. One dataset: ``labels`` as they are."""
        s = label_set or self.sets[0]
        if len(self.sets) == 1:
            return labels
        c = labels.new_zeros(len(labels), self.cond_dim)
        c[:, s.part] = labels
        c[:, self.n_labels + s.index] = 1.0
        return c

    def condition(self, batch: Any, label_set: LabelSet | None = None) -> torch.Tensor:
        """The batch's own condition c': N x cond_dim (its labels at its dataset's place, with the mask)."""
        return self.full_condition(self.own_labels(batch, label_set), label_set)

    def shuffled_targets(self, original: torch.Tensor) -> torch.Tensor:
        """The target conditions: the batch's own, in a random order (the official code's choice)."""
        return original[torch.randperm(len(original), device=original.device)]

    # -- losses (also what the unit tests check against direct computation) -----------------------------------------
    def classification_loss(self, logits: torch.Tensor, target: torch.Tensor,
                            label_set: LabelSet | None = None) -> torch.Tensor:
        """Cross-entropy over the domains (single-label), or per-attribute binary cross-entropy summed over the
        attributes and averaged over the batch (multi-hot), of D_cls's logits against a condition; with several
        datasets, only on the logits and labels of ``label_set`` (the others are unknown for its images)."""
        s = label_set or self.sets[0]
        logits, target = logits.float()[:, s.part], target[:, s.part]
        if s.multi_label:
            return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / len(logits)
        return F.cross_entropy(logits, target.argmax(1))

    def classification_accuracy(self, logits: torch.Tensor, target: torch.Tensor,
                                label_set: LabelSet | None = None) -> torch.Tensor:
        """Share of right domains (single-label) or of right attributes (multi-hot) in D_cls's logits."""
        s = label_set or self.sets[0]
        logits, target = logits[:, s.part], target[:, s.part]
        if s.multi_label:
            return ((logits > 0).float() == target).float().mean()
        return (logits.argmax(1) == target.argmax(1)).float().mean()

    def discriminator_losses(self, real_out: Any, fake_out: Any, c_org: torch.Tensor,
                             label_set: LabelSet | None = None) -> dict[str, torch.Tensor]:
        """L_D without the penalty (the needs add it): d(D_src(x), D_src(G(x, c))) + lambda_cls L_cls(D_cls(x), c')."""
        adv = self.objective.d_loss(real_out.source, fake_out.source)
        cls = self.classification_loss(real_out.classes, c_org, label_set)
        return {"d_loss": adv + self.lambda_cls * cls, "d_adv": adv, "d_cls": cls}

    def generator_losses(self, real: torch.Tensor, rec: torch.Tensor, fake_out: Any, c_trg: torch.Tensor,
                         real_source: torch.Tensor | None = None, label_set: LabelSet | None = None,
                         same: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """L_G = adv(D_src(G(x, c))) + lambda_cls L_cls(D_cls(G(x, c)), c) + lambda_rec |x - G(G(x, c), c')|_1
        (+ lambda_id |x - G(x, c')|_1 with ``same`` = G(x, c'), when lambda_id > 0)."""
        adv = self.objective.g_loss(fake_out.source, real_source)
        cls = self.classification_loss(fake_out.classes, c_trg, label_set)
        rec_loss = (real.float() - rec.float()).abs().mean()
        total = adv + self.lambda_cls * cls + self.lambda_rec * rec_loss
        parts = {"g_adv": adv, "g_cls": cls, "rec": rec_loss}
        if same is not None:
            parts["identity"] = (real.float() - same.float()).abs().mean()
            total = total + self.lambda_id * parts["identity"]
        return {"g_loss": total, **parts}

    # -- training ------------------------------------------------------------------------------------------------------
    def discriminator_step(self, ctx: StepContext,
                           label_set: LabelSet | None = None) -> tuple[dict[str, torch.Tensor], Any]:
        """One D update on a fresh batch of ``label_set``'s stream; returns its logs and (x, c', c) for G."""
        s = label_set or self.sets[0]
        G, D = self.nets["G"], self.nets["D"]
        batch = ctx.real_batch(s.stream)
        real = batch.x
        labels = self.own_labels(batch, s)
        c_org = self.full_condition(labels, s)
        c_trg = self.full_condition(self.shuffled_targets(labels), s)
        logs: dict[str, Any] = {}
        with ctx.autocast():
            with torch.no_grad():
                fake = G(real, c_trg)
            real_out, fake_out = D(real), D(fake)
        parts = self.discriminator_losses(real_out, fake_out, c_org, s)
        loss = self.needs.penalty(parts["d_loss"], lambda x: D(x).source, real, fake, logs)
        ctx.update("D", loss)
        self.needs.clip(D)
        with torch.no_grad():
            accuracy = self.classification_accuracy(real_out.classes, c_org, s)
        logs.update({k: v.detach() for k, v in parts.items()}, d_loss=loss.detach(), d_cls_acc=accuracy)
        return logs, (real, c_org, c_trg)

    def generator_step(self, ctx: StepContext, real: torch.Tensor, c_org: torch.Tensor, c_trg: torch.Tensor,
                       label_set: LabelSet | None = None) -> dict[str, torch.Tensor]:
        """One G update on a D step's batch and targets: D's weights frozen, gradients flow through it to G."""
        G, D = self.nets["G"], self.nets["D"]
        with frozen(D), ctx.autocast():
            fake = G(real, c_trg)
            rec = G(fake, c_org)
            fake_out = D(fake)
            real_source = self.needs.real_scores(lambda: D(real).source)
            same = G(real, c_org) if self.lambda_id > 0 else None
        parts = self.generator_losses(real, rec, fake_out, c_trg, real_source, label_set, same)
        ctx.update("G", parts["g_loss"])
        return {k: v.detach() for k, v in parts.items()}

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """``n_critic`` rounds of one D update per dataset; in the last round each dataset's D update is followed by
        a G update on its batch (one dataset: n_critic D updates, then G on the last one's batch). The logs are
        means over the updates; with several datasets also D's accuracy and G's cls loss per dataset."""
        d_sums: dict[str, torch.Tensor] = {}
        g_sums: dict[str, torch.Tensor] = {}
        per_set: dict[str, torch.Tensor] = {}
        several = len(self.sets) > 1
        for round_ in range(self.n_critic):
            for s in self.sets:
                d_logs, (real, c_org, c_trg) = self.discriminator_step(ctx, s)
                for k, v in d_logs.items():
                    d_sums[k] = d_sums.get(k, 0) + torch.as_tensor(v)
                if several:
                    per_set[f"d_cls_acc_{s.name}"] = per_set.get(f"d_cls_acc_{s.name}", 0) + d_logs["d_cls_acc"]
                if round_ == self.n_critic - 1:
                    g_logs = self.generator_step(ctx, real, c_org, c_trg, s)
                    for k, v in g_logs.items():
                        g_sums[k] = g_sums.get(k, 0) + v
                    if several:
                        per_set[f"g_cls_{s.name}"] = g_logs["g_cls"]
        d_count, g_count = self.n_critic * len(self.sets), len(self.sets)
        logs: dict[str, torch.Tensor | float] = {k: v / d_count for k, v in d_sums.items()}
        logs.update({k: v / g_count for k, v in g_sums.items()})
        logs.update({k: v / self.n_critic if k.startswith("d_") else v for k, v in per_set.items()})
        return logs

    # -- sampling from data and translating ----------------------------------------------------------------------------
    def _domain_of(self, to: Any) -> tuple[LabelSet, int]:
        """The single-label set and index of the domain ``to``: a name, ``DATASET/NAME``, or an index into every
        single-label dataset's domains in order."""
        domains = [(s, k) for s in self.sets if not s.multi_label for k in range(s.size)]
        if not domains:
            raise ConfigError(f"'{self.name}' was trained on attributes ({', '.join(self.all_names())}): give attrs="
                              "[names to set], not to=")
        text = str(to)
        hits = [(s, k) for s, k in domains if text in (s.names[k], f"{s.name}/{s.names[k]}")]
        if len(hits) > 1:
            raise ConfigError(f"domain {text!r} is in datasets {', '.join(s.name for s, _ in hits)}; give "
                              f"to={hits[0][0].name}/{text} (DATASET/NAME)")
        if hits:
            return hits[0]
        if text.isdigit() and int(text) < len(domains):
            return domains[int(text)]
        known = [self.qualified(s, k) for s, k in domains]
        raise ConfigError(f"unknown domain {to!r}; the model translates to {', '.join(known)} "
                          f"(or their indices 0..{len(domains) - 1})")

    def evaluation_targets(self) -> list[Any] | None:
        """Every domain of the first dataset (whose images the held-out set holds), when it is single-label: ``eval``
        translates the held-out images to each in turn. Attributes (multi-hot) have no such list: give attrs=."""
        first = self.sets[0]
        return None if first.multi_label else [self.qualified(first, k) for k in range(first.size)]

    def qualified(self, s: LabelSet, k: int) -> str:
        """A domain's or attribute's name as translate takes it: plain, or DATASET/NAME when two datasets share it."""
        name = s.names[k]
        shared = sum(name in other.names for other in self.sets) > 1
        return f"{s.name}/{name}" if shared else name

    def all_names(self) -> list[str]:
        return [self.qualified(s, k) for s in self.sets for k in range(s.size)]

    def _attributes_of(self, attrs: Any) -> tuple[LabelSet, list[int]]:
        """The multi-hot set and indices of the attributes ``attrs`` (names or DATASET/NAME, all of one dataset)."""
        multi = [s for s in self.sets if s.multi_label]
        if not multi:
            raise ConfigError(f"'{self.name}' was trained on single-label domains ({', '.join(self.all_names())}): "
                              "give to=DOMAIN, not attrs=")
        wanted = [attrs] if isinstance(attrs, str) else list(attrs)
        found: list[tuple[LabelSet, int]] = []
        unknown = []
        for a in wanted:
            hits = [(s, k) for s in multi for k in range(s.size) if str(a) in (s.names[k], f"{s.name}/{s.names[k]}")]
            if len(hits) > 1:
                raise ConfigError(f"attribute {a!r} is in datasets {', '.join(s.name for s, _ in hits)}; give "
                                  f"{hits[0][0].name}/{a} (DATASET/NAME)")
            found += hits
            if not hits:
                unknown.append(a)
        if unknown:
            known = [self.qualified(s, k) for s in multi for k in range(s.size)]
            raise ConfigError(f"unknown attribute(s) {', '.join(map(str, unknown))}; the model knows {', '.join(known)}")
        sets = {s.name for s, _ in found}
        if len(sets) > 1:
            raise ConfigError(f"attrs {', '.join(map(str, wanted))} belong to datasets {', '.join(sorted(sets))}; "
                              "one translation sets the attributes of one dataset")
        return found[0][0], [k for _, k in found]

    def target_condition(self, n: int, device: torch.device, to: Any = None, attrs: Any = None) -> torch.Tensor:
        """N x cond_dim condition from ``to`` (a domain's name or index, single-label data) or ``attrs`` (attribute
        names to set; the others 0; multi-hot data); with several datasets, that dataset's mask on."""
        if to is not None and attrs is not None:
            raise ConfigError(f"'{self.name}' takes to=DOMAIN or attrs=[...], not both")
        if attrs is not None:
            s, indices = self._attributes_of(attrs)
            labels = torch.zeros(n, s.size, device=device)
            labels[:, indices] = 1.0
            return self.full_condition(labels, s)
        if to is None:
            if all(s.multi_label for s in self.sets):
                raise ConfigError(f"'{self.name}' needs attrs=[...]: the attributes to set, of "
                                  f"{', '.join(self.all_names())}")
            raise ConfigError(f"'{self.name}' needs to=DOMAIN: one of "
                              f"{', '.join(self.qualified(s, k) for s in self.sets if not s.multi_label for k in range(s.size))}")
        s, index = self._domain_of(to)
        labels = F.one_hot(torch.full((n,), index, dtype=torch.long, device=device), s.size).float()
        return self.full_condition(labels, s)

    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      batch: Any = None, **controls: Any) -> dict[str, torch.Tensor]:
        """The held-out images (the first dataset's), their own condition and a target: ``to`` / ``attrs`` when
        given, else the next domain (single-label) or the first attribute flipped (multi-hot)."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        if batch is None:
            raise ConfigError(f"algorithm '{self.name}' translates images: its samples come from data (the held-out "
                              "batch), not from noise")
        first = self.sets[0]
        if first.key not in batch:
            raise DataError(f"algorithm '{self.name}' needs the held-out images' {first.key} to draw "
                            f"grids; use a held-out source that yields it")
        image = batch["image"][:n].to(device)
        labels = self.own_labels({first.key: batch[first.key][:n].to(device)}, first)
        c_org = self.full_condition(labels, first)
        if controls.get("to") is not None or controls.get("attrs") is not None:
            c_trg = self.target_condition(len(image), device, controls.get("to"), controls.get("attrs"))
        elif first.multi_label:
            flipped = labels.clone()
            flipped[:, 0] = 1 - flipped[:, 0]
            c_trg = self.full_condition(flipped, first)
        else:
            c_trg = self.full_condition(labels.roll(1, dims=1), first)
        return {"image": image, "c_org": c_org, "c_trg": c_trg}

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G"](inputs["image"], inputs["c_trg"])

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """input | per dataset, the input translated to each domain (single-label), or with each attribute flipped
        (multi-hot, the held-out images' own dataset) or set alone (another multi-hot dataset), the first
        PANEL_DOMAINS of each."""
        image, c_org = inputs["image"], inputs["c_org"]
        n = len(image)
        panels = {"input": image}
        for s in self.sets:
            for k in range(min(s.size, PANEL_DOMAINS)):
                name = self.qualified(s, k)
                if s.multi_label and s.index == 0:
                    labels = c_org[:, s.part].clone()
                    labels[:, k] = 1 - labels[:, k]
                    label = f"flip {name}"
                elif s.multi_label:
                    labels = F.one_hot(torch.full((n,), k, dtype=torch.long, device=image.device), s.size).float()
                    label = f"set {name}"
                else:
                    labels = F.one_hot(torch.full((n,), k, dtype=torch.long, device=image.device), s.size).float()
                    label = f"to {name}"
                panels[label] = nets["G"](image, self.full_condition(labels, s))
        return panels

    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  to: Any = None, attrs: Any = None, **controls: Any) -> torch.Tensor:
        """G(x, c): each image to the domain ``to`` (name or index), or with exactly the attributes ``attrs`` set;
        with several datasets, the domain or attributes of any of them (the condition carries its mask)."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        c = self.target_condition(len(inputs), inputs.device, to, attrs)
        return (nets or self.nets)["G"](inputs, c)


@torch.no_grad()
def check_condition_reaches(G: nn.Module, data: DataInfo, cond_dim: int) -> None:
    """Refuse a generator whose output does not depend on its condition: G(x, c) for a fixed probe image x and two
    different conditions, in inference mode (no running statistics change), at most PROBE_SIDE px (a conv net's
    dependence on c does not need the full size). A G whose outputs are all exactly 0 passes (nothing to judge)."""
    if data.kind != "image":
        return
    channels, side = int(data.sample_shape[0]), int(data.sample_shape[-1])
    side = min(side, PROBE_SIDE)
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    x = torch.linspace(-1.0, 1.0, channels * side * side, device=device).view(1, channels, side, side)
    c = torch.zeros(2, cond_dim, device=device)
    c[0, 0] = 1.0
    c[1, -1] = 1.0 if cond_dim > 1 else 0.0
    with eval_mode(G):
        out = G(x.expand(2, -1, -1, -1), c).float()
    # Relative to the output's size: a small-init G without normalisation makes outputs of 1e-4 at the start, and an
    # erased condition leaves only float rounding (1e-5 of the output) between the two.
    scale = float(out.abs().max())
    if scale > 0 and float((out[0] - out[1]).abs().max()) <= 1e-3 * scale:
        arch = type(G).__name__
        raise ConfigError(f"networks.G ({arch}) ignores its condition: G(x, c) is the same for every c (e.g. "
                          "resnet-translator with instance norm: its reflection padding keeps the condition planes "
                          "constant and instance norm removes them); use networks.G.arch=stargan (the paper's G)")
