"""Feature extractors for SRGAN's content loss: VGG19 from a local weights file, or ganforge's own domain classifier.

Ledig et al. 2017, section 2.2.1: the VGG content loss is the mean squared difference of the feature maps phi_{i,j}
of a pretrained VGG19 on the HR image and on G's output, phi_{i,j} being the map after the j-th convolution (after
its ReLU) before the i-th max-pooling; SRGAN-VGG54 (the paper's main model) takes conv5_4, SRGAN-VGG22 conv2_2. The
features are rescaled by 1/12.75 "to obtain VGG losses of a scale comparable to the MSE loss" (the paper's footnote):
here the maps are divided by 12.75 before the squared difference is averaged over every element (channels and
positions: the mean the reimplementations take).

The ImageNet weights cannot be downloaded at run time: ``load_vgg19(path)`` reads a local file in torchvision's
``vgg19`` state-dict layout (``features.0.weight`` ... ``features.34.bias``; torchvision's ``vgg19-dcbb9e9d.pth``, or
a ``.safetensors`` copy), read safely (safetensors, or ``torch.load(weights_only=True)``: nothing is unpickled);
the network is built here, without torchvision. Keys the cut does not use (the classifier, later layers) are ignored.
Images enter in the model's range, are mapped to [0, 1], grey ones repeated to RGB, and normalised with the
ImageNet mean and standard deviation torchvision's weights were trained with.

Without the file, ``DomainFeatures`` gives a content loss from ganforge's own LeNet domain classifier
(``metrics/domain.py``, trained on a labelled source such as the bundled digits and cached): the mean squared
difference of its 128-d penultimate features. It is no VGG: a feature loss of a small classifier of the same data.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError

VGGLayer = Literal["vgg22", "vgg54"]
WEIGHTS_FILENAME = "vgg19-dcbb9e9d.pth"
# torchvision's VGG19 ("configuration E"): conv widths, "M" a 2x2 max-pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
# phi_{i,j}: the (i, j) of each loss, the j-th conv before the i-th max-pool, after its ReLU.
VGG_CUTS: dict[str, tuple[int, int]] = {"vgg22": (2, 2), "vgg54": (5, 4)}
VGG_RESCALE = 1.0 / 12.75
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_trunk(layer: VGGLayer) -> nn.Sequential:
    """torchvision's ``vgg19().features`` (same indices, so its state-dict keys load) up to the ReLU after conv
    ``layer`` (``vgg54``: features[0..35], before the 5th max-pool at index 36)."""
    block, conv = VGG_CUTS[layer]
    layers: list[nn.Module] = []
    width, seen_block, seen_conv = 3, 1, 0
    for item in VGG19_LAYOUT:
        if item == "M":
            seen_block, seen_conv = seen_block + 1, 0
            layers.append(nn.MaxPool2d(2, 2))
            continue
        seen_conv += 1
        layers += [nn.Conv2d(width, int(item), 3, padding=1), nn.ReLU(inplace=True)]
        width = int(item)
        if (seen_block, seen_conv) == (block, conv):
            return nn.Sequential(*layers)
    raise ValueError(f"no conv {conv} before max-pool {block} in VGG19")


class VGGFeatures(nn.Module):
    """phi_{i,j} of VGG19 for images in ``value_range``, divided by 12.75 (the paper's rescaling)."""

    def __init__(self, layer: VGGLayer = "vgg54", value_range: tuple[float, float] = (-1.0, 1.0),
                 rescale: float = VGG_RESCALE):
        super().__init__()
        self.layer, self.value_range, self.rescale = layer, value_range, rescale
        self.features = vgg19_trunk(layer)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lo, hi = self.value_range
        x = (images - lo) / (hi - lo)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std) * self.rescale


def feature_loss(extractor: nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the extractor's features of ``output`` and of ``target`` (no gradient into the
    target's features), in float32."""
    with torch.no_grad():
        want = extractor(target).float()
    return (extractor(output).float() - want).square().mean()


def _where_to_get_it() -> str:
    return (f"give torchvision's ImageNet VGG19 weights ({WEIGHTS_FILENAME}, or a .safetensors copy with its "
            "features.* keys) as --set algorithm.vgg_weights=PATH")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from .weights_file import read_weights_file
    return read_weights_file(path, "VGG19 weights", f"{WEIGHTS_FILENAME} (torchvision's vgg19 layout)")


def load_vgg19(path: str | os.PathLike[str] | None, layer: VGGLayer = "vgg54",
               value_range: tuple[float, float] = (-1.0, 1.0), device: str | torch.device = "cpu") -> VGGFeatures:
    """``VGGFeatures`` with weights from a local torchvision-layout file, in eval mode and without gradients.

    Raises ConfigError when no file is given or it does not exist, CheckpointError (one line) when it cannot be read
    or lacks a tensor of the trunk, or has one of another shape."""
    if path is None or str(path) == "":
        raise ConfigError(f"the {layer} content loss needs ImageNet VGG19 weights: {_where_to_get_it()}")
    weights_path = Path(path).expanduser()
    if not weights_path.is_file():
        raise ConfigError(f"VGG19 weights file {weights_path} not found: {_where_to_get_it()}")
    state = _read_state_dict(weights_path)
    model = VGGFeatures(layer, value_range)
    wanted = {f"features.{k}": v for k, v in model.features.state_dict().items()}
    missing = [k for k in wanted if k not in state]
    if missing:
        raise CheckpointError(f"VGG19 weights {weights_path} lack {len(missing)} tensor(s) of the {layer} trunk "
                              f"(e.g. {', '.join(missing[:3])}; it has {len(state)} keys such as "
                              f"{', '.join(list(state)[:2]) or 'none'}); expected torchvision's vgg19 layout "
                              f"({WEIGHTS_FILENAME})")
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in wanted.items() if state[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"VGG19 weights {weights_path} have {len(wrong)} tensor(s) of the wrong shape (e.g. "
                              f"{'; '.join(wrong[:2])}); expected torchvision's vgg19 layout ({WEIGHTS_FILENAME})")
    model.features.load_state_dict({k[len("features."):]: state[k].float() for k in wanted}, strict=True)
    return model.eval().requires_grad_(False).to(device)


class DomainFeatures(nn.Module):
    """The 128-d penultimate features of ganforge's LeNet domain classifier (``metrics/domain.py``) for images in
    ``value_range``, resized to the classifier's image size when they differ; a differentiable map for a loss."""

    def __init__(self, net: nn.Module, image_size: int, channels: int,
                 value_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        self.net, self.image_size, self.channels, self.value_range = net, image_size, channels, value_range

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != self.channels:
            raise ConfigError(f"the domain content loss's classifier takes {self.channels}-channel images, the "
                              f"model makes {images.shape[1]}-channel ones; use a domain_source of the model's data")
        lo, hi = self.value_range
        x = ((images - lo) / (hi - lo)).clamp(0, 1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                          align_corners=False, antialias=True)
        return self.net.features(x)


def domain_features(source: str, value_range: tuple[float, float] = (-1.0, 1.0),
                    device: str | torch.device = "cpu") -> DomainFeatures:
    """``DomainFeatures`` of the cached domain classifier of ``source`` (trained on first use, about a minute on a
    CPU for the bundled digits; ``metrics/domain.py``), frozen, in eval mode."""
    from .domain import domain_classifier
    clf = domain_classifier(source)
    net = clf.net.eval().requires_grad_(False)
    return DomainFeatures(net, clf.image_size, clf.channels, value_range).to(device)
