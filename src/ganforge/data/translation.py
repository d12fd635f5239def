"""Image-to-image data as users download it: ``aligned:DIR`` (pix2pix), ``paired:DIR_A,DIR_B``, ``unaligned:DIR``
(CycleGAN). The on-disk layouts are exactly those of junyanz/pytorch-CycleGAN-and-pix2pix, so its downloaded
datasets (``facades``, ``edges2shoes``, ``maps``, ``horse2zebra`` ...) load as they are.

- ``aligned:DIR``: ``DIR/train``, ``DIR/val``, ``DIR/test``, each a folder (searched recursively, files in sorted
  order, as the repository's ``make_dataset`` does) of JPG/PNG images holding A (left half) and B (right half)
  side by side, so width = 2 x height. ``?split=train|val|test`` (default train), ``?direction=AtoB|BtoA``
  (default AtoB: ``image`` = A, ``target`` = B), ``?size=N`` (both halves resized to N x N). Yields
  ``image``, ``target``.
- ``paired:DIR_A,DIR_B``: two folders whose images pair by file name without extension (``x.png`` in one with
  ``x.jpg`` in the other; in subfolders by the relative path). ``image`` from DIR_A, ``target`` from DIR_B;
  ``?size=N``.
- ``unaligned:DIR``: ``DIR/trainA``, ``trainB``, ``testA``, ``testB``. One dataset of the A images then the B
  images with a ``domain`` field (0 = A, 1 = B; ``meta["domains"] = ["A", "B"]``); ``?split=train|test``,
  ``?domain=A|B`` keeps one side (the indices stay 0 for A and 1 for B, so two streams ``?domain=A`` and
  ``?domain=B`` read as the two halves of the whole), ``?size=N``. Yields ``image``, ``domain``.

Sizes: all samples of a dataset share one tensor, so images of differing size are resized (Pillow BICUBIC, the
repository's resampling) to a common size: ``?size=N`` (N x N, as the repository's ``--preprocess resize``
squashes to ``load_size`` x ``load_size``), else the first image's (for ``unaligned`` the first A image's, so
``?domain=A`` and ``?domain=B`` streams agree). Loading says once on stderr what it found and what it resized.
No random crop or flip happens here: the pix2pix jitter is an augmentation of the batch, not of the data.
Images are read as RGB, as the repository does (``Image.open(path).convert('RGB')``); ``data.channels`` converts.

The helpers at the top (reading sizes and pixels of one file with one-line errors) are shared by ``celeba``,
``captions`` and ``sr``.
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import DataError
from .base import Dataset, check_fits_in_memory, register_source
from .folder import _images_under, _open_error, _positive_int, _say_once, _to_mode
from .idx import require_existing, split_path_and_options

_RESAMPLING = getattr(Image, "Resampling", Image)  # Pillow >= 9.1 moved the filters into an enum
BICUBIC = _RESAMPLING.BICUBIC
BILINEAR = _RESAMPLING.BILINEAR
# EXIF orientations 5-8 turn the picture by 90 degrees: width and height swap once it is upright.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


# ------------------------------------------------------------------------------------ shared reading helpers
def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file as it will be decoded (EXIF orientation applied), from its header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                orientation = img.getexif().get(0x0112)
    except Exception as err:  # noqa: BLE001 (any failure to parse a header means a bad file)
        raise _open_error(path, err) from None
    if width < 1 or height < 1:
        raise DataError(f"image {path} is empty ({width}x{height}); delete it")
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def read_rgb(path: Path) -> Image.Image:
    """The decoded image, upright and RGB (alpha over black, 16-bit grey scaled as ``folder:`` does)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the header pass already judged the size
        try:
            with Image.open(path) as opened:
                img = ImageOps.exif_transpose(opened)
                img.load()
            return _to_mode(img, grey=False)
        except Exception as err:  # noqa: BLE001 (a damaged file can fail in any codec with any exception type)
            raise _open_error(path, err) from None


