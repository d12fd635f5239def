"""``digit-captions``: the bundled mnist5k digits, each with captions built from its label and measured attributes.

Text-to-image data that needs no download (issue 14): every digit is measured (``measure``), each measurement is
bucketed into a word by the tertiles of the 5,000 digits' own values (``tertile_cuts``), and a few phrasings are
written from the label and those words, e.g. "a thick seven leaning right", "a small thin two", "the digit 3,
upright". The measuring functions take any uint8 or [0, 1] images, so a bench measures generated digits with the
very functions the captions were made with (``measure``).

- stroke thickness: mean stroke width in pixels, ``2 * ink area / ink boundary`` (ink: pixels above half intensity;
  boundary: ink pixels with a background 4-neighbour). A stroke of width w and length l has area ~ w l and ~ 2 l
  boundary pixels, so the ratio is w whatever the digit's length; "thin" / (no word) / "thick".
- slant: the second-moment shear of the ink, ``-mu11 / mu02`` (x shift per unit of height, upward; image rows grow
  downward, hence the sign): "leaning left" / "upright" / "leaning right".
- size: the area of the ink's bounding box. MNIST digits are all scaled to a 20-pixel box, so a one is always narrow:
  size is bucketed by the tertiles of the digit's own class ("small" / (no word) / "large").

Each (image, caption) pair is one sample, as ``captions:DIR`` holds CUB's ten captions per image:
``?captions=K`` (default 3, at most ``len(TEMPLATES)``) distinct phrasings per image, picked with a fixed generator
(CAPTION_SEED, a property of the data like mnist5k's tints, not of a run). ``?split=train|test|all`` is mnist5k's
fixed 4,000 / 1,000 split (default train). The vocabulary (``meta["vocab"]``) is built from every phrasing of all
5,000 digits, so every split and every ``?captions=`` encodes words alike; ``meta["captions"]`` the caption of each sample,
``meta["attributes"]`` each sample's measured values (float32 tensors by name), ``meta["cuts"]`` the tertile cuts.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import Dataset, register_source
from .mnist5k import HELDOUT_PER_CLASS, HELDOUT_SEED, load_mnist5k, split_train_test
from .text import build_vocab, encode

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = ("thickness", "slant", "size")
# Words of the low / middle / high tertile of each attribute ("" where the middle needs no word).
WORDS = {"thickness": ("thin", "", "thick"), "slant": ("leaning left", "upright", "leaning right"),
         "size": ("small", "", "large")}
STROKE_WORDS = ("thin", "medium", "thick")      # "written with ... strokes" needs a word for the middle too
# Phrasings: {name} the number word, {digit} the numeral, {thickness} / {slant} / {size} the words above.
TEMPLATES = (
    "a {thickness} {name} {slant}",
    "a {size} {thickness} {name}",
    "the digit {digit}, {slant}",
    "a {size} {name} written with {stroke} strokes",
    "a handwritten {digit} {slant}",
    "a {size} {name}, {slant}",
)
DEFAULT_CAPTIONS = 3
CAPTION_SEED = 0
INK = 0.5           # ink: above half intensity, for uint8 or [0, 1] images alike


def _unit(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W (or N x H x W) images, uint8 or float in [0, 1], as float32 N x H x W in [0, 1] (the mean over
    channels for colour)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if x.dim() == 4:
        x = x.mean(1)
    if x.dim() != 3:
        raise DataError(f"measuring digits takes N x C x H x W or N x H x W images, got {tuple(images.shape)}")
    return x


def stroke_thickness(images: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels, ``2 * ink area / boundary length`` (module docstring); 0 for an empty image."""
    ink = (_unit(images) > INK).float().unsqueeze(1)
    # a pixel is inside when it and its four neighbours are ink (outside the image counts as background)
    cross = F.conv2d(F.pad(ink, (1, 1, 1, 1)), torch.tensor([[[[0., 1, 0], [1, 1, 1], [0, 1, 0]]]]))
    inside = (cross >= 5).float()                                               # 4-neighbourhood erosion
    area = ink.sum((1, 2, 3))
    boundary = (ink - inside).clamp(min=0).sum((1, 2, 3))
    return torch.where(boundary > 0, 2 * area / boundary.clamp(min=1), torch.zeros_like(area))


def slant(images: torch.Tensor) -> torch.Tensor:
    """Second-moment shear of the ink mass, ``-mu11 / mu02``: > 0 leans right (top to the right), < 0 left."""
    x = _unit(images)
    n, h, w = x.shape
    rows = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    mass = x.sum((1, 2)).clamp(min=1e-6)
    cy = (x * rows).sum((1, 2)) / mass
    cx = (x * cols).sum((1, 2)) / mass
    dy, dx = rows - cy.view(n, 1, 1), cols - cx.view(n, 1, 1)
    mu11 = (x * dx * dy).sum((1, 2)) / mass
    mu02 = (x * dy * dy).sum((1, 2)) / mass
    return -mu11 / mu02.clamp(min=1e-6)


