"""``npz:PATH``: images (and labels) stored as numpy arrays in a ``.npz`` (or a lone ``.npy``) file.

Keys: the images are ``arr_0`` (what ``np.savez(path, images)`` writes, and the layout of ganforge's own
``samples.npz`` and of the common FID evaluators), else ``x``, else ``images``; labels are ``labels``, else
``y``; optional class names are a string array ``class_names``. The file is opened with
``allow_pickle=False`` always: an object array is refused, never unpickled.

Layout: ``N x H x W`` (grey), or 4-D with the channel axis found by its size: ``N x H x W x C`` when only
the last axis is 1, 3 or 4, ``N x C x H x W`` when only axis 1 is; when both are (tiny images), the pair of
equal spatial axes decides, and NHWC (the layout of ``samples.npz``) wins a remaining tie.

Values become uint8 0..255:
- uint8 as is; bool as 0 / 255; other integers when they lie in 0..255;
- floats in [0, 1] (when no value is negative) -> round(255 x), in [-1, 1] -> round(127.5 (x + 1)),
  with 1e-3 of slack for rounding at the ends (values are clamped back into range). An all-non-negative
  [-1, 1] array is read as [0, 1]: store uint8 when that matters;
- anything else (floats on 0..255, NaN, 16-bit data) is refused with the range found and how to convert.
Labels may be integers (or integral floats), shape ``N`` or ``N x 1``, or one-hot ``N x K``.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Mapping

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, register_source
from .idx import error_reason, require_existing, split_path_and_options

IMAGE_KEYS = ("arr_0", "x", "images")
LABEL_KEYS = ("labels", "y")
CLASS_NAMES_KEY = "class_names"
CHANNEL_SIZES = (1, 3, 4)
RANGE_SLACK = 1e-3
_CHUNK_BYTES = 64 << 20  # convert floats this many input bytes at a time, to bound temporaries


ZIP_MAGIC = b"PK"
NPY_MAGIC = b"\x93NUMPY"


def _open_file(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise DataError(f"{path} is a directory; npz: wants a .npz file "
                        f"(np.savez(path, x=images, labels=labels))") from None
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied; fix its permissions (chmod +r)") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or error_reason(err)}") from None


def _open_arrays(fh: BinaryIO, path: Path) -> Mapping[str, np.ndarray]:
    """The file's arrays by key (a lazily reading NpzFile, or {'arr_0': array} for a .npy).

    The caller owns ``fh`` and closes it: np.load leaves a file it opened itself dangling when the zip
    directory is damaged.
    """
    head = fh.read(len(NPY_MAGIC))
    fh.seek(0)
    # np.load would try to unpickle anything else (and suggest allow_pickle); say plainly what it is instead
    if not (head.startswith(ZIP_MAGIC) or head == NPY_MAGIC):
        raise DataError(f"{path} is not a .npz archive or .npy file (it starts with {head!r}); "
                        f"write it with np.savez(path, x=images, labels=labels)")
    try:
        loaded = np.load(fh, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path} is not a readable .npz/.npy file ({error_reason(err)}); write it with "
                        f"np.savez(path, x=images, labels=labels)") from None
    if isinstance(loaded, np.ndarray):  # a lone .npy: images only
        return {"arr_0": loaded}
    return loaded


def _array(archive: Mapping[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):
            raise DataError(f"array {key!r} in {path} holds Python objects, which ganforge never unpickles; "
                            f"save a numeric array instead") from None
        raise DataError(f"array {key!r} in {path} is corrupt ({error_reason(err)}); write the file again") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"array {key!r} in {path} is corrupt ({error_reason(err)}); write the file again") from None


def to_nchw(images: np.ndarray, where: str) -> np.ndarray:
    """N x H x W, N x H x W x C or N x C x H x W (C in 1, 3, 4) -> N x C x H x W (a view when possible)."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim != 4:
        raise DataError(f"images in {where} have shape {images.shape}; expected N x H x W, N x H x W x C "
                        f"or N x C x H x W with C in 1, 3, 4")
    _, a1, a2, a3 = images.shape
    last, first = a3 in CHANNEL_SIZES, a1 in CHANNEL_SIZES
    if last and first:  # e.g. N x 3 x 4 x 4: the pair of equal spatial axes tells the layout
        nhwc_square, nchw_square = a1 == a2, a2 == a3
        last = nhwc_square or not nchw_square
    elif not (last or first):
        raise DataError(f"images in {where} have shape {images.shape}: no axis of size 1, 3 or 4 for the channels; "
                        f"store N x H x W x C or N x C x H x W")
    return images.transpose(0, 3, 1, 2) if last else images


