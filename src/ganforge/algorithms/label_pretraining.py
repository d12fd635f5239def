"""Labels for a conditional GAN from a network pretrained before it: S2GAN's semi-supervised classifier and the
unsupervised clustering variant of Lucic et al. 2019 ("High-Fidelity Image Generation With Fewer Labels", section
3.1, the *pre-trained* approaches; seed 002 part 2 section 5 / spec 13.3).

Both first learn a representation of the real training images with the rotation self-supervision of Gidaris et al.
2018 (every image rotated by 0, 90, 180 and 270 degrees, a 4-way softmax head tells which), then give every image a
label, and the BigGAN is trained class-conditional on those labels (``algorithm.labels`` of ``algorithms/biggan.py``):

* ``pretrained`` (S2GAN): the rotation loss on all images plus the cross-entropy of a linear classifier on the same
  features for the labelled subset (the S4L-Rotation recipe of Zhai et al. 2019 that the paper uses: both losses
  trained together, weight 1); the classifier's argmax labels every image.
* ``clusters`` (the paper's "Clustering"): the rotation loss alone, no labels; k-means (k-means++ start, Lloyd
  iterations, the best of a few restarts) on the L2-normalised pooled features gives K clusters, and the nearest
  centroid (cosine) is each image's label.

The network here (``LabelNet``) is small enough to train in a few minutes on one CPU thread: ``widths`` stages of
Conv3x3 - BN - ReLU - Conv3x3 stride 2 - BN - ReLU, global average pooling to the feature vector, a rotation head and
(S2GAN) a class head; the paper's is a ResNet-50 trained on ImageNet (recalled, not in the seed). One image in
``HELD_OUT_SHARE`` of those without a label is held out of the pretraining (a fixed split) so that its accuracy is
measured on images it never saw.

``pretrained_labeller(...)`` trains once per data (a hash of its images), labelled subset, settings and seed, on its
own random streams (deterministic; the caller's RNG untouched), and caches the network (safetensors + JSON facts) in
``cache_dir()/"labels"`` as ``models/text_encoder.py`` caches its encoder. The facts say what the labels are worth
where the data has labels (a diagnostic: nothing trains on them): the classifier's held-out and unlabelled-image
accuracy, or the clusters' purity and accuracy after a one-to-one (Hungarian) matching of clusters to classes.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..errors import ConfigError

VERSION = 1
HELD_OUT_SHARE = 10        # one image in ten without a label is held out of the pretraining
SPLIT_SEED = 0
KMEANS_RESTARTS = 4
KMEANS_ITERATIONS = 60
LABEL_BATCH = 500          # images per forward pass when labelling a whole data set

LabelMode = Literal["pretrained", "clusters"]


class LabelNet(nn.Module):
    """The pretrained feature network with its rotation head, and either a class head (S2GAN: ``num_classes``) or
    K centroids in its L2-normalised feature space (clustering: ``clusters``). Always in inference mode once trained:
    ``train(True)`` is ignored (``frozen()``), so an algorithm holding it never updates its BN statistics."""

    def __init__(self, channels: int, widths: Sequence[int] = (16, 32, 64), num_classes: int = 0, clusters: int = 0):
        super().__init__()
        if not widths or min(widths) < 1:
            raise ConfigError("algorithm.pretrain_widths must be a non-empty list of positive widths, got "
                              f"{list(widths)}")
        if (num_classes > 0) == (clusters > 0):
            raise ValueError("a LabelNet labels by its class head (num_classes) or by its centroids (clusters): one")
        layers: list[nn.Module] = []
        c = channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                       nn.Conv2d(w, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.rotation = nn.Linear(c, 4)
        self.classifier = nn.Linear(c, num_classes) if num_classes else None
        self.register_buffer("centroids", torch.zeros(clusters, c))
        self.feature_dim, self.count = c, num_classes or clusters
        self._frozen = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def freeze(self) -> "LabelNet":
        self._frozen = True
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "LabelNet":
        return super().train(False if self._frozen else mode)

    @torch.no_grad()
    def label(self, x: torch.Tensor) -> torch.Tensor:
        """int64 labels of images x (model range): the class head's argmax, or the nearest centroid (cosine)."""
        weight = self.rotation.weight
        h = self.features(x.to(weight.dtype))
        if self.classifier is not None:
            return self.classifier(h).argmax(1)
        return nearest(F.normalize(h, dim=1), self.centroids)


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (squared Euclidean distance) of each row of x."""
    return torch.cdist(x, centroids).argmin(1)


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, restarts: int = KMEANS_RESTARTS,
           iterations: int = KMEANS_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(centroids k x D, assignment N, inertia) of the best of ``restarts`` k-means runs on x (N x D): k-means++
    seeding (Arthur & Vassilvitskii 2007) from ``generator``, then Lloyd iterations until no row changes cluster; an
    emptied cluster restarts at the row farthest from its centroid. Deterministic in ``generator``."""
    if not 1 <= k <= len(x):
        raise ConfigError(f"k-means into {k} clusters needs between 1 and {len(x)} (the images) clusters; set "
                          "algorithm.clusters accordingly")
    x = x.double()
    best: tuple[torch.Tensor, torch.Tensor, float] | None = None
    for _ in range(restarts):
        first = int(torch.randint(len(x), (1,), generator=generator))
        centres = [x[first]]
        d2 = ((x - x[first]) ** 2).sum(1)
        for _ in range(1, k):
            probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1 / len(d2))
            pick = int(torch.multinomial(probs, 1, generator=generator))
            centres.append(x[pick])
            d2 = torch.minimum(d2, ((x - x[pick]) ** 2).sum(1))
        c = torch.stack(centres)
        assign = nearest(x, c)
        for _ in range(iterations):
            counts = torch.bincount(assign, minlength=k)
            sums = torch.zeros_like(c).index_add_(0, assign, x)
            c = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], c)
            for empty in torch.nonzero(counts == 0).flatten().tolist():
                far = int(((x - c[assign]) ** 2).sum(1).argmax())
                c[empty] = x[far]
            new = nearest(x, c)
            if torch.equal(new, assign):
                break
            assign = new
        inertia = float(((x - c[assign]) ** 2).sum())
        if best is None or inertia < best[2]:
            best = (c, assign, inertia)
    assert best is not None
    return best[0].float(), best[1], best[2]