def digit_size(images: torch.Tensor) -> torch.Tensor:
    """Area in pixels of the bounding box of the ink (0 for an image without ink)."""
    ink = _unit(images) > INK
    rows, cols = ink.any(2), ink.any(1)

    def extent(mask: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(mask.shape[1]).view(1, -1).expand_as(mask)
        first = torch.where(mask, idx, mask.shape[1]).min(1).values
        last = torch.where(mask, idx, -1).max(1).values
        return (last - first + 1).clamp(min=0)

    return (extent(rows) * extent(cols)).float()


def measure(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The attributes captions are built from, float32 N each: thickness, slant, size."""
    return {"thickness": stroke_thickness(images), "slant": slant(images), "size": digit_size(images)}


def tertile_cuts(values: torch.Tensor) -> tuple[float, float]:
    """The 1/3 and 2/3 quantiles of ``values``: bucket 0 below the first, 2 above the second."""
    q = torch.quantile(values.double(), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    return float(q[0]), float(q[1])


def bucket(values: torch.Tensor, cuts: tuple[float, float]) -> torch.Tensor:
    """int64 N: 0, 1 or 2, the tertile each value falls in."""
    return (values > cuts[0]).long() + (values > cuts[1]).long()


def phrase(template: str, label: int, buckets: dict[str, int]) -> str:
    """One caption: ``template`` filled with the number word, numeral and attribute words, spaces tidied."""
    words = {a: WORDS[a][buckets[a]] for a in ATTRIBUTES}
    text = template.format(name=NUMBER_WORDS[label], digit=label, stroke=STROKE_WORDS[buckets["thickness"]], **words)
    return " ".join(text.replace(" ,", ",").split()).rstrip(",")


@lru_cache(maxsize=4)
def _all_captions(per_image: int) -> tuple[list[list[str]], dict[str, torch.Tensor], dict]:
    """Captions of all 5,000 digits (``per_image`` each), their measured attributes, and the tertile cuts."""
    ds = load_mnist5k()
    values = measure(ds.x)
    cuts: dict = {a: tertile_cuts(values[a]) for a in ("thickness", "slant")}
    size_bucket = torch.empty(len(ds), dtype=torch.int64)
    cuts["size"] = {}
    for c in range(10):       # size within the class: a one is always narrow (module docstring)
        rows = torch.nonzero(ds.y == c).flatten()
        cuts["size"][str(c)] = tertile_cuts(values["size"][rows])
        size_bucket[rows] = bucket(values["size"][rows], cuts["size"][str(c)])
    buckets = {"thickness": bucket(values["thickness"], cuts["thickness"]),
               "slant": bucket(values["slant"], cuts["slant"]), "size": size_bucket}
    g = torch.Generator().manual_seed(CAPTION_SEED)
    captions = []
    for i in range(len(ds)):
        chosen = torch.randperm(len(TEMPLATES), generator=g)[:per_image].sort().values.tolist()
        b = {a: int(buckets[a][i]) for a in ATTRIBUTES}
        captions.append([phrase(TEMPLATES[t], int(ds.y[i]), b) for t in chosen])
    return captions, values, cuts


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[list[str], int]:
    """(the vocabulary, the longest caption in words) of every phrasing of every digit, whatever ``?captions=`` picks:
    token ids mean the same words in every split and every number of phrasings (a model trained on one reads another)."""
    everything = _all_captions(len(TEMPLATES))[0]
    return build_vocab(c for caps in everything for c in caps), max(len(c.split()) for caps in everything for c in caps)


def load_digit_captions(split: str = "train", per_image: int = DEFAULT_CAPTIONS, name: str = "digit-captions"
                        ) -> Dataset:
    """(digit, caption) samples of one mnist5k split (module docstring)."""
    captions, values, cuts = _all_captions(per_image)
    ds = load_mnist5k()
    index = torch.arange(len(ds))
    if split != "all":
        tagged = Dataset(x=ds.x, y=ds.y, name=ds.name, class_names=ds.class_names, fields={"domain": index})
        train, test = split_train_test(tagged, test_per_class=HELDOUT_PER_CLASS, seed=HELDOUT_SEED)
        index = (train if split == "train" else test).fields["domain"]
    rows = index.repeat_interleave(per_image)
    sample_captions = [captions[i][k] for i in index.tolist() for k in range(per_image)]
    vocab, max_len = _vocabulary()
    meta = {"source": "digit-captions", "split": split, "vocab": vocab, "captions": sample_captions,
            "captions_per_image": per_image, "max_len": max_len, "image_index": rows,
            "attributes": {a: values[a][rows] for a in ATTRIBUTES}, "cuts": cuts}
    return Dataset(x=ds.x[rows], y=ds.y[rows], name=name, class_names=list(ds.class_names or []), meta=meta,
                   fields={"text": encode(sample_captions, vocab, max_len)})


def _options(arg: str, spec: str) -> dict[str, str]:
    refusal = DataError(f"data source 'digit-captions' takes only ?split=train|test|all and ?captions=1..."
                        f"{len(TEMPLATES)}, joined by & (got '{spec}')")
    if not arg:
        return {}
    if not arg.startswith("?"):
        raise refusal
    options = {}
    for item in filter(None, arg[1:].split("&")):
        key, eq, value = item.partition("=")
        if key not in ("split", "captions") or not eq or not value:
            raise refusal
        options[key] = value
    return options


@register_source("digit-captions", "the mnist5k digits captioned from their label and measured stroke thickness, "
                 "slant and size (\"a thick seven leaning right\"), one sample per (digit, caption): "
                 f"digit-captions[?split=train|test|all&captions=1..{len(TEMPLATES)}] (default train, 3 captions)",
                 keys=("image", "label", "text"), argument=False)
def _digit_captions(arg: str, seed: int) -> Dataset:
    spec = f"digit-captions{arg}"
    options = _options(arg, spec)
    split = options.get("split", "train")
    if split not in ("train", "test", "all"):
        raise DataError(f"unknown split {split!r} in '{spec}'; use ?split=train (4,000 digits), ?split=test (the "
                        "1,000 held out) or ?split=all")
    per_image = options.get("captions", str(DEFAULT_CAPTIONS))
    if not per_image.isdigit() or not 1 <= int(per_image) <= len(TEMPLATES):
        raise DataError(f"?captions={per_image} in '{spec}': give a number of phrasings per digit from 1 to "
                        f"{len(TEMPLATES)}")
    return load_digit_captions(split, int(per_image), name=spec)
