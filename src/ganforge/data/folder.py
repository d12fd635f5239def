"""``folder:PATH``: a folder of images, read with Pillow; class subfolders become labels.

Layout: ``PATH/<class>/.../*.png`` gives labelled data, the class names being the subfolder names in sorted
order (label i = i-th name, as torchvision's ImageFolder does); ``PATH/*.png`` with no image-holding
subfolders gives unlabelled data. Both at once is refused (it is ambiguous which images have which label).
Hidden files and folders (``.name``) are skipped, as are files whose extension is not an image one and
subfolders that hold no image (they are not classes).

Every image is brought to one square uint8 shape:
- orientation from its EXIF tag is applied (phone photos);
- transparency is composited over black (the colour stored under a fully transparent pixel is arbitrary);
- 16-bit grey (``I;16``) is scaled by 255/65535 rather than clipped, as Pillow's own conversion would do;
- the mode becomes ``L`` (1 channel) or ``RGB`` (3): the majority of the files decides, ties go to RGB;
- the centre square (side = shorter edge) is cropped, then resized with Pillow's antialiased LANCZOS when
  shrinking and BICUBIC when enlarging (less ringing), to the target side.
The target side is ``image_size`` when given, else the most common square side among the files (the larger
on a tie); when every file is already square at that side nothing is resampled, and ``prepare()`` later
brings the data to the model's size. A run that wants a size should pass it here (``folder:DIR?size=64``)
so each image is resampled once, from the original.

Memory: a first pass reads only headers (size and mode) to fix N, channels and side; the second decodes one
image at a time into a preallocated uint8 N x C x S x S array, so the peak is the dataset plus one image.
Bad files fail fast: the first unreadable or corrupt image stops loading with a DataError naming it, so a
run never trains on a silently shrunken dataset.

What was done is said once per folder and shape on stderr (and kept as ``meta["summary"]``): how many images,
which classes with how many each, the original sizes, and how many were cropped, resized or converted, so a
folder of mixed photos is never silently squashed into something else.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import DataError
from .base import Dataset, register_source
from .idx import error_reason, require_existing, split_path_and_options

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Modes whose content is one grey value per pixel (with or without alpha); every other mode is colour.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_RESAMPLING = getattr(Image, "Resampling", Image)  # Pillow >= 9.1 moved the filters into an enum


@dataclass(frozen=True)
class _ImageFile:
    path: Path
    side: int  # the shorter edge: the side of the centre square
    grey: bool
    width: int = 0
    height: int = 0


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere below ``folder``, in a deterministic (sorted) order, hidden folders skipped."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(current) / f for f in sorted(files) if _is_image(Path(f)))
    return found


def _open_error(path: Path, err: Exception) -> DataError:
    reason = error_reason(err)
    return DataError(f"cannot read image {path}: {reason}; replace or delete that file (the folder loader stops at "
                     f"the first bad image)")


def _scan(root: Path) -> tuple[list[Path], list[int], list[str] | None]:
    """All image files with their labels, and the class names (None for a flat, unlabelled folder)."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    top_files = [p for p in entries if p.is_file() and _is_image(p)]
    class_files = {d.name: _images_under(d) for d in entries if d.is_dir()}
    class_files = {name: files for name, files in class_files.items() if files}
    if class_files and top_files:
        raise DataError(f"{root} has both images ({top_files[0].name}, ...) and class subfolders "
                        f"({', '.join(sorted(class_files))}); move the loose images into a class folder or elsewhere")
    if top_files:
        return top_files, [-1] * len(top_files), None
    if not class_files:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"no images found in {root} or its subfolders (looked for {exts}); "
                        f"put images there, or in one subfolder per class")
    class_names = sorted(class_files)
    paths = [p for name in class_names for p in class_files[name]]
    labels = [i for i, name in enumerate(class_names) for _ in class_files[name]]
    return paths, labels, class_names


def _read_header(path: Path) -> _ImageFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height, mode = img.width, img.height, img.mode
    except Exception as err:  # noqa: BLE001 (any failure to parse a header means a bad file, see _decode)
        raise _open_error(path, err) from None
    if width < 1 or height < 1:
        raise DataError(f"image {path} is empty ({width}x{height}); delete it")
    return _ImageFile(path, min(width, height), mode in GREY_MODES, width, height)