def images_to_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """Any supported dtype/range (see the module docstring) to uint8 0..255, converted in bounded chunks."""
    kind = images.dtype.kind
    if images.dtype == np.uint8:
        return images
    if kind == "b":
        return images.astype(np.uint8) * np.uint8(255)
    if images.size == 0:
        return images.astype(np.uint8)
    if kind in "iu":
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise DataError(f"integer images in {where} range over [{low}, {high}], expected 0..255; "
                            f"scale them to 0..255 and save as uint8")
        return images.astype(np.uint8)
    if kind != "f":
        raise DataError(f"images in {where} have dtype {images.dtype}; "
                        f"store uint8 0..255 or floats in [0, 1] / [-1, 1]")
    rows = max(1, _CHUNK_BYTES // max(1, images[0].nbytes))
    low, high = np.inf, -np.inf
    for start in range(0, len(images), rows):
        chunk = images[start:start + rows]
        if not np.isfinite(chunk).all():
            raise DataError(f"images in {where} contain NaN or infinite values; fix the data that produced them")
        low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
    if low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK:
        offset, scale = 0.0, 255.0
    elif low >= -1 - RANGE_SLACK and high <= 1 + RANGE_SLACK:
        offset, scale = 1.0, 127.5
    else:
        raise DataError(f"float images in {where} range over [{low:.4g}, {high:.4g}]; expected [0, 1] or [-1, 1] "
                        f"(for 0..255 data save x.astype(np.uint8))")
    out = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), rows):
        chunk = (images[start:start + rows].astype(np.float32) + offset) * scale
        out[start:start + rows] = np.clip(np.rint(chunk), 0, 255)
    return out


def to_labels(labels: np.ndarray, count: int, where: str) -> np.ndarray:
    """Integer class indices (int64, length ``count``) from index or one-hot arrays."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2 and labels.shape[1] > 1 and labels.dtype.kind in "biuf":
        one_hot = (labels.sum(1) == 1) & ((labels == 0) | (labels == 1)).all(1)
        if not one_hot.all():
            raise DataError(f"labels in {where} are {labels.shape[0]} x {labels.shape[1]} but not one-hot "
                            f"(row {int(np.argmin(one_hot))}); store one class index per image")
        labels = labels.argmax(1)
    if labels.ndim != 1 or labels.dtype.kind not in "biuf":
        raise DataError(f"labels in {where} have shape {labels.shape} and dtype {labels.dtype}; "
                        f"store one integer class index per image")
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
        raise DataError(f"labels in {where} are not whole numbers; store integer class indices")
    if len(labels) != count:
        raise DataError(f"{where} has {count} images but {len(labels)} labels; store one label per image")
    if len(labels) and labels.min() < 0:
        raise DataError(f"labels in {where} include {labels.min()}; class indices must be 0 or more")
    return labels.astype(np.int64)


def load_npz(path: Path | str, name: str | None = None) -> Dataset:
    """Load images and optional labels from a ``.npz`` (or ``.npy``) file; see the module docstring."""
    path = Path(path)
    name = name or f"npz:{path}"
    require_existing(path, name, "a .npz file (np.savez(path, x=images, labels=labels))")
    with _open_file(path) as fh:
        archive = _open_arrays(fh, path)
        try:
            keys = list(archive.keys())
            image_key = next((k for k in IMAGE_KEYS if k in keys), None)
            if image_key is None:
                found = ", ".join(repr(k) for k in keys) or "no arrays"
                raise DataError(f"{path} has {found} but no images under 'arr_0' or 'x'; "
                                f"write it with np.savez(path, x=images, labels=labels)")
            where = f"{path}['{image_key}']"
            images = images_to_uint8(to_nchw(_array(archive, image_key, path), where), where)
            if len(images) == 0:
                raise DataError(f"{where} holds no images (shape {images.shape}); write a non-empty array")
            label_key = next((k for k in LABEL_KEYS if k in keys), None)
            labels = to_labels(_array(archive, label_key, path), len(images), f"{path}['{label_key}']") \
                if label_key else None
            class_names = None
            if labels is not None:
                num_labels = int(labels.max()) + 1
                class_names = [str(i) for i in range(num_labels)]
                if CLASS_NAMES_KEY in keys:
                    stored = _array(archive, CLASS_NAMES_KEY, path)
                    if stored.dtype.kind not in "US" or stored.ndim != 1 or len(stored) < num_labels:
                        raise DataError(f"{path}['{CLASS_NAMES_KEY}'] must be a 1-D string array with at least "
                                        f"{num_labels} names (one per class)")
                    class_names = [s.decode() if isinstance(s, bytes) else str(s) for s in stored.tolist()]
        finally:
            if hasattr(archive, "close"):
                archive.close()
    return Dataset(x=torch.from_numpy(np.ascontiguousarray(images)),
                   y=None if labels is None else torch.from_numpy(labels), name=name, class_names=class_names,
                   meta={"source": "npz", "path": str(path), "images_key": image_key, "labels_key": label_key})


@register_source("npz", "arrays in a .npz: images 'arr_0' or 'x' (N,H,W / NHWC / NCHW; uint8, or float in [0,1] or "
                        "[-1,1]), labels 'labels' or 'y': npz:FILE")
def _npz(arg: str, seed: int) -> Dataset:
    path, _ = split_path_and_options(arg, "npz", {})
    return load_npz(path, name=f"npz:{arg}")