def to_chw(img: Image.Image) -> np.ndarray:
    """An RGB PIL image as a uint8 3 x H x W array."""
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def resized(img: Image.Image, size: tuple[int, int], resample: int = BICUBIC) -> Image.Image:
    """``img`` at (width, height) ``size``; untouched when it already is (no resampling blur for nothing)."""
    return img if img.size == size else img.resize(size, resample=resample)


def choice(options: Mapping[str, str], key: str, choices: tuple[str, ...], default: str, spec: str) -> str:
    value = options.get(key, default)
    if value not in choices:
        raise DataError(f"unknown {key} {value!r} in '{spec}'; use " + " or ".join(f"?{key}={c}" for c in choices))
    return value


def existing_folder(path: Path, spec: str, what: str) -> Path:
    require_existing(path, spec, what)
    if not path.is_dir():
        raise DataError(f"{path} is a file, not a folder (from '{spec}'); point it at {what}")
    return path


def images_in(folder: Path, spec: str, what: str) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted); none is an error naming what should be there."""
    found = _images_under(folder)
    if not found:
        raise DataError(f"no images (png/jpg/...) in {folder} (from '{spec}'); it should hold {what}")
    return found


def _sizes_text(sizes: list[tuple[int, int]]) -> str:
    common = Counter(sizes).most_common()
    text = ", ".join(f"{w}x{h} ({n})" for (w, h), n in common[:3])
    return text + (f", ... ({len(common) - 3} more)" if len(common) > 3 else "")


def _read_into(paths: list[Path], out: np.ndarray, size: tuple[int, int]) -> None:
    """Decode each file into its row of the preallocated ``out`` (one image in memory at a time)."""
    for i, p in enumerate(paths):
        out[i] = to_chw(resized(read_rgb(p), size))


# ------------------------------------------------------------------------------------------------ aligned
ALIGNED_SPLITS = ("train", "val", "test")


def load_aligned(root: Path, split: str = "train", direction: str = "AtoB", size: int | None = None,
                 name: str | None = None) -> Dataset:
    """pix2pix's aligned layout: ``root/<split>`` images of A | B side by side (module docstring)."""
    name = name or f"aligned:{root}"
    existing_folder(root, name, "a pix2pix dataset folder holding train/, val/ and/or test/")
    folder = root / split
    if not folder.is_dir():
        have = [s for s in ALIGNED_SPLITS if (root / s).is_dir()]
        raise DataError(f"{root} has no {split}/ folder (from '{name}'); it has "
                        f"{', '.join(s + '/' for s in have) or 'none of train/, val/, test/'}: "
                        f"pick one with ?split=, or point aligned: at the folder holding them")
    paths = images_in(folder, name, "A|B images side by side (width = 2 x height)")
    sizes = [image_size(p) for p in paths]
    for p, (w, h) in zip(paths, sizes):  # every file judged before any is decoded
        if w % 2 or w != 2 * h:
            raise DataError(f"image {p} is {w}x{h}, not two square halves side by side (width must be 2 x height, "
                            f"so even); aligned: wants A|B pairs as pix2pix makes them (datasets/combine_A_and_B.py)")
    half = (size, size) if size else (sizes[0][1], sizes[0][1])
    n = len(paths)
    check_fits_in_memory(n, 2 * 3 * half[0] * half[1], name, f"{n} pairs at {half[0]}x{half[1]}",
                         "use a smaller ?size=")
    a = np.empty((n, 3, half[1], half[0]), dtype=np.uint8)
    b = np.empty_like(a)
    for i, p in enumerate(paths):
        img = read_rgb(p)
        w, h = img.size
        a[i] = to_chw(resized(img.crop((0, 0, w // 2, h)), half))
        b[i] = to_chw(resized(img.crop((w // 2, 0, w, h)), half))
    image, target = (a, b) if direction == "AtoB" else (b, a)
    n_resized = sum(hh != half[1] for _, hh in sizes)
    summary = (f"{name}: {n} A|B pairs from {folder}, original sizes {_sizes_text(sizes)}; "
               f"{f'{n_resized} resized' if n_resized else 'none resized'} to halves of {half[0]}x{half[1]}; "
               f"{direction}: image = {direction[0]}, target = {direction[-1]}")
    _say_once(summary)
    return Dataset(x=torch.from_numpy(image), y=None, name=name, fields={"target": torch.from_numpy(target)},
                   meta={"source": "aligned", "root": str(root), "split": split, "direction": direction,
                         "image_size": half[1], "resized": n_resized, "summary": summary})


@register_source("aligned", "pix2pix A|B side-by-side images (facades, edges2shoes, maps ...): aligned:DIR with "
                            "DIR/train, val, test [?split=train|val|test&direction=AtoB|BtoA&size=N]; "
                            "yields image, target", keys=("image", "target"))
def _aligned(arg: str, seed: int) -> Dataset:
    spec = f"aligned:{arg}"
    path, options = split_path_and_options(arg, "aligned", {"split": "train, val or test",
                                                            "direction": "AtoB or BtoA",
                                                            "size": "side of each half in pixels"})
    return load_aligned(path, choice(options, "split", ALIGNED_SPLITS, "train", spec),
                        choice(options, "direction", ("AtoB", "BtoA"), "AtoB", spec),
                        _positive_int(options, "size", spec), name=spec)


# ------------------------------------------------------------------------------------------------ paired
def _by_name(folder: Path, spec: str) -> dict[str, Path]:
    """Images under ``folder`` keyed by relative path without extension; two files with one key are refused."""
    keyed: dict[str, Path] = {}
    for p in images_in(folder, spec, "the images of one side of the pairs"):
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise DataError(f"{keyed[key].name} and {p.name} in {p.parent} have the same name (from '{spec}'), so "
                            f"which one pairs with the other folder's {key} is ambiguous; rename or remove one")
        keyed[key] = p
    return keyed


def _few(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def load_paired(dir_a: Path, dir_b: Path, size: int | None = None, name: str | None = None) -> Dataset:
    """Pairs of same-name images from two folders: ``image`` from ``dir_a``, ``target`` from ``dir_b``."""
    name = name or f"paired:{dir_a},{dir_b}"
    for d in (dir_a, dir_b):
        existing_folder(d, name, "a folder of images (paired:DIR_A,DIR_B)")
    a, b = _by_name(dir_a, name), _by_name(dir_b, name)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {dir_a} have no same-name image in {dir_b} ({_few(only_a)})")
        if only_b:
            parts.append(f"{len(only_b)} in {dir_b} have none in {dir_a} ({_few(only_b)})")
        raise DataError(f"unmatched images for '{name}': {'; '.join(parts)}; pairs are matched by file name without "
                        f"extension: rename or remove the extras")
    keys = sorted(a)
    paths_a, paths_b = [a[k] for k in keys], [b[k] for k in keys]
    sizes_a, sizes_b = [image_size(p) for p in paths_a], [image_size(p) for p in paths_b]
    common = (size, size) if size else sizes_a[0]
    n = len(keys)
    check_fits_in_memory(n, 2 * 3 * common[0] * common[1], name, f"{n} pairs at {common[0]}x{common[1]}",
                         "use a smaller ?size=")
    image = np.empty((n, 3, common[1], common[0]), dtype=np.uint8)
    target = np.empty_like(image)
    _read_into(paths_a, image, common)
    _read_into(paths_b, target, common)
    n_resized = sum(s != common for s in sizes_a + sizes_b)
    summary = (f"{name}: {n} pairs matched by name, original sizes A {_sizes_text(sizes_a)}, B "
               f"{_sizes_text(sizes_b)}; {f'{n_resized} images resized' if n_resized else 'none resized'} to "
               f"{common[0]}x{common[1]}; image = {dir_a.name}, target = {dir_b.name}")
    _say_once(summary)
    return Dataset(x=torch.from_numpy(image), y=None, name=name, fields={"target": torch.from_numpy(target)},
                   meta={"source": "paired", "roots": [str(dir_a), str(dir_b)], "names": keys,
                         "resized": n_resized, "summary": summary})


@register_source("paired", "two folders of images paired by file name: paired:DIR_A,DIR_B[?size=N]; image from "
                           "DIR_A, target from DIR_B", keys=("image", "target"))
def _paired(arg: str, seed: int) -> Dataset:
    spec = f"paired:{arg}"
    path, options = split_path_and_options(arg, "paired", {"size": "square side in pixels"})
    parts = str(path).split(",")
    if len(parts) != 2 or not all(parts):
        raise DataError(f"'{spec}' should name two folders separated by one comma: paired:DIR_A,DIR_B")
    return load_paired(Path(parts[0]).expanduser(), Path(parts[1]).expanduser(),
                       _positive_int(options, "size", spec), name=spec)


# ---------------------------------------------------------------------------------------------- unaligned
UNALIGNED_SPLITS = ("train", "test")
DOMAINS = ("A", "B")


def load_unaligned(root: Path, split: str = "train", domain: str | None = None, size: int | None = None,
                   name: str | None = None) -> Dataset:
    """CycleGAN's unaligned layout: ``root/<split>A`` and ``root/<split>B`` (module docstring)."""
    name = name or f"unaligned:{root}"
    existing_folder(root, name, "a CycleGAN dataset folder holding trainA/, trainB/, testA/, testB/")
    wanted = DOMAINS if domain is None else (domain,)
    for d in wanted:
        if not (root / f"{split}{d}").is_dir():
            have = sorted(p.name + "/" for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise DataError(f"{root} has no {split}{d}/ folder (from '{name}'); it has {', '.join(have) or 'no folders'}"
                            f": unaligned: wants the CycleGAN layout trainA/, trainB/, testA/, testB/")
    paths = {d: images_in(root / f"{split}{d}", name, f"the domain-{d} images") for d in wanted}
    # The common size is the first A image's whenever A is there, so a ?domain=B stream matches its ?domain=A twin.
    a_folder = root / f"{split}A"
    reference = next(iter(_images_under(a_folder)), None) if a_folder.is_dir() else None
    sizes = {d: [image_size(p) for p in paths[d]] for d in wanted}
    common = (size, size) if size else image_size(reference) if reference else sizes[wanted[0]][0]
    all_paths = [p for d in wanted for p in paths[d]]
    n = len(all_paths)
    check_fits_in_memory(n, 3 * common[0] * common[1], name, f"{n} images at {common[0]}x{common[1]}",
                         "use a smaller ?size=")
    images = np.empty((n, 3, common[1], common[0]), dtype=np.uint8)
    _read_into(all_paths, images, common)
    domains = torch.tensor([DOMAINS.index(d) for d in wanted for _ in paths[d]], dtype=torch.int64)
    n_resized = sum(s != common for d in wanted for s in sizes[d])
    counts = ", ".join(f"{d} {len(paths[d])} ({_sizes_text(sizes[d])})" for d in wanted)
    summary = (f"{name}: unpaired images {counts}; "
               f"{f'{n_resized} resized' if n_resized else 'none resized'} to {common[0]}x{common[1]}"
               + (" (the size of the first A image; ?size= sets another)" if n_resized and not size else ""))
    _say_once(summary)
    return Dataset(x=torch.from_numpy(images), y=None, name=name, fields={"domain": domains},
                   meta={"source": "unaligned", "root": str(root), "split": split, "domains": list(DOMAINS),
                         "selected": list(wanted), "resized": n_resized, "summary": summary})


@register_source("unaligned", "CycleGAN unpaired images (horse2zebra ...): unaligned:DIR with DIR/trainA, trainB, "
                              "testA, testB [?split=train|test&domain=A|B&size=N]; yields image, domain (0 = A, 1 = B)",
                 keys=("image", "domain"))
def _unaligned(arg: str, seed: int) -> Dataset:
    spec = f"unaligned:{arg}"
    path, options = split_path_and_options(arg, "unaligned", {"split": "train or test", "domain": "A or B",
                                                              "size": "square side in pixels"})
    domain = choice(options, "domain", DOMAINS, "A", spec) if "domain" in options else None
    return load_unaligned(path, choice(options, "split", UNALIGNED_SPLITS, "train", spec), domain,
                          _positive_int(options, "size", spec), name=spec)


__all__ = ["load_aligned", "load_paired", "load_unaligned", "image_size", "read_rgb", "to_chw", "resized",
           "choice", "existing_folder", "images_in"]