def _to_mode(img: Image.Image, grey: bool) -> Image.Image:
    """Convert any Pillow mode to ``L`` or ``RGB`` (alpha over black, 16-bit grey scaled, not clipped)."""
    target = "L" if grey else "RGB"
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert(target)
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        peak = float(values.max()) if values.size else 0.0
        if img.mode == "F" and peak <= 1.0:
            scale = 255.0  # float images in [0, 1]
        elif img.mode.startswith("I;16") or peak > 255.0:
            scale = 255.0 / 65535.0  # 16-bit grey; Pillow reads 16-bit PNGs as I;16 (or I in older versions)
        else:
            scale = 1.0
        grey8 = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey8, mode="L").convert(target)
    return img if img.mode == target else img.convert(target)


def _decode(item: _ImageFile, side: int, grey: bool) -> np.ndarray:
    """One image as a uint8 C x side x side array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the header pass already judged the size
        try:
            with Image.open(item.path) as opened:
                # Decoding a damaged file can fail inside any codec or tag parser with any exception type; all
                # of them mean "this file is bad", so all of them become the one-line error naming the file.
                img = ImageOps.exif_transpose(opened)
                img.load()
        except Exception as err:  # noqa: BLE001 (see above)
            raise _open_error(item.path, err) from None
    width, height = img.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    if crop != width or crop != height:
        img = img.crop((left, top, left + crop, top + crop))
    try:
        img = _to_mode(img, grey)
    except ValueError as err:  # e.g. a LAB TIFF: Pillow has no conversion to RGB
        raise _open_error(item.path, err) from None
    if crop != side:
        resample = _RESAMPLING.LANCZOS if crop > side else _RESAMPLING.BICUBIC
        img = img.resize((side, side), resample=resample)
    pixels = np.asarray(img, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _most_common_side(sides: list[int]) -> int:
    counts = Counter(sides)
    return max(counts, key=lambda s: (counts[s], s))


def load_folder(path: Path | str, image_size: int | None = None, channels: int | None = None,
                name: str | None = None) -> Dataset:
    """Load every image under ``path`` into one uint8 N x C x S x S dataset (see the module docstring).

    ``image_size``: the side S (default: the most common square side of the files).
    ``channels``: 1 or 3 (default: the majority of the files; RGB on a tie).
    """
    root = Path(path)
    name = name or f"folder:{root}"
    _check_folder(root, image_size, channels, name)
    plan = plan_folder(root, image_size, channels, name)
    images = np.empty((len(plan.items), plan.channels, plan.side, plan.side), dtype=np.uint8)
    for i, item in enumerate(plan.items):  # pass 2: decode one image at a time into the preallocated array
        images[i] = _decode(item, plan.side, grey=plan.channels == 1)
    _say_once(plan.summary)   # after decoding, as always: a folder with a bad file stops before its summary
    return Dataset(x=torch.from_numpy(images), y=plan.labels_tensor(), name=name, class_names=plan.class_names,
                   meta=plan.meta())


@dataclass
class FolderPlan:
    """Pass 1 of a folder (headers only): its files, labels and the shape each image is decoded to. ``load_folder``
    decodes all of it into memory; the streamed data path (``data/streaming.py``) decodes one file per sample."""

    root: Path
    name: str
    items: list[_ImageFile]
    labels: list[int]
    class_names: list[str] | None
    side: int
    channels: int
    summary: str

    def labels_tensor(self) -> torch.Tensor | None:
        return torch.tensor(self.labels, dtype=torch.int64) if self.class_names is not None else None

    def decode(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 C x side x side, exactly the row ``load_folder`` stores for it."""
        return _decode(self.items[i], self.side, grey=self.channels == 1)

    def meta(self) -> dict[str, Any]:
        return {"source": "folder", "root": str(self.root), "image_size": self.side, "channels": self.channels,
                "resampled": sum(it.side != self.side for it in self.items), "summary": self.summary}


def plan_folder(root: Path, image_size: int | None, channels: int | None, name: str) -> FolderPlan:
    """Scan ``root`` and read every header: N, labels, channels and side fixed, nothing decoded. The summary line is
    the caller's to say (``load_folder`` after decoding, ``open_folder`` at once)."""
    paths, labels, class_names = _scan(root)
    items = [_read_header(p) for p in paths]  # pass 1: headers only, to fix the array's shape
    side = image_size or _most_common_side([it.side for it in items])
    if channels is None:
        grey_count = sum(it.grey for it in items)
        channels = 1 if grey_count > len(items) - grey_count else 3
    summary = describe_load(name, items, labels, class_names, side, channels)
    return FolderPlan(root, name, items, labels, class_names, side, channels, summary)


