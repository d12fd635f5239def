"""The data vocabulary: an in-memory dataset, the source registry, and preparation to a model's shape.

Every source (``mnist5k``, ``idx:PATH``, ``folder:PATH``, ``npz:PATH``, ``cifar10:PATH``, ``toy:ring8`` ...)
loads into one ``Dataset`` held in memory as a single tensor, so batches are made by indexing, never
by Python work per sample. Images are stored as uint8 NCHW (0..255) and converted to the model's
value range only when a batch is drawn. (A folder too large for that is streamed instead: ``data/streaming.py``.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.nn.functional as F

from ..errors import DataError
from ..registry import Registry

Kind = Literal["image", "vector"]


# The names a batch may carry (a source yields some, an algorithm needs some; DESIGN.md "v2: named batches"):
#   image       uint8 N x C x H x W (the main image; ``Dataset.x`` of an image source)
#   vector      float32 N x D (``Dataset.x`` of vector data, e.g. the 2-D toy mixtures)
#   label       int64 N class labels (``Dataset.y``)
#   target      uint8 N x C x H x W, the paired image (pix2pix's B for an A, zi2zi's glyph in the other font)
#   lowres      uint8 N x C x h x w, the low-resolution input of super-resolution
#   attributes  float32 N x K multi-hot attributes (CelebA's Black_Hair, Male, ...)
#   domain      int64 N domain index (StarGAN / ComboGAN: which font, which digit style)
#   text        int64 N x L token ids (0 = padding) of a caption
BATCH_KEYS = ("image", "vector", "label", "target", "lowres", "attributes", "domain", "text")
# Fields that are images of the same geometry as ``image``: data.image_size / data.channels convert them with it.
FOLLOW_IMAGE = ("target",)


@dataclass
class Dataset:
    """A whole dataset in memory.

    ``x``: uint8 ``N x C x H x W`` for images (0..255), float32 ``N x D`` for vector data (toy 2-D).
    ``y``: int64 ``N`` class labels, or None for unlabelled data.
    ``fields``: further named per-sample tensors (first dimension N), one of ``BATCH_KEYS`` each: ``target``,
    ``lowres``, ``attributes``, ``domain``, ``text``. Image fields are uint8 NCHW like ``x``.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    name: str
    kind: Kind = "image"
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)
    fields: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "image" and (self.x.dtype != torch.uint8 or self.x.ndim != 4):
            raise ValueError(f"image dataset {self.name} must be uint8 NCHW, got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"dataset {self.name}: {len(self.x)} samples but {len(self.y)} labels")
        for key, value in self.fields.items():
            if key not in BATCH_KEYS or key in ("image", "vector", "label"):
                raise ValueError(f"dataset {self.name}: field {key!r} is not one of {', '.join(BATCH_KEYS[3:])}")
            if len(value) != len(self.x):
                raise ValueError(f"dataset {self.name}: {len(self.x)} samples but {len(value)} in field {key!r}")
            if key in ("target", "lowres") and (value.dtype != torch.uint8 or value.ndim != 4):
                raise ValueError(f"dataset {self.name}: field {key!r} must be uint8 NCHW images, got "
                                 f"{value.dtype} {tuple(value.shape)}")

    def __len__(self) -> int:
        return len(self.x)

    def keys(self) -> tuple[str, ...]:
        """The batch keys this dataset yields, e.g. ("image", "label") or ("image", "target")."""
        main = ("image",) if self.kind == "image" else ("vector",)
        return main + (("label",) if self.y is not None else ()) + tuple(self.fields)

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        if self.y is None or len(self.y) == 0:
            return 0
        return int(self.y.max()) + 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    def subset(self, index: torch.Tensor, name: str | None = None) -> "Dataset":
        return Dataset(
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            name=name or self.name,
            kind=self.kind,
            class_names=self.class_names,
            meta=dict(self.meta),
            fields={k: v[index] for k, v in self.fields.items()},
        )


# A loader gets the text after "name:" (a path, or a toy name) and the run seed.
Loader = Callable[[str, int], Dataset]
# Known sources are listed as they are written: ``mnist5k`` alone, the others with their argument (``idx:...``).
SOURCES: Registry[Loader] = Registry("data source", error=DataError,
                                     shown=lambda prefix: prefix if not SOURCE_ARGUMENT.get(prefix, True)
                                     else f"{prefix}:...")
_SOURCES = SOURCES   # the name metrics/evaluate.py asks ("is this a source prefix?")


# The batch keys each source yields (at least; options such as ?attrs= may add some), for the one-line refusal of an
# algorithm given data without the keys it needs: it names the sources that would fit.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {}
# Whether a source is written with an argument after "name:" (idx:DIR) or alone, options aside (mnist5k, photos).
SOURCE_ARGUMENT: dict[str, bool] = {}


def register_source(prefix: str, help: str, keys: tuple[str, ...] = ("image", "label"),
                    argument: bool = True) -> Callable[[Loader], Loader]:
    """Register a loader for specs ``prefix`` or ``prefix:ARG``; ``help`` is shown by ``ganforge list``; ``keys``
    are the batch keys its datasets yield (``label`` where labels may be present); ``argument=False`` for a source
    named alone (``mnist5k``, ``photos``), so error messages list it without ``:...``."""
    SOURCE_KEYS[prefix] = tuple(keys)
    SOURCE_ARGUMENT[prefix] = argument
    return SOURCES.register(prefix, help)


def sources_yielding(keys: tuple[str, ...] | list[str]) -> list[str]:
    """Registered source prefixes whose datasets yield every key in ``keys``."""
    return [p for p, have in sorted(SOURCE_KEYS.items()) if all(k in have for k in keys)]


def source_help() -> dict[str, str]:
    return SOURCES.describe()


def load_source(spec: str, seed: int = 0) -> Dataset:
    """Load a dataset from a source spec such as ``mnist5k``, ``idx:/data/mnist`` or ``toy:ring8``."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"data source must be a non-empty string like 'mnist5k' or 'folder:PATH', got {spec!r}")
    prefix, _, arg = spec.partition(":")
    if "?" in prefix and not arg:          # a source without a path, with options: mnist5k?split=test
        prefix, _, query = prefix.partition("?")
        arg = "?" + query
    loader = SOURCES.get(prefix, spelled=spec)
    return loader(arg, seed)


# ----------------------------------------------------------------------------------------- preparation
def _to_channels(x: torch.Tensor, channels: int, name: str) -> torch.Tensor:
    c = x.shape[1]
    if c == channels:
        return x
    if channels == 1 and c in (3, 4):
        # ITU-R 601 luma, as PIL's "L" conversion; alpha is dropped.
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x[:, :3].float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if channels == 3 and c == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    if channels == 3 and c == 4:
        return x[:, :3].contiguous()
    raise DataError(f"data {name} has {c} channels and the model wants {channels}; "
                    f"set model channels to {c} (--set data.channels={c})")


def memory_limit_bytes() -> int:
    """Half the machine's RAM (16 GiB where it cannot be read): the most one in-memory dataset may take."""
    import os
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def check_fits_in_memory(n: int, sample_bytes: int, name: str, what: str, fix: str) -> None:
    """Refuse, before allocating, a dataset of ``n`` samples of ``sample_bytes`` each that would not fit in memory:
    the allocator's own failure is a traceback (or the OOM killer) minutes later."""
    need, limit = n * sample_bytes, memory_limit_bytes()
    if need > limit:
        raise DataError(f"{what} would make data {name} {need / 2**30:,.1f} GiB in memory ({n} samples x "
                        f"{sample_bytes:,} bytes), more than the {limit / 2**30:,.1f} GiB (half this machine's RAM) "
                        f"one dataset may take; {fix}")


def _resize(x: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Resize uint8 NCHW images to size x size (antialiased bilinear), in chunks to bound memory."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    # Each chunk is held as float32 before and after resizing: keep that under ~256 MB whatever the size.
    per_image = 4 * x.shape[1] * (size * size + x.shape[-1] * x.shape[-2])
    chunk = max(1, min(chunk, (256 << 20) // per_image))
    out = []
    for i in range(0, len(x), chunk):
        xf = x[i:i + chunk].float()
        yf = F.interpolate(xf, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(yf.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else x.new_zeros((0, x.shape[1], size, size))


def _prepare_lowres(ds: Dataset, image_size: int | None, channels: int | None) -> torch.Tensor:
    """Super-resolution's input in the model's channels, resized with the image so that it keeps its scale to it:
    to image_size / scale, never to image_size."""
    lowres, side = ds.fields["lowres"], ds.x.shape[-1]
    if channels is not None:
        lowres = _to_channels(lowres, channels, ds.name)
    if image_size is None:
        return lowres
    scale = side // lowres.shape[-1]
    if scale < 1 or side != lowres.shape[-1] * scale or image_size % scale:
        raise DataError(f"{ds.name}: data.image_size={image_size} must be a multiple of the low-resolution input's "
                        f"scale x{scale} ({side} px images, {lowres.shape[-1]} px lowres); use "
                        f"{max(scale, image_size // max(scale, 1) * scale)} or leave data.image_size unset")
    return _resize(lowres, image_size // scale)


def prepare(ds: Dataset, image_size: int | None, channels: int | None) -> Dataset:
    """Bring an image dataset to the model's channels and square size; vector data passes through."""
    if ds.kind != "image":
        return ds
    follow = [k for k in FOLLOW_IMAGE if k in ds.fields]
    images = {"image": ds.x, **{k: ds.fields[k] for k in follow}}
    if channels is not None:
        images = {k: _to_channels(v, channels, ds.name) for k, v in images.items()}
    if image_size is not None:
        per_sample = sum(v.shape[1] for v in images.values()) * image_size * image_size
        check_fits_in_memory(len(ds.x), per_sample, ds.name, f"data.image_size={image_size}",
                             "use a smaller data.image_size")
        images = {k: _resize(v, image_size) for k, v in images.items()}
    fields = {**ds.fields, **{k: images[k] for k in follow}}
    if "lowres" in ds.fields:
        fields["lowres"] = _prepare_lowres(ds, image_size, channels)
    return Dataset(x=images["image"], y=ds.y, name=ds.name, kind=ds.kind, class_names=ds.class_names,
                   meta=dict(ds.meta), fields=fields)


def to_model_range(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """uint8 images (0..255) to float in the model's range, e.g. (0, 1) for sigmoid or (-1, 1) for tanh."""
    lo, hi = value_range
    return x.float().mul_((hi - lo) / 255.0).add_(lo)


def to_uint8(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Float images in the model's range back to uint8 (0..255), clamping out-of-range values."""
    lo, hi = value_range
    return ((x.detach().float() - lo) * (255.0 / (hi - lo))).round().clamp(0, 255).to(torch.uint8)
