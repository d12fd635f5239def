"""Content preservation: does a translation keep what the image shows (does a 3 stay a 3)?

The accuracy of a classifier on translated images, against the labels of the images they were translated from.
The classifier is a domain classifier (:mod:`ganforge.metrics.domain`): a LeNet trained deterministically on a
labelled source at that source's own size and channel count, cached. Pass one, or the source spec to train it
on (``mnist5k``, ``folder:digits/``, ...; a ``?split=`` is dropped, so that a held-out split stays unseen by it).

What the figure means: an identity "translation" of held-out images scores the classifier's own held-out accuracy
(about 98 % for ``mnist5k``), the ceiling a translator can reach; a translator that scrambles content falls to
chance (1 / classes). The result carries the classifier's held-out accuracy, so the two can be read together.
"""
from __future__ import annotations

from typing import Any

import torch

from ..data import Dataset, prepare
from ..errors import DataError
from .domain import DomainClassifier, domain_classifier


def content_classifier(source: str, seed: int = 0) -> DomainClassifier:
    """The domain classifier of ``source``'s training split (trained on first use, then cached)."""
    from .evaluate import classifier_source
    return domain_classifier(classifier_source(source), seed=seed)


def content_preservation(classifier: DomainClassifier | str, images: torch.Tensor, labels: torch.Tensor,
                         value_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """Accuracy of ``classifier`` on ``images`` (N x C x H x W: uint8, or float in ``value_range``) against
    ``labels`` (N class indices, those of the inputs the images were translated from): overall and per class.

    Images of another size are resized to the classifier's (bilinear, as its ``predict`` does); 3-channel images
    given to a 1-channel classifier are converted to luma (and 1-channel ones repeated to 3), since a digit's
    class survives the colour change a translation between, say, MNIST and MNIST-M makes."""
    clf = content_classifier(classifier) if isinstance(classifier, str) else classifier
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"content preservation: images must be N x C x H x W, got {shape}")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or len(labels) != len(images):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise DataError(f"content preservation: labels must be {len(images)} class indices (one per image), "
                        f"got {shape}")
    if len(images) == 0:
        raise DataError("content preservation: no images to classify")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise DataError(f"content preservation: labels must be integers, got {labels.dtype}")
    k = len(clf.class_names)
    lab = labels.to(torch.int64)
    if int(lab.min()) < 0 or int(lab.max()) >= k:
        raise DataError(f"content preservation: labels must lie in 0..{k - 1} (the {clf.source} classifier's "
                        f"classes), got {int(lab.min())}..{int(lab.max())}")
    converted = None
    if images.shape[1] != clf.channels:
        if images.dtype != torch.uint8:
            from ..data import to_uint8
            images = to_uint8(images, value_range or (0.0, 1.0))
            value_range = None
        converted = f"{images.shape[1]}->{clf.channels}"
        images = prepare(Dataset(x=images, y=None, name="translated images"), None, clf.channels).x
    probs, _ = clf.predict(images, value_range)
    pred = probs.argmax(1)
    hit = (pred == lab).to(torch.float64)
    per_class = [float(hit[lab == c].mean()) if bool((lab == c).any()) else None for c in range(k)]
    return {"content_accuracy": float(hit.mean()), "content_accuracy_per_class": per_class,
            "n": len(images), "chance": 1.0 / k, "classifier": clf.source,
            "classifier_accuracy": clf.test_accuracy, "converted_channels": converted}