@dataclass(frozen=True)
class PretrainSettings:
    """How the label network is trained (``algorithm.pretrain_*``)."""

    widths: tuple[int, ...] = (16, 32, 64)
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0

    def check(self) -> "PretrainSettings":
        if self.steps < 1 or self.batch_size < 2 or not self.lr > 0:
            raise ConfigError(f"algorithm.pretrain_steps must be >= 1, pretrain_batch_size >= 2 and pretrain_lr > 0 "
                              f"(got {self.steps}, {self.batch_size}, {self.lr})")
        return self


@dataclass
class PretrainedLabeller:
    """The trained ``LabelNet`` (frozen), the label of every image of the data it was trained on, and facts."""

    net: LabelNet
    labels: torch.Tensor
    facts: dict[str, Any] = field(default_factory=dict)


def held_out_mask(n: int, labelled: torch.Tensor) -> torch.Tensor:
    """bool N: one image in HELD_OUT_SHARE of those outside ``labelled`` (a fixed permutation; none under 20)."""
    mask = torch.zeros(n, dtype=torch.bool)
    free = torch.ones(n, dtype=torch.bool)
    free[labelled] = False
    pool = torch.nonzero(free).flatten()
    if len(pool) >= 2 * HELD_OUT_SHARE:
        perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(SPLIT_SEED))
        mask[pool[perm[:len(pool) // HELD_OUT_SHARE]]] = True
    return mask


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def label_all(net: LabelNet, images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    from ..data.base import to_model_range
    return torch.cat([net.label(to_model_range(images[i:i + LABEL_BATCH], value_range))
                      for i in range(0, len(images), LABEL_BATCH)]) if len(images) else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def features_all(net: LabelNet, images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """L2-normalised pooled features of uint8 images."""
    from ..data.base import to_model_range
    return torch.cat([F.normalize(net.features(to_model_range(images[i:i + LABEL_BATCH], value_range)), dim=1)
                      for i in range(0, len(images), LABEL_BATCH)])


def train_label_net(images: torch.Tensor, train_index: torch.Tensor, value_range: tuple[float, float],
                    settings: PretrainSettings, num_classes: int = 0, clusters: int = 0,
                    labelled_index: torch.Tensor | None = None,
                    labelled_y: torch.Tensor | None = None) -> tuple[LabelNet, dict[str, float]]:
    """Train a ``LabelNet`` on uint8 ``images[train_index]``: each step the rotation loss on ``batch_size`` images
    (4 x batch_size rotated rows) plus, with ``num_classes``, the cross-entropy of the class head on ``batch_size``
    labelled images (upright), in one forward pass so BN sees both; Adam (0.9, 0.999). Deterministic from
    ``settings.seed`` (the global RNG seeded inside a fork for the initial weights, a generator for the batches).
    Returns the network (not yet frozen) and the last 50 steps' mean accuracies."""
    from ..data.base import to_model_range
    from .biggan import rotations
    if num_classes and (labelled_index is None or labelled_y is None or not len(labelled_index)):
        raise ValueError("a class head needs the labelled subset (labelled_index, labelled_y)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        net = LabelNet(images.shape[1], settings.widths, num_classes, clusters)
        g = torch.Generator().manual_seed(settings.seed)
        opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
        net.train()
        late: dict[str, list[float]] = {"rotation_accuracy": [], "class_accuracy": []}
        with torch.enable_grad():
            for step in range(settings.steps):
                pick = train_index[torch.randint(len(train_index), (settings.batch_size,), generator=g)]
                rotated, target = rotations(to_model_range(images[pick], value_range))
                parts = [rotated]
                if num_classes:
                    rows = torch.randint(len(labelled_index), (settings.batch_size,), generator=g)
                    parts.append(to_model_range(images[labelled_index[rows]], value_range))
                h = net.features(torch.cat(parts))
                rot_logits = net.rotation(h[:len(rotated)])
                loss = F.cross_entropy(rot_logits, target)
                if num_classes:
                    cls_logits = net.classifier(h[len(rotated):])
                    y = labelled_y[rows]
                    loss = loss + F.cross_entropy(cls_logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step >= settings.steps - 50:
                    late["rotation_accuracy"].append(float((rot_logits.argmax(1) == target).float().mean()))
                    if num_classes:
                        late["class_accuracy"].append(float((cls_logits.argmax(1) == y).float().mean()))
    net.eval()
    return net, {f"train_{k}": round(sum(v) / len(v), 4) for k, v in late.items() if v}


def pretrained_labeller(images: torch.Tensor, mode: LabelMode, count: int, value_range: tuple[float, float],
                        settings: PretrainSettings = PretrainSettings(), labelled_index: torch.Tensor | None = None,
                        labelled_y: torch.Tensor | None = None, true_labels: torch.Tensor | None = None,
                        name: str = "data", use_cache: bool = True) -> PretrainedLabeller:
    """The frozen label network for uint8 ``images`` (N x C x H x W) and the label of each image (module
    docstring): ``mode`` ``pretrained`` with ``count`` classes and the labelled subset (``labelled_index`` into
    images, ``labelled_y``), or ``clusters`` with ``count`` clusters. ``true_labels`` (optional, N) only score the
    result in ``facts``. Cached by data, subset, settings and seed; touches no global RNG state."""
    settings.check()
    if mode not in ("pretrained", "clusters"):
        raise ConfigError(f"labels from pretraining are 'pretrained' or 'clusters', got {mode!r}")
    if count < 2:
        raise ConfigError(f"pretrained labels need at least 2 classes or clusters, got {count}")
    images = images.cpu()
    if labelled_index is None or mode == "clusters":      # clustering uses no label at all
        labelled_index, labelled_y = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    labelled_index, labelled_y = labelled_index.cpu().long(), labelled_y.cpu().long()
    if mode == "pretrained" and not len(labelled_index):
        raise ConfigError("S2GAN's pretrained classifier needs a labelled subset (algorithm.label_fraction > 0)")
    from ..metrics.domain import cache_dir, say
    key_text = json.dumps({"mode": mode, "count": count, "range": list(value_range), "settings": asdict(settings),
                           "data": _digest(images), "subset": _digest(labelled_index, labelled_y),
                           "version": VERSION}, sort_keys=True)
    key = f"{mode}-{count}-seed{settings.seed}-{hashlib.sha1(key_text.encode()).hexdigest()[:16]}"
    root = cache_dir() / "labels"
    wpath, jpath = root / f"{key}.safetensors", root / f"{key}.json"
    num_classes, clusters = (count, 0) if mode == "pretrained" else (0, count)
    with torch.random.fork_rng(devices=[]):
        if use_cache and wpath.is_file() and jpath.is_file():
            try:
                facts = json.loads(jpath.read_text())
                net = LabelNet(images.shape[1], settings.widths, num_classes, clusters)
                net.load_state_dict(load_file(str(wpath)))
                net.freeze()
                return PretrainedLabeller(net, label_all(net, images, value_range), facts)
            except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError):
                pass   # a broken cache entry is simply rebuilt
        held = held_out_mask(len(images), labelled_index)
        train_index = torch.nonzero(~held).flatten()
        what = "S2GAN's classifier (rotation + labelled cross-entropy)" if mode == "pretrained" else \
            "the rotation network for k-means"
        say(f"pretraining {what} on {name} ({len(train_index)} images, {len(labelled_index)} labelled, "
            f"{settings.steps} steps; once: it is cached in {root})")
        started, cpu = time.time(), time.process_time()
        net, facts = train_label_net(images, train_index, value_range, settings, num_classes, clusters,
                                     labelled_index if mode == "pretrained" else None,
                                     labelled_y if mode == "pretrained" else None)
        net.freeze()
        facts = {"mode": mode, "images": len(images), "labelled": len(labelled_index), "held_out": int(held.sum()),
                 "steps": settings.steps, **facts}
        if mode == "clusters":
            feats = features_all(net, images[train_index], value_range)
            centroids, _, inertia = kmeans(feats, count, torch.Generator().manual_seed(settings.seed))
            net.centroids.copy_(centroids)
            facts["kmeans_inertia"] = round(inertia, 3)
        labels = label_all(net, images, value_range)
        facts["label_counts"] = torch.bincount(labels, minlength=count).tolist()
        if held.any():
            from .biggan import rotations
            from ..data.base import to_model_range
            with torch.no_grad():
                rotated, target = rotations(to_model_range(images[held][:LABEL_BATCH], value_range))
                facts["held_out_rotation_accuracy"] = round(float(
                    (net.rotation(net.features(rotated)).argmax(1) == target).float().mean()), 4)
        if true_labels is not None:
            facts.update(score_labels(labels, true_labels.cpu().long(), mode, count, labelled_index, held))
        facts["seconds"], facts["cpu_seconds"] = round(time.time() - started, 1), round(time.process_time() - cpu, 1)
        say(f"pretrained labels for {name}: " + ", ".join(f"{k} {v}" for k, v in facts.items()
                                                          if "accuracy" in k or k == "purity"))
        if use_cache:
            try:
                root.mkdir(parents=True, exist_ok=True)
                tmp_w, tmp_j = wpath.with_suffix(".tmp"), jpath.with_suffix(".jtmp")
                save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_w))
                tmp_j.write_text(json.dumps(facts, indent=1))
                tmp_w.replace(wpath)
                tmp_j.replace(jpath)
            except OSError:
                pass   # an unwritable cache only costs retraining next time
        return PretrainedLabeller(net, labels, facts)


def score_labels(labels: torch.Tensor, truth: torch.Tensor, mode: LabelMode, count: int,
                 labelled_index: torch.Tensor, held: torch.Tensor) -> dict[str, Any]:
    """What the labels are worth against the data's own (a diagnostic). ``pretrained``: accuracy on the images
    without a label (``unlabelled_accuracy``) and on those held out of pretraining (``held_out_accuracy``).
    ``clusters``: purity (each cluster counted as its majority class) and the accuracy after the best one-to-one
    matching of clusters to classes (Hungarian, ``metrics/code_purity.py``), with that matching."""
    if mode == "pretrained":
        unlabelled = torch.ones(len(labels), dtype=torch.bool)
        unlabelled[labelled_index] = False
        out = {"unlabelled_accuracy": round(float((labels[unlabelled] == truth[unlabelled]).float().mean()), 4)}
        if held.any():
            out["held_out_accuracy"] = round(float((labels[held] == truth[held]).float().mean()), 4)
        return out
    from ..metrics.code_purity import code_purity
    matched = code_purity(labels, truth, num_codes=count, num_classes=int(truth.max()) + 1)
    return {"purity": round(float(matched.table.max(1).sum() / len(labels)), 4),
            "matched_accuracy": round(matched.purity, 4),
            "cluster_to_class": [matched.mapping.get(c, -1) for c in range(count)]}
