"""Evaluate generated samples against real data: the engine behind ``ganforge eval`` and ``eval_every``.

What can be evaluated (a *target*):

* a run directory: ``n`` samples are drawn from its newest checkpoint (EMA weights if kept), with their labels
  for conditional models; the default reference is the run's own training data;
* a ``.npz`` file: ``arr_0`` images, uint8 ``N x H x W x C`` (the layout FID tools write; ``N x C x H x W`` and
  grayscale ``N x H x W`` are accepted too, as are floats in [0, 1]), optional ``labels``; or toy 2-D points
  ``N x 2``;
* any data source (``mnist5k?split=test``, ``folder:PATH``, ``idx:DIR``, ``npz:FILE``, ``cifar10:DIR``) or a plain
  image directory: real-vs-real comparisons use this.

Features (``features=``):

* ``domain`` (default): ganforge's own classifier trained on the reference's labelled source
  (:mod:`ganforge.metrics.domain`): its 128-d penultimate features give FID/KID/PR/DC, its softmax gives IS, the
  class histogram and label accuracy. Needs no download. Values are *domain* FIDs: comparable with each other, not
  with published Inception FIDs.
* ``inception``: the FID Inception network (2048-d pool features, 1008-way softmax for IS) from a local weights
  file (``inception_weights=`` or ``$GANFORGE_INCEPTION_WEIGHTS``), pre-processed as pytorch-fid does.

Metrics (``metrics=``): ``fid``, ``kid`` (mean and std over subsets), ``is`` (10 splits), ``pr`` (precision/recall,
k=3), ``dc`` (density/coverage, k=5), ``classes`` (class histogram, modes, KL to uniform, confident share, label
accuracy), and for 2-D toy data ``modes`` (modes covered, high-quality share, reverse KL).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .toy2d import DEFAULT_MIN_COUNT

# Paired metrics compare each sample with its own true counterpart (a translation or super-resolution output with
# its target): the reference must hold as many images as the samples, in the same order; a reference source that
# yields a ``target`` field (aligned:, paired:, sr: as lowres -> image ...) is compared on that field.
PAIRED_METRICS = ("l1", "psnr", "ssim")
IMAGE_METRICS = ("fid", "kid", "is", "pr", "dc", "classes") + PAIRED_METRICS
TOY_METRICS = ("modes",)
ALL_METRICS = IMAGE_METRICS + TOY_METRICS
DEFAULT_IMAGE_METRICS = ("fid", "kid", "is", "pr", "dc", "classes")
# A sample counts as "confidently classified" at this top softmax probability (the issue-2 bench convention).
CONFIDENT = 0.9
# A class counts as a covered mode when it receives at least this fraction of the uniform share 1/K of the
# predictions: for MNIST, 2.5% of the samples. Chosen so that a generator that draws a class rarely but
# recognisably still covers it, while a few misclassified samples do not.
MODE_SHARE = 0.25


@dataclass
class Samples:
    """What is evaluated: uint8 NCHW images (or float N x 2 toy points), optional labels, where they came from."""

    kind: str                              # "image" | "vector"
    data: torch.Tensor
    labels: torch.Tensor | None
    origin: str
    default_ref: str | None = None         # a run's training data source
    toy: str | None = None                 # ring8 / grid25 for toy runs
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)


def parse_metrics(spec: str | Sequence[str] | None, kind: str = "image") -> list[str]:
    """``"fid,kid"`` -> ["fid", "kid"]; None -> the defaults for this kind of data; unknown names are errors."""
    if spec is None or spec == "" or spec == []:
        return list(DEFAULT_IMAGE_METRICS if kind == "image" else TOY_METRICS)
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    for name in names:
        if name not in ALL_METRICS:
            import difflib
            close = difflib.get_close_matches(name, ALL_METRICS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown metric '{name}'{hint}; choose from {', '.join(ALL_METRICS)}")
    allowed = IMAGE_METRICS if kind == "image" else TOY_METRICS
    wrong = [m for m in names if m not in allowed]
    if wrong:
        what = "2-D toy points" if kind == "vector" else "images"
        raise ConfigError(f"metric '{wrong[0]}' does not apply to {what}; for {what} use {', '.join(allowed)}")
    return names


# ----------------------------------------------------------------------------------------- targets
def images_from_array(arr: np.ndarray, where: str) -> torch.Tensor:
    """An image array as users save them -> uint8 N x C x H x W, or a one-line DataError saying what is wrong."""
    if arr.ndim == 3:
        arr = arr[..., None]                                          # N x H x W grayscale
    if arr.ndim != 4:
        raise DataError(f"{where}: images must be N x H x W x C (or N x C x H x W), got shape {arr.shape}")
    if arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
        arr = arr.transpose(0, 3, 1, 2)                               # NHWC -> NCHW
    elif arr.shape[1] not in (1, 3, 4):
        raise DataError(f"{where}: cannot find a channel axis of size 1, 3 or 4 in shape {arr.shape}")
    if arr.shape[1] == 4:
        arr = arr[:, :3]                                              # drop alpha
    if min(arr.shape[2], arr.shape[3]) < 8:
        raise DataError(f"{where}: images of {arr.shape[2]}x{arr.shape[3]} pixels are too small (at least 8x8)")
    if arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr))
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DataError(f"{where}: images contain NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise DataError(f"{where}: float images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                            "save uint8 0..255 (as `ganforge sample --out x.npz` does) or rescale")
        return torch.from_numpy(np.ascontiguousarray(np.rint(np.clip(arr, 0, 1) * 255))).to(torch.uint8)
    raise DataError(f"{where}: images must be uint8 (0..255) or float in [0, 1], got dtype {arr.dtype}")


def samples_from_npz(path: Path) -> Samples:
    try:
        with np.load(path, allow_pickle=False) as z:
            key = "arr_0" if "arr_0" in z.files else ("x" if "x" in z.files else None)
            if key is None:
                raise DataError(f"{path}: no 'arr_0' (or 'x') array inside; it holds {', '.join(z.files) or 'nothing'}")
            arr = z[key]
            labels = z["labels"] if "labels" in z.files else (z["y"] if "y" in z.files else None)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz file ({' '.join(str(e).split())[:160]})") from None
    if arr.ndim == 2 and arr.shape[1] == 2:
        data = torch.from_numpy(arr.astype(np.float32))
        kind = "vector"
    else:
        data, kind = images_from_array(arr, str(path)), "image"
    lab = None
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(arr) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{path}: 'labels' must be {len(arr)} integers, got shape {labels.shape} {labels.dtype}")
        lab = torch.from_numpy(labels.astype(np.int64))
    return Samples(kind, data, lab, f"npz:{path}")


def samples_from_source(spec: str, n: int | None, seed: int) -> Samples:
    from ..data import load_source
    ds = load_source(spec, seed=0)
    x, y = ds.x, ds.y
    if n is not None and n < len(ds):
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        x, y = x[idx], None if y is None else y[idx]
    toy = ds.meta.get("toy") if ds.kind == "vector" else None
    return Samples(ds.kind, x, y, spec, toy=toy)


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.yaml").is_file() and (path / "run.json").is_file()


def samples_from_run(run_dir: Path, n: int, seed: int, device: str = "cpu", use_ema: bool = True,
                     checkpoint: int | str | Path | None = None) -> Samples:
    from ..inference import load
    model = load(run_dir, device=device, use_ema=use_ema, step=checkpoint)
    out, labels = model.sample_with_inputs(n, seed=seed)
    source = model.config.data.source
    if model.value_range is None:
        from ..data import load_source
        toy = load_source(source, seed=0).meta.get("toy")
        return Samples("vector", out.float(), labels, str(run_dir), default_ref=source, toy=toy,
                       meta={"step": model.step})
    from ..data import to_uint8
    return Samples("image", to_uint8(out, model.value_range), labels, str(run_dir), default_ref=source,
                   meta={"step": model.step, "image_size": model.config.data.image_size,
                         "channels": model.config.data.channels})


def load_target(target: str, n: int | None, seed: int = 0, device: str = "cpu", use_ema: bool = True,
                checkpoint: int | str | Path | None = None) -> Samples:
    """A run directory, an ``.npz`` file, a data source spec, or an image directory -> Samples."""
    path = Path(target).expanduser()
    if is_run_dir(path):
        return samples_from_run(path, n or 5000, seed, device, use_ema, checkpoint)
    if path.is_file() and path.suffix == ".npz":
        s = samples_from_npz(path)
        if n is not None and n < len(s):
            s.data, s.labels = s.data[:n], None if s.labels is None else s.labels[:n]
        return s
    if path.is_dir() and (path / "checkpoints").is_dir():
        raise DataError(f"{path} looks like a run directory but has no config.yaml/run.json; was it copied "
                        "incompletely?")
    from ..data import resolve_source, source_help
    try:
        spec = resolve_source(target)      # a bare image folder or IDX folder gets its prefix here
    except DataError:
        spec = target
    if spec.partition(":")[0].partition("?")[0] in source_help():
        return samples_from_source(spec, n, seed)
    raise DataError(f"cannot evaluate '{target}': give a run directory, a .npz file (arr_0 uint8 NHWC), an image "
                    "folder, or a data source such as mnist5k?split=test")


# ----------------------------------------------------------------------------------------- features
def classifier_source(ref: str) -> str:
    """The labelled source a domain classifier is trained on for reference ``ref``: its training split, so the
    held-out split (``?split=test``) stays unseen by the classifier."""
    head, sep, query = ref.partition("?")
    if not sep:
        return ref
    options = [o for o in query.split("&") if o and not o.startswith("split=")]
    return head + ("?" + "&".join(options) if options else "")


class FeatureExtractor:
    """Features (N x d, float64 numpy) and class probabilities (N x K) of uint8 NCHW images."""

    name: str = ""
    info: dict[str, Any]
    class_names: list[str] | None = None

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class DomainFeatures(FeatureExtractor):
    name = "domain"

    def __init__(self, source: str, image_size: int | None = None, channels: int | None = None, seed: int = 0):
        from .domain import domain_classifier
        self.clf = domain_classifier(source, image_size=image_size, channels=channels, seed=seed)
        self.class_names = list(self.clf.class_names)
        self.info = {"features": "domain", **self.clf.info()}

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if images.shape[1] != self.clf.channels:
            raise DataError(f"images have {images.shape[1]} channel(s) but the {self.clf.source} evaluator takes "
                            f"{self.clf.channels}; compare against a reference with the same channels")
        probs, feats = self.clf.predict(images)
        return feats.double().numpy(), probs.double().numpy()


class InceptionFeatures(FeatureExtractor):
    name = "inception"

    def __init__(self, weights: str | None = None, device: str = "cpu", batch_size: int = 100):
        from .inception import load_inception
        self.net = load_inception(weights, device=device)
        self.device, self.batch_size = device, batch_size
        self.info = {"features": "inception", "weights": str(weights or "$GANFORGE_INCEPTION_WEIGHTS"),
                     "preprocess": "pytorch-fid: bilinear resize to 299 (align_corners=False), 2x-1, gray->RGB"}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = [], []
        for i in range(0, len(images), self.batch_size):
            out = self.net(images[i:i + self.batch_size].float() / 255.0)
            feats.append(out["pool"].double().cpu())
            probs.append(out["probs"].double().cpu())
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def make_extractor(features: str, ref: str, image_size: int | None = None, channels: int | None = None,
                   inception_weights: str | None = None, device: str = "cpu") -> FeatureExtractor:
    if features == "domain":
        return DomainFeatures(classifier_source(ref), image_size, channels)
    if features == "inception":
        return InceptionFeatures(inception_weights, device)
    raise ConfigError(f"unknown feature extractor '{features}'; use domain or inception")


# ----------------------------------------------------------------------------------------- metrics
def class_metrics(probs: np.ndarray, labels: torch.Tensor | None, num_classes: int) -> dict[str, Any]:
    """Class histogram of predictions, modes covered, KL(histogram || uniform), confident share, label accuracy."""
    pred = probs.argmax(1)
    hist = np.bincount(pred, minlength=num_classes)[:num_classes]
    p = hist / max(1, hist.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = float(np.nansum(np.where(p > 0, p * np.log(p * num_classes), 0.0)))
    out: dict[str, Any] = {
        "modes": int((p >= MODE_SHARE / num_classes).sum()),
        "num_classes": num_classes,
        "kl_uniform": kl,
        "confident_share": float((probs.max(1) >= CONFIDENT).mean()),
        "class_histogram": hist.tolist(),
    }
    if labels is not None:
        lab = labels.numpy()
        if lab.min() < 0 or lab.max() >= num_classes:
            raise DataError(f"labels must lie in 0..{num_classes - 1} for this evaluator; got {lab.min()}..{lab.max()}")
        out["label_accuracy"] = float((pred == lab).mean())
        per_class = [float((pred[lab == c] == c).mean()) if (lab == c).any() else float("nan")
                     for c in range(num_classes)]
        out["label_accuracy_per_class"] = per_class
    return out


def feature_metrics(metrics: Sequence[str], fake_feats: np.ndarray, real_feats: np.ndarray,
                    fake_probs: np.ndarray | None, seed: int = 0) -> dict[str, Any]:
    from . import density_coverage, fid_from_features, inception_score, kernel_inception_distance, precision_recall
    out: dict[str, Any] = {}
    d = fake_feats.shape[1]
    if "fid" in metrics:
        for name, f in (("generated", fake_feats), ("reference", real_feats)):
            if len(f) <= 1 or len(f) < min(d + 1, 100):
                raise DataError(f"FID needs at least {min(d + 1, 100)} {name} samples to estimate a {d}-d "
                                f"covariance, got {len(f)}; raise --n or drop fid from --metrics")
        out["fid"] = fid_from_features(fake_feats, real_feats)
    if "kid" in metrics:
        size = min(1000, len(fake_feats), len(real_feats))
        out["kid"], out["kid_std"] = kernel_inception_distance(fake_feats, real_feats, num_subsets=100,
                                                               subset_size=size, seed=seed)
    if "is" in metrics and fake_probs is not None:
        splits = 10 if len(fake_probs) >= 100 else 1
        # Shuffle first: IS splits consecutive samples, and label-ordered sets (a dataset sorted by class, a
        # `--labels 0-9` layout) would put one class in each split and score ~1.
        order = np.random.default_rng(seed).permutation(len(fake_probs))
        out["is"], out["is_std"] = inception_score(fake_probs[order], splits=splits)
    if "pr" in metrics or "dc" in metrics:
        m = min(len(fake_feats), len(real_feats), 10000)
        rng = np.random.default_rng(seed)
        fk = fake_feats[rng.choice(len(fake_feats), m, replace=False)] if len(fake_feats) > m else fake_feats
        rl = real_feats[rng.choice(len(real_feats), m, replace=False)] if len(real_feats) > m else real_feats
        if "pr" in metrics:
            pr = precision_recall(rl, fk, k=3)
            out["precision"], out["recall"] = float(pr["precision"]), float(pr["recall"])
        if "dc" in metrics:
            dc = density_coverage(rl, fk, k=5)
            out["density"], out["coverage"] = float(dc["density"]), float(dc["coverage"])
    return out


@dataclass
class Reference:
    """Real data to compare with, and its features (computed once, reused across evaluations)."""

    spec: str
    images: torch.Tensor
    labels: torch.Tensor | None
    feats: np.ndarray | None = None
    targets: torch.Tensor | None = None    # the source's paired images (``target`` field), for paired metrics


def load_reference(spec: str, image_size: int | None = None, channels: int | None = None) -> Reference:
    from ..data import load_source, prepare
    ds = load_source(spec, seed=0)
    if ds.kind != "image":
        raise DataError(f"reference {spec} is {ds.kind} data; image metrics need image references")
    ds = prepare(ds, image_size, channels)
    return Reference(spec, ds.x, ds.y, targets=ds.fields.get("target"))


def paired_against(samples: "Samples", reference: Reference) -> tuple[torch.Tensor, str]:
    """The images each sample is compared with (the reference's targets if it has them, else its images), checked
    to line up one to one with the samples."""
    truth, what = (reference.targets, "target") if reference.targets is not None else (reference.images, "image")
    if tuple(truth.shape) != tuple(samples.data.shape):
        raise DataError(f"paired metrics compare each sample with its own counterpart, but {samples.origin} holds "
                        f"{len(samples)} images of {tuple(samples.data.shape[1:])} and the reference "
                        f"{reference.spec} ({what}) {len(truth)} of {tuple(truth.shape[1:])}; give a reference in "
                        "the samples' order and shape (e.g. the test split the outputs were made from)")
    return truth, what


# The fewest samples each metric gives a meaningful number for: k-NN manifolds need k + 1 points (k = 3 for pr,
# 5 for dc), a toy mode counts as covered only with DEFAULT_MIN_COUNT (20) samples in it, the others need two.
# Below that a metric returns a figure (often 0 or nan) that looks like a result and is not one.
# FID: a feature covariance from fewer samples than min(d + 1, 100) is degenerate (d = 128 domain, 2048 Inception
# features): checked here, before any feature network is loaded or trained, and again in feature_metrics.
MIN_SAMPLES = {"fid": 100, "pr": 4, "dc": 6, "modes": DEFAULT_MIN_COUNT}


def check_enough_samples(n: int, metrics: Sequence[str], origin: str, what: str = "generated") -> None:
    need, metric = max((MIN_SAMPLES.get(m, 2), m) for m in metrics) if metrics else (2, "")
    if n < need and metric == "fid":
        raise DataError(f"FID needs at least {need} {what} samples to estimate a feature covariance, got {n} "
                        f"({origin}); raise --n or drop fid from --metrics")
    if n < need:
        raise DataError(f"{origin}: {n} sample(s) are too few for the {metric} metric, which needs at least {need}; "
                        f"evaluate more samples, or leave {metric} out of --metrics")


def evaluate(samples: Samples, metrics: Sequence[str] | str | None = None, ref: str | None = None,
             features: str = "domain", inception_weights: str | None = None, device: str = "cpu",
             seed: int = 0, reference: Reference | None = None,
             extractor: FeatureExtractor | None = None) -> dict[str, Any]:
    """All requested metrics of ``samples`` against the reference data; a flat dict (JSON-ready)."""
    names = parse_metrics(metrics, samples.kind)
    check_enough_samples(len(samples), names, samples.origin)
    result: dict[str, Any] = {"target": samples.origin, "n": len(samples)}
    if "step" in samples.meta:
        result["step"] = samples.meta["step"]
    if samples.kind == "vector":
        toy = samples.toy or (ref or "").removeprefix("toy:") or None
        if toy not in ("ring8", "grid25"):
            raise ConfigError("toy mode metrics need the mixture: pass --ref toy:ring8 or --ref toy:grid25")
        from . import toy_mode_metrics
        result.update({"ref": f"toy:{toy}", **toy_mode_metrics(samples.data, toy)})
        return result
    if len(samples) < 2:
        raise DataError(f"{samples.origin}: {len(samples)} image(s); metrics need at least 2")
    ref = ref or samples.default_ref
    if ref is None and reference is None:
        raise ConfigError(f"no reference data for {samples.origin}: pass --ref SOURCE, e.g. --ref mnist5k")
    if reference is None:
        reference = load_reference(ref)
    check_enough_samples(len(reference.images), [m for m in names if m == "fid"], reference.spec, "reference")
    # Sizes may differ (both feature networks resize to their own input size); channels may not.
    if reference.images.shape[1] != samples.data.shape[1]:
        raise DataError(f"the images have {samples.data.shape[1]} channel(s) but the reference {reference.spec} has "
                        f"{reference.images.shape[1]}; compare like with like (--ref with the same channels)")
    result.update({"ref": reference.spec, "n_ref": len(reference.images)})
    if any(m in PAIRED_METRICS for m in names):
        from .paired import paired_metrics
        truth, what = paired_against(samples, reference)
        paired = paired_metrics(samples.data, truth)
        result.update({k: paired[k] for k in ("l1", "psnr", "psnr_set", "ssim", "identical", "channels")
                       if k in paired}, paired_on=what)
        names = [m for m in names if m not in PAIRED_METRICS]
        if not names:        # no feature metric asked: no feature network to load or train
            return result
    if extractor is None:
        extractor = make_extractor(features, reference.spec, channels=reference.images.shape[1],
                                   inception_weights=inception_weights, device=device)
    result.update(extractor.info)
    fake_feats, fake_probs = extractor(samples.data)
    if reference.feats is None:
        reference.feats = extractor(reference.images)[0]
    result.update(feature_metrics(names, fake_feats, reference.feats, fake_probs, seed=seed))
    if "classes" in names:
        if extractor.class_names is None:
            raise ConfigError("the classes metric needs a domain classifier (--features domain)")
        result.update(class_metrics(fake_probs, samples.labels, len(extractor.class_names)))
    return result


# ----------------------------------------------------------------------------------------- presentation
def format_table(result: dict[str, Any]) -> str:
    """The headline figures as a two-column text table, 3 significant digits (stds folded in as ±), led by what
    was measured: target, checkpoint step, n, reference, features and, for domain features, the classifier's
    held-out accuracy (how far a domain FID can be trusted). KID is shown x10^3."""
    from ..report.evals import METRIC_COLUMNS, format_metric, sig3
    from .domain import low_accuracy_note
    rows: list[tuple[str, str]] = [("target", str(result.get("target")))]
    if "step" in result:
        rows.append(("step", str(result["step"])))
    rows.append(("n", f"{result.get('n')} samples"))
    ref = str(result.get("ref"))
    rows.append(("reference", ref + (f" ({result['n_ref']} images)" if "n_ref" in result else "")))
    features = result.get("features")
    if features == "domain":
        rows.append(("features", f"domain: ganforge's LeNet trained on {result.get('source', '?')} "
                                 f"({result.get('train_size', '?')} images)"))
    elif features:
        rows.append(("features", str(features)))
    acc = result.get("test_accuracy")
    if isinstance(acc, (int, float)):
        rows.append(("classifier acc.", f"{sig3(100 * acc)} % on {result.get('test_size', '?')} held-out images"
                     + (low_accuracy_note(acc) or "")))
    for key, label, factor in METRIC_COLUMNS:
        text = format_metric(result, key, factor)
        if text is not None:
            rows.append((label, text))
    if "class_histogram" in result:
        rows.append(("class histogram", " ".join(str(c) for c in result["class_histogram"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
