"""BigGAN's training step, and S2GAN-CO / S3GAN's with labels for a fraction of the data.

``biggan`` (Brock et al. 2019; seed 002 part 2 section 4 / spec 12) is the class-conditional step of
``algorithms/conditional.py`` (hinge loss, labels to G's conditional BN and to the projection D, ``n_critic`` D steps
per G step) unchanged; what BigGAN adds lives where ganforge keeps it for every family: the shared embedding and
hierarchical z in the networks (``models/biggan.py``), orthogonal regularisation in ``regularize: {orthogonal: {G:
beta}}`` (``algorithms/regularization.py``), R1 on D in ``regularize: {r1: {gamma: ...}}``, the EMA of G in
``train.ema``, truncation in ``ganforge sample --truncation`` (``algorithms/latent_walk.py``: z is resampled whole,
before G splits it into chunks). This class adds the seed's stability monitoring (spec 12.4): the top singular
value sigma_0 of the raw (not spectrally normalised) weight of the layers the networks name in
``spectral_monitor()`` -- G's first linear layer, the one the paper sees grow and explode at collapse, and D's first
convolution -- logged each step as ``sigma0_G.fc`` / ``sigma0_D.conv_in`` with sigma_0 / sigma_1 as ``sigma01_...``
(``torch.linalg.svdvals`` of the weight as an out x in*k*k matrix; under a millisecond at 32 px widths).

``s3gan`` (Lucic et al. 2019, "High-Fidelity Image Generation With Fewer Labels"; seed 002 part 2 section 5 / spec
13) is BigGAN with labels for ``label_fraction`` of the training data:

* the labelled subset: chosen once in ``setup`` (class-balanced, reproducibly from ``labelled_seed``, by
  ``triplegan.choose_labelled``), its indices, images and labels the algorithm's tensor state (``labelled.*`` in
  training.safetensors), so a resumed run keeps it. Nothing else reads the data's labels for training.
* S2GAN-CO: a linear classifier c_CT on D's pooled features D~(x) (``networks.D.classifier_head``), trained with
  cross-entropy on labelled real images only, added to D's loss (weight ``classifier_weight``, 1). Each D step's
  real batch is B images of the data stream whose first ``labelled_rows`` (default round(B * label_fraction), >= 1:
  their share of the data) are replaced by images drawn with replacement from the labelled subset; those rows keep
  their labels, the others get c_CT's argmax prediction (computed without gradient before the D update), and the
  projection D scores every real image with its label. Fakes get uniform labels, as in the conditional step.
* S3GAN adds the rotation self-supervision of Chen et al. 2019 (SS-GAN) as the paper does: the last
  ``rotation_rows`` (default B / 4) real images, each rotated by 0, 90, 180 and 270 degrees, and a 4-way softmax head
  on D~ (``networks.D.rotation_head``) trained to tell the rotation, ``rotation_weight_d`` (beta = 1) times the
  cross-entropy added to D's loss; G's loss adds ``rotation_weight_g`` (alpha = 0.2) times the same cross-entropy of
  its own rotated fakes (D frozen), so G makes images whose rotation D can read. The weights are SS-GAN's (beta 1,
  alpha 0.2; compare_gan's ``weight_rotation_loss_d`` / ``_g``). ``rotation_weight_d = rotation_weight_g = 0`` is
  S2GAN-CO.

S2GAN and the clustering variant (Lucic et al. 2019's *pre-trained* approaches; spec 13.3) are ``biggan`` with
``labels: pretrained`` or ``labels: clusters`` (``labels: data``, the default, is BigGAN on the data's labels): in
``setup`` a network is trained before the GAN on the run's images (``algorithms/label_pretraining.py``: rotation
self-supervision on all images, plus the cross-entropy of a class head on the labelled ``label_fraction`` for
S2GAN; k-means into ``clusters`` groups of its features for the clustering variant), cached and deterministic, and
kept frozen as the algorithm's state ``labeller.*`` (so every checkpoint carries it and a resumed run labels as the
first did). Every real image D sees is then scored with the label that network gives it (the class head's argmax,
or its nearest centroid), computed on the batch under no gradient; nothing else of the step changes. With
``clusters`` the data need no labels: G and D are built for K = ``clusters`` classes (``ganforge sample --labels``
then picks clusters), and the data's own labels, where it has them, only score the clusters in the setup facts.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from ..nn.spectral import weight_as_matrix
from ..objectives import Objective
from .base import DataInfo, StepContext, register_algorithm
from .conditional import Conditional, DUpdate
from .label_pretraining import LabelNet, PretrainSettings, pretrained_labeller
from .latent import LatentDist
from .triplegan import choose_labelled

LabelSource = Literal["data", "pretrained", "clusters"]


def raw_weight(layer: nn.Module) -> torch.Tensor:
    """The trained weight of ``layer``: before spectral normalisation when it has it."""
    parametrizations = getattr(layer, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    return layer.weight


def top_singular_values(layer: nn.Module) -> tuple[float, float]:
    """(sigma_0, sigma_0 / sigma_1) of the raw weight as an out x in*k*k matrix."""
    s = torch.linalg.svdvals(weight_as_matrix(raw_weight(layer).detach().float()))
    return float(s[0]), float(s[0] / s[1]) if len(s) > 1 and s[1] > 0 else float("inf")


@register_algorithm
class BigGAN(Conditional):
    name = "biggan"
    source = ("Brock et al. 2019 (BigGAN): the class-conditional hinge step with the seed's sigma_0 monitoring "
              "(seed 002 part 2 section 4; spec 12)")

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 128,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, n_critic: int = 1,
                 d_update: DUpdate = "sum", fake_bn: Literal["train", "eval"] = "train", mismatch_weight: float = 0.0,
                 monitor_sigma: bool = True, labels: LabelSource = "data", label_fraction: float = 0.1,
                 labelled_seed: int | None = None, clusters: int = 0, pretrain_steps: int = 1500,
                 pretrain_batch_size: int = 32, pretrain_lr: float = 2e-3,
                 pretrain_widths: Sequence[int] = (16, 32, 64), pretrain_seed: int = 0):
        """``labels``: which labels D's real pairs get (module docstring): ``data``; ``pretrained`` (S2GAN, the
        classifier pretrained with ``label_fraction`` of the labels, chosen class-balanced from ``labelled_seed``,
        default the run's seed); ``clusters`` (``clusters`` k-means clusters, default the data's class count).
        ``pretrain_*``: the label network's training (``label_pretraining.PretrainSettings``)."""
        if labels == "clusters":
            data = dataclasses.replace(data, num_classes=self.cluster_count({"clusters": clusters}, data),
                                       class_names=None)
        super().__init__(nets, objective, data, latent_dim, latent_dist, latent_std, n_critic, d_update, fake_bn,
                         mismatch_weight)
        self.monitor_sigma = monitor_sigma
        self.labels = labels
        self.pretraining = PretrainSettings(tuple(int(w) for w in pretrain_widths), pretrain_steps,
                                            pretrain_batch_size, pretrain_lr, pretrain_seed).check()
        if labels == "pretrained" and not 0 < label_fraction <= 1:
            raise ConfigError("algorithm.label_fraction must be in (0, 1] (the paper: 0.1 or 0.2), got "
                              f"{label_fraction}")
        self.label_fraction, self.labelled_seed = label_fraction, labelled_seed
        if labels != "data":
            if data.kind != "image":
                raise ConfigError(f"algorithm.labels={labels} pretrains a convolutional network on rotated images; "
                                  "it needs image data")
            count = self.num_classes
            with torch.random.fork_rng(devices=[]):   # its placeholder weights leave the run's random streams be
                net = LabelNet(data.sample_shape[0], self.pretraining.widths, count if labels == "pretrained" else 0,
                               count if labels == "clusters" else 0)
            self.state_modules["labeller"] = net.freeze()     # frozen here too: a resumed run never calls setup

    @staticmethod
    def cluster_count(params: Mapping[str, Any], data: DataInfo) -> int:
        k = int(params.get("clusters") or data.num_classes)
        if k < 2:
            raise ConfigError("algorithm.labels=clusters needs the number of clusters: set algorithm.clusters (>= 2; "
                              "the data's class count when it has labels)")
        return k

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        if params.get("labels") == "clusters":      # G and D are conditional on the K cluster ids
            data = dataclasses.replace(data, num_classes=cls.cluster_count(params, data))
        return super().network_context(params, data)

    @classmethod
    def needs_labels_with(cls, params: Mapping[str, Any]) -> bool:
        return cls.needs_labels and params.get("labels") != "clusters"

    # ---------------------------------------------------------------------------------------- pretrained labels
    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        facts = super().setup(dataset, device)
        if self.labels == "data":
            return facts
        if not isinstance(getattr(dataset, "x", None), torch.Tensor):
            raise DataError(f"algorithm.labels={self.labels} pretrains on the whole training set in memory, but this "
                            "data is streamed; set data.path=memory (or use a smaller data set)")
        index = y = None
        if self.labels == "pretrained":
            if dataset.y is None:
                raise DataError(f"algorithm.labels=pretrained needs labels for its labelled subset; {dataset.name} "
                                "has none (algorithm.labels=clusters needs none)")
            seed = torch.initial_seed() if self.labelled_seed is None else self.labelled_seed
            count = max(self.num_classes, round(self.label_fraction * len(dataset.y)))
            index = choose_labelled(dataset.y, count, self.num_classes, torch.Generator().manual_seed(seed))
            y = dataset.y[index]
            facts.update(labelled=int(len(index)), labelled_seed=int(seed))
        pre = pretrained_labeller(dataset.x, self.labels, self.num_classes, tuple(self.value_range), self.pretraining,
                                  index, y, dataset.y, name=str(getattr(dataset, "name", "data")))
        self.state_modules["labeller"].load_state_dict(pre.net.state_dict())
        return {**facts, **{f"pretrain_{k}": v for k, v in pre.facts.items()}}

    def real_pairs(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Pretrained labels: the batch's images with the label network's labels (module docstring)."""
        if self.labels == "data":
            return super().real_pairs(ctx)
        batch = ctx.real_batch()
        predicted = self.state_modules["labeller"].label(batch.x)
        if self.labels == "pretrained" and batch.y is not None:
            # A diagnostic only (no loss or decision reads it): how often the pretrained labels are the data's.
            self._pseudo_accuracy = (predicted == batch.y).float().mean()
        return batch.x, predicted

    def monitored_layers(self) -> dict[str, nn.Module]:
        out = {}
        for key in ("G", "D"):
            monitor = getattr(self.nets[key], "spectral_monitor", None)
            if monitor is not None:
                out.update({f"{key}.{name}": layer for name, layer in monitor().items()})
        return out

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        logs = super().train_step(ctx)
        if self.labels == "pretrained" and hasattr(self, "_pseudo_accuracy"):
            logs["pseudo_label_accuracy"] = self._pseudo_accuracy
        if self.monitor_sigma:
            for name, layer in self.monitored_layers().items():
                logs[f"sigma0_{name}"], logs[f"sigma01_{name}"] = top_singular_values(layer)
        return logs


# ---------------------------------------------------------------------------------------------- S2GAN-CO / S3GAN
def rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (m x C x H x W, square) rotated by 0, 90, 180, 270 degrees (4m rows, rotation-major) and the rotation
    index of each row (0..3)."""
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    return rotated, torch.arange(4, device=x.device).repeat_interleave(len(x))


def rotation_loss(D: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy of D's rotation head on x's four rotations, its accuracy): SS-GAN's self-supervised loss."""
    rotated, target = rotations(x)
    logits = D.rotation_logits(D.features(rotated))
    return F.cross_entropy(logits.float(), target), (logits.argmax(1) == target).float().mean()


class LabelledRows(nn.Module):
    """The labelled subset (indices into the training data, images as stored, labels) as buffers; its size is
    the data's share ``label_fraction``, known only at ``setup``, so loading takes the checkpoint's shapes."""

    def __init__(self, sample_shape: tuple[int, ...]):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.fill(torch.zeros(0, dtype=torch.long), torch.zeros((0, *sample_shape), dtype=torch.uint8),
                  torch.zeros(0, dtype=torch.long))

    @torch.no_grad()
    def fill(self, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        self.register_buffer("index", index.clone())
        self.register_buffer("x", x.clone())
        self.register_buffer("y", y.clone())

    def __len__(self) -> int:
        return len(self.index)


@register_algorithm
class S3GAN(BigGAN):
    name = "s3gan"
    source = ("Lucic et al. 2019 (S2GAN-CO / S3GAN, High-Fidelity Image Generation With Fewer Labels): BigGAN with a "
              "classifier on D's features for the unlabelled data and rotation self-supervision (Chen et al. 2019); "
              "seed 002 part 2 section 5; spec 13")

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo, latent_dim: int = 128,
                 latent_dist: LatentDist = "normal", latent_std: float = 1.0, n_critic: int = 1,
                 d_update: DUpdate = "sum", fake_bn: Literal["train", "eval"] = "train",
                 monitor_sigma: bool = True, label_fraction: float = 0.1, labelled_seed: int | None = None,
                 labelled_rows: int = 0, classifier_weight: float = 1.0, rotation_weight_d: float = 1.0,
                 rotation_weight_g: float = 0.2, rotation_rows: int = 0):
        super().__init__(nets, objective, data, latent_dim, latent_dist, latent_std, n_critic, d_update, fake_bn,
                         0.0, monitor_sigma)
        if data.num_classes < 2:
            raise DataError("algorithm 's3gan' needs labelled data (for its labelled subset) with at least 2 classes")
        if not 0 < label_fraction <= 1:
            raise ConfigError(f"algorithm.label_fraction must be in (0, 1] (the paper: 0.1 or 0.2), got {label_fraction}")
        if min(labelled_rows, rotation_rows) < 0 or min(classifier_weight, rotation_weight_d, rotation_weight_g) < 0:
            raise ConfigError("algorithm: labelled_rows, rotation_rows and the loss weights must be >= 0 (got "
                              f"{labelled_rows}, {rotation_rows}, {classifier_weight}, {rotation_weight_d}, "
                              f"{rotation_weight_g})")
        self.label_fraction, self.labelled_seed, self.labelled_rows = label_fraction, labelled_seed, labelled_rows
        self.classifier_weight = classifier_weight
        self.rotation_weight_d, self.rotation_weight_g, self.rotation_rows = (rotation_weight_d, rotation_weight_g,
                                                                              rotation_rows)
        D = self.nets["D"]
        if not callable(getattr(D, "class_logits", None)) or getattr(D, "classifier", None) is None:
            raise ConfigError("algorithm 's3gan' trains a classifier on D's features: use networks.D.arch=biggan with "
                              "classifier_head: true")
        if (rotation_weight_d or rotation_weight_g) and getattr(D, "rotation", None) is None:
            raise ConfigError("algorithm 's3gan' with rotation_weight_d/g > 0 needs networks.D.rotation_head: true "
                              "(or both weights 0 for S2GAN-CO)")
        self.state_modules["labelled"] = LabelledRows(tuple(data.sample_shape))
        self._rows_this_step = 0      # the labelled rows at the head of the current real batch (real_pairs)

    # ---------------------------------------------------------------------------------------- the labelled subset
    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        if dataset.y is None:
            raise DataError(f"algorithm 's3gan' needs labels to choose its labelled subset; {dataset.name} has none")
        seed = torch.initial_seed() if self.labelled_seed is None else self.labelled_seed
        count = max(self.num_classes, round(self.label_fraction * len(dataset.y)))
        index = choose_labelled(dataset.y, count, self.num_classes, torch.Generator().manual_seed(seed))
        subset = self.state_modules["labelled"]
        subset.fill(index.to(device), dataset.x[index].to(device), dataset.y[index].to(device))
        return {"labelled": int(len(index)), "label_fraction": len(index) / len(dataset.y),
                "labelled_per_class": torch.bincount(subset.y.cpu(), minlength=self.num_classes).tolist(),
                "labelled_seed": int(seed)}

    def state_mismatch(self, tensors: Mapping[str, torch.Tensor]) -> str | None:
        """Names as ``state_tensors``; the subset's size is the checkpoint's (any size loads), its images' shape
        must be this data's."""
        expected = self.state_tensors()
        missing = [k for k in expected if k not in tensors]
        if missing:
            return f"algorithm.{missing[0]} is not in the checkpoint"
        extra = [k for k in tensors if k not in expected]
        if extra:
            return f"the checkpoint's algorithm.{extra[0]} has no place in algorithm '{self.name}'"
        shape = self.state_modules["labelled"].sample_shape
        if tuple(tensors["labelled.x"].shape[1:]) != shape:
            return (f"algorithm.labelled.x holds images of {list(tensors['labelled.x'].shape[1:])}, but this data's "
                    f"are {list(shape)}")
        return None

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        subset = self.state_modules["labelled"]
        device = subset.index.device
        subset.fill(tensors["labelled.index"].to(device), tensors["labelled.x"].to(device),
                    tensors["labelled.y"].to(device))

    def labelled_batch(self, size: int, value_range: tuple[float, float] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` labelled images (model range) and labels, drawn with replacement by the global RNG."""
        from ..data.base import to_model_range
        subset = self.state_modules["labelled"]
        if len(subset) == 0:
            raise RuntimeError("the labelled subset is chosen in setup(); run it (the trainer does at step 0) first")
        pick = torch.randint(len(subset), (size,), device=subset.y.device)
        return to_model_range(subset.x[pick], value_range), subset.y[pick]

    # ---------------------------------------------------------------------------------------- the step's hooks
    def real_pairs(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """B reals: ``labelled_rows`` labelled images with their labels, then stream images with c_CT's labels."""
        batch = ctx.real_batch()
        n = len(batch.x)
        k = min(n, self.labelled_rows or max(1, round(n * self.label_fraction)))
        x_l, y_l = self.labelled_batch(k, self.value_range)
        unlabelled = batch.x[k:]
        D = self.nets["D"]
        with torch.no_grad(), ctx.autocast():
            predicted = D.class_logits(D.features(unlabelled)).argmax(1) if len(unlabelled) else y_l[:0]
        self._rows_this_step = k
        if batch.y is not None and len(unlabelled):
            # A diagnostic only (no loss or decision reads it): how often c_CT labels the unlabelled rows right.
            self._pseudo_accuracy = (predicted == batch.y[k:]).float().mean()
        return torch.cat([x_l.to(batch.x.dtype), unlabelled]), torch.cat([y_l, predicted])

    def extra_d_loss(self, real: torch.Tensor, y_real: torch.Tensor,
                     logs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        D = self.nets["D"]
        k = self._rows_this_step
        # c_CT's cross-entropy reads the labelled rows only (the others' labels are its own predictions): their
        # features, with gradient into D~ as well as into c_CT.
        logits = D.class_logits(D.features(real[:k]))
        class_loss = F.cross_entropy(logits.float(), y_real[:k])
        logs["class_loss"] = class_loss.detach()
        logs["class_accuracy"] = (logits.argmax(1) == y_real[:k]).float().mean()
        if hasattr(self, "_pseudo_accuracy"):
            logs["pseudo_label_accuracy"] = self._pseudo_accuracy
        total = self.classifier_weight * class_loss
        if self.rotation_weight_d:
            rot, acc = rotation_loss(D, real[-self.rotated_count(len(real)):])
            logs["rotation_loss_d"], logs["rotation_accuracy_d"] = rot.detach(), acc
            total = total + self.rotation_weight_d * rot
        return total

    def extra_g_loss(self, ctx: StepContext, fake: torch.Tensor, labels: torch.Tensor,
                     logs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.rotation_weight_g:
            return None
        with ctx.autocast():
            rot, acc = rotation_loss(self.nets["D"], fake[-self.rotated_count(len(fake)):])
        logs["rotation_loss_g"], logs["rotation_accuracy_g"] = rot.detach(), acc
        return self.rotation_weight_g * rot

    def rotated_count(self, n: int) -> int:
        return min(n, self.rotation_rows or max(1, n // 4))