def _counted(counts: Counter, limit: int, fmt: Callable[[Any], str]) -> str:
    """``a (3), b (2), ... (4 more)``: the ``limit`` most common entries of ``counts``, most common first."""
    common = counts.most_common()
    text = ", ".join(f"{fmt(k)} ({v})" for k, v in common[:limit])
    return text + (f", ... ({len(common) - limit} more)" if len(common) > limit else "")


def describe_load(name: str, items: list[_ImageFile], labels: list[int], class_names: list[str] | None,
                  side: int, channels: int) -> str:
    """One line: what a folder held and what loading did to it."""
    n = len(items)
    if class_names is None:
        classes = "no class subfolders (unlabelled)"
    else:
        per_class = Counter(class_names[i] for i in labels)
        classes = f"{len(class_names)} classes: " + ", ".join(f"{c} {per_class[c]}" for c in class_names[:6])
        classes += f", ... ({len(class_names) - 6} more)" if len(class_names) > 6 else ""
    sizes = _counted(Counter((it.width, it.height) for it in items), 3, lambda wh: f"{wh[0]}x{wh[1]}")
    cropped = sum(it.width != it.height for it in items)
    resized = sum(it.side != side for it in items)
    converted = sum(it.grey != (channels == 1) for it in items)
    done = []
    if cropped:
        done.append(f"{cropped} non-square centre-cropped")
    if resized:
        done.append(f"{resized} resized to {side}x{side}")
    if converted:
        done.append(f"{converted} converted to {'grey' if channels == 1 else 'RGB'}")
    what = "; ".join(done) if done else f"none cropped, resized or converted (all {side}x{side})"
    return (f"{name}: {n} images, {classes}; original sizes {sizes}; {what}; "
            f"loaded as {n} x {channels} x {side} x {side}")


_SAID: set[str] = set()


def _say_once(summary: str) -> None:
    # A run loads its folder more than once (training data, evaluator, reference): say it the first time only.
    if summary not in _SAID:
        _SAID.add(summary)
        print(f"ganforge: {summary}", file=sys.stderr, flush=True)


def _positive_int(options: dict[str, str], key: str, spec: str) -> int | None:
    if key not in options:
        return None
    text = options[key]
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"option {key}={text!r} in '{spec}' must be a positive whole number")
    return int(text)


@register_source("folder", "an image folder (png/jpg/bmp/gif/webp/tif), class subfolders become labels: "
                           "folder:DIR[?size=N&channels=1|3] (default: the most common size and channel count)")
def _folder(arg: str, seed: int) -> Dataset:
    path, size, channels, spec = _folder_options(arg)
    return load_folder(path, size, channels, name=spec)


def _folder_options(arg: str) -> tuple[Path, int | None, int | None, str]:
    spec = f"folder:{arg}"
    path, options = split_path_and_options(arg, "folder", {"size": "square side in pixels",
                                                           "channels": "1 or 3"})
    return path, _positive_int(options, "size", spec), _positive_int(options, "channels", spec), spec


def open_folder(arg: str) -> FolderPlan:
    """``folder:ARG`` scanned but not decoded (the streamed data path); the same checks and refusals as loading.
    Its summary is the caller's to say (``say_summary``), once it knows whether it will decode everything first."""
    path, size, channels, spec = _folder_options(arg)
    _check_folder(Path(path), size, channels, spec)
    return plan_folder(Path(path), size, channels, spec)


def say_summary(plan: FolderPlan, streamed: bool = False) -> None:
    # streamed: nothing is loaded; each batch is decoded to that shape as it is drawn (data/streaming.py)
    _say_once(plan.summary.replace("; loaded as ", "; streamed (data.path) as ") if streamed else plan.summary)


def _check_folder(root: Path, image_size: int | None, channels: int | None, name: str) -> None:
    require_existing(root, name, "a folder of images (one subfolder per class for labels)")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder (from '{name}'); "
                        f"point folder: at the folder holding the images")
    if image_size is not None and image_size < 1:
        raise DataError(f"image size for {name} must be a positive number of pixels, got {image_size}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels for {name} must be 1 (grey) or 3 (RGB), got {channels}")
