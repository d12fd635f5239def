"""The data vocabulary: an in-memory dataset, the source registry, and preparation to a model's shape.

Every source (``mnist5k``, ``idx:PATH``, ``folder:PATH``, ``npz:PATH``, ``cifar10:PATH``, ``toy:ring8`` ...)
loads into one ``Dataset`` held in memory as a single tensor, so batches are made by indexing, never
by Python work per sample. Images are stored as uint8 NCHW (0..255) and converted to the model's
value range only when a batch is drawn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.nn.functional as F

from ..errors import DataError
from ..registry import Registry

Kind = Literal["image", "vector"]


@dataclass
class Dataset:
    """A whole dataset in memory.

    ``x``: uint8 ``N x C x H x W`` for images (0..255), float32 ``N x D`` for vector data (toy 2-D).
    ``y``: int64 ``N`` class labels, or None for unlabelled data.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    name: str
    kind: Kind = "image"
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "image" and (self.x.dtype != torch.uint8 or self.x.ndim != 4):
            raise ValueError(f"image dataset {self.name} must be uint8 NCHW, got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"dataset {self.name}: {len(self.x)} samples but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

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
        )


# A loader gets the text after "name:" (a path, or a toy name) and the run seed.
Loader = Callable[[str, int], Dataset]
# Known sources are listed as they are written: ``mnist5k`` alone, the others with their argument (``idx:...``).
SOURCES: Registry[Loader] = Registry("data source", error=DataError,
                                     shown=lambda prefix: prefix if prefix == "mnist5k" else f"{prefix}:...")
_SOURCES = SOURCES   # the name metrics/evaluate.py asks ("is this a source prefix?")


def register_source(prefix: str, help: str) -> Callable[[Loader], Loader]:
    """Register a loader for specs ``prefix`` or ``prefix:ARG``; ``help`` is shown by ``ganforge list``."""
    return SOURCES.register(prefix, help)


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


def prepare(ds: Dataset, image_size: int | None, channels: int | None) -> Dataset:
    """Bring an image dataset to the model's channels and square size; vector data passes through."""
    if ds.kind != "image":
        return ds
    x = ds.x
    if channels is not None:
        x = _to_channels(x, channels, ds.name)
    if image_size is not None:
        check_fits_in_memory(len(x), x.shape[1] * image_size * image_size, ds.name, f"data.image_size={image_size}",
                             "use a smaller data.image_size")
        x = _resize(x, image_size)
    return Dataset(x=x, y=ds.y, name=ds.name, kind=ds.kind, class_names=ds.class_names, meta=dict(ds.meta))


def to_model_range(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """uint8 images (0..255) to float in the model's range, e.g. (0, 1) for sigmoid or (-1, 1) for tanh."""
    lo, hi = value_range
    return x.float().mul_((hi - lo) / 255.0).add_(lo)


def to_uint8(x: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Float images in the model's range back to uint8 (0..255), clamping out-of-range values."""
    lo, hi = value_range
    return ((x.detach().float() - lo) * (255.0 / (hi - lo))).round().clamp(0, 255).to(torch.uint8)
