"""``celeba:DIR``: CelebA (Liu et al. 2015) as its "Align&Cropped Images" download unpacks.

Layout: ``DIR/img_align_celeba/000001.jpg ...``; ``DIR/list_attr_celeba.txt`` (line 1: the number of images,
line 2: the 40 attribute names, then one row per image, ``000001.jpg  -1  1  1 ...``, columns separated by one
or more spaces); ``DIR/list_eval_partition.txt`` (``000001.jpg 0``: 0 train, 1 val, 2 test; needed unless
``?split=all``).

Options: ``?split=train|val|test|all`` (default train), ``?attrs=Black_Hair,Blond_Hair,...`` (default StarGAN's
five: Black_Hair, Blond_Hair, Brown_Hair, Male, Young), ``?size=N`` (default 128, StarGAN's), ``?limit=N`` (the
first N images of the split, in the attribute file's order). Yields ``image`` and ``attributes``: float32 N x K
multi-hot, 1 where the file says 1 and 0 where it says -1, columns in the order of ``?attrs=``
(``meta["attributes"]`` holds the names).

Preprocessing is StarGAN's (``T.CenterCrop(178)`` then ``T.Resize(image_size)``): the centre 178 x 178 crop,
placed as torchvision places it (top = round((H - 178) / 2)), then a bilinear resize to N x N. The 202,599 images
at 128 x 128 take 9.3 GiB: on a machine where that is more than half the RAM the load is refused up front with
the sizes that would fit, rather than ending in the OOM killer.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, check_fits_in_memory, register_source
from .folder import _positive_int, _say_once
from .idx import error_reason, split_path_and_options
from .translation import BILINEAR, choice, existing_folder, image_size, read_rgb, resized, to_chw

IMAGES_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
SPLITS = ("train", "val", "test", "all")
PARTITION_IDS = {"train": 0, "val": 1, "test": 2}
STARGAN_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
CROP = 178      # StarGAN's celeba_crop_size
DEFAULT_SIZE = 128  # StarGAN's image_size


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or error_reason(err)}") from None


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """``list_attr_celeba.txt`` as (attribute names, file names, int8 N x 40 of -1 / 1)."""
    lines = _lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path}: line 1 should be the number of images and line 2 the attribute names, as in "
                        f"CelebA's Anno/{ATTR_FILE}; download it again")
    count, names = int(lines[0]), lines[1].split()
    numbered = [(i, line) for i, line in enumerate(lines[2:], start=3) if line.strip()]
    if len(numbered) != count:
        raise DataError(f"{path} says {count} images on line 1 but has {len(numbered)} rows (a truncated or edited "
                        f"file?); download {ATTR_FILE} again")
    # One split of the whole table, then C-level list and set operations: a Python loop per cell (8 million of
    # them in the real file) would take seconds.
    tokens = " ".join(line for _, line in numbered).split()
    width = len(names) + 1
    if len(tokens) == count * width:
        files = tokens[::width]
        del tokens[::width]                         # what is left is the values, row by row
        if set(tokens) <= {"1", "-1"}:
            lengths = np.fromiter(map(len, tokens), dtype=np.int8, count=len(tokens))
            return names, files, (3 - 2 * lengths).reshape(count, len(names))   # "1" -> 1, "-1" -> -1
    # A row with a wrong column count or value: find it (only on this error path, so a loop is fine).
    first = next(r for r, (_, line) in enumerate(numbered)
                 if len(line.split()) != width or not set(line.split()[1:]) <= {"1", "-1"})
    lineno, row = numbered[first][0], numbered[first][1].split()
    raise DataError(f"{path} line {lineno}: expected a file name and {len(names)} values of 1 or -1, got "
                    f"{' '.join(row[:4])}{' ...' if len(row) > 4 else ''} ({len(row)} columns); download "
                    f"{ATTR_FILE} again")


def read_partition(path: Path) -> dict[str, int]:
    """``list_eval_partition.txt`` as file name -> 0 (train), 1 (val) or 2 (test)."""
    parts: dict[str, int] = {}
    for lineno, line in enumerate(_lines(path), start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2 or cells[1] not in ("0", "1", "2"):
            raise DataError(f"{path} line {lineno}: expected '<file>.jpg 0|1|2' (0 train, 1 val, 2 test), got "
                            f"{line.strip()[:40]!r}")
        parts[cells[0]] = int(cells[1])
    return parts


def _attribute_columns(wanted: list[str], names: list[str], spec: str) -> list[int]:
    columns = []
    for attr in wanted:
        if attr not in names:
            close = difflib.get_close_matches(attr, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise DataError(f"unknown CelebA attribute {attr!r} in '{spec}'{hint}; the {len(names)} in {ATTR_FILE}: "
                            f"{', '.join(names)}")
        if names.index(attr) in columns:
            raise DataError(f"attribute {attr} is listed twice in '{spec}'; name each once in ?attrs=")
        columns.append(names.index(attr))
    return columns


def _crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    # torchvision's center_crop: top = int(round((H - h) / 2)), left likewise (Python's round: half to even).
    top, left = int(round((height - CROP) / 2.0)), int(round((width - CROP) / 2.0))
    return left, top, left + CROP, top + CROP


@dataclass
class CelebaPlan:
    """A CelebA partition checked and listed, nothing decoded: the files, their attributes and the side each image is
    decoded to. ``load_celeba`` decodes all of it into memory; the streamed data path (``data/streaming.py``,
    ``data.path: auto | stream``) decodes one image per sample, to the same row."""

    root: Path
    name: str
    paths: list[Path]
    attributes: torch.Tensor        # float32 N x K multi-hot
    chosen: list[str]
    split: str
    side: int
    files: list[str]
    channels: int = 3
    class_names: None = None

    @property
    def items(self) -> list[Path]:
        return self.paths

    @property
    def summary(self) -> str:
        return (f"{self.name}: {len(self.paths)} CelebA images ({self.split}), centre {CROP}x{CROP} crop resized to "
                f"{self.side}x{self.side}; attributes {', '.join(self.chosen)} (share 1: "
                + ", ".join(f"{v:.2f}" for v in self.attributes.mean(0).tolist()) + ")")

    def labels_tensor(self) -> None:
        return None

    def fields(self) -> dict[str, torch.Tensor]:
        return {"attributes": self.attributes}

    def decode(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 3 x side x side: StarGAN's centre crop, then the bilinear resize."""
        p = self.paths[i]
        width, height = image_size(p)
        if width < CROP or height < CROP:
            raise DataError(f"image {p} is {width}x{height}, smaller than the {CROP}x{CROP} centre crop of CelebA's "
                            f"aligned images (178x218); use the img_align_celeba files as downloaded")
        img = read_rgb(p).crop(_crop_box(width, height))
        return to_chw(resized(img, (self.side, self.side), BILINEAR))

    def meta(self) -> dict[str, Any]:
        return {"source": "celeba", "root": str(self.root), "split": self.split, "attributes": list(self.chosen),
                "image_size": self.side, "files": list(self.files), "summary": self.summary}


def plan_celeba(root: Path, split: str = "train", attrs: tuple[str, ...] | list[str] = STARGAN_ATTRS,
                size: int = DEFAULT_SIZE, limit: int | None = None, name: str | None = None) -> CelebaPlan:
    """The files and attributes of one partition, every listed file checked to exist (module docstring)."""
    name = name or f"celeba:{root}"
    existing_folder(root, name, f"the CelebA folder holding {IMAGES_DIR}/ and {ATTR_FILE}")
    needed = [IMAGES_DIR, ATTR_FILE] + ([PARTITION_FILE] if split != "all" else [])
    missing = [n for n in needed if not (root / n).exists()]
    if missing:
        raise DataError(f"{root} lacks {', '.join(missing)} (from '{name}'); celeba: wants {IMAGES_DIR}/, {ATTR_FILE} "
                        f"and {PARTITION_FILE} side by side, as CelebA's Img/ and Anno/ + Eval/ downloads unpack")
    names, files, values = read_attributes(root / ATTR_FILE)
    columns = _attribute_columns(list(attrs), names, name)
    rows = np.arange(len(files))
    if split != "all":
        partition = read_partition(root / PARTITION_FILE)
        unlisted = [f for f in files if f not in partition]
        if unlisted:
            raise DataError(f"{len(unlisted)} images of {ATTR_FILE} are not in {PARTITION_FILE} ({', '.join(unlisted[:3])}"
                            f"{', ...' if len(unlisted) > 3 else ''}); use the two files of one CelebA download")
        rows = np.array([i for i, f in enumerate(files) if partition[f] == PARTITION_IDS[split]], dtype=np.int64)
    if limit is not None:
        rows = rows[:limit]
    if len(rows) == 0:
        raise DataError(f"no images in the {split} partition of {root} (from '{name}'); check {PARTITION_FILE}")
    paths = [root / IMAGES_DIR / files[i] for i in rows]
    absent = next((p for p in paths if not p.is_file()), None)
    if absent is not None:
        raise DataError(f"{absent} is listed in {ATTR_FILE} but missing (from '{name}'); unpack all of "
                        f"img_align_celeba.zip, or use ?limit=N for the first N images")
    attributes = torch.from_numpy((values[rows][:, columns] == 1).astype(np.float32))
    return CelebaPlan(root, name, paths, attributes, [names[c] for c in columns], split, size,
                      [files[i] for i in rows])


def load_celeba(root: Path, split: str = "train", attrs: tuple[str, ...] | list[str] = STARGAN_ATTRS,
                size: int = DEFAULT_SIZE, limit: int | None = None, name: str | None = None) -> Dataset:
    """CelebA images of one partition with the chosen attributes as multi-hot vectors (module docstring)."""
    return load_plan(plan_celeba(root, split, attrs, size, limit, name))


def load_plan(plan: CelebaPlan) -> Dataset:
    """Every image of ``plan`` decoded into memory (refused up front, with sizes that fit, when it would not)."""
    n, size = len(plan.paths), plan.side
    check_fits_in_memory(n, 3 * size * size, plan.name, f"{n} images at {size}x{size}",
                         f"use a smaller ?size= (e.g. ?size={max(1, size // 2)}) or fewer images with ?limit=N "
                         f"(the first N of the split), or stream it (data.path: stream)")
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        images[i] = plan.decode(i)
    _say_once(plan.summary)
    return Dataset(x=torch.from_numpy(images), y=None, name=plan.name, fields=plan.fields(), meta=plan.meta())


def open_celeba(arg: str) -> CelebaPlan:
    """``celeba:ARG`` (path and options) as a plan, for the streamed data path."""
    return plan_celeba(*_celeba_args(arg))


@register_source("celeba", "CelebA aligned faces with attributes: celeba:DIR (img_align_celeba/, list_attr_celeba.txt, "
                           "list_eval_partition.txt) [?split=train|val|test|all&attrs=Black_Hair,Male,...&size=128"
                           "&limit=N]; yields image, attributes", keys=("image", "attributes"))
def _celeba(arg: str, seed: int) -> Dataset:
    return load_plan(open_celeba(arg))


def _celeba_args(arg: str) -> tuple[Path, str, tuple[str, ...], int, int | None, str]:
    spec = f"celeba:{arg}"
    path, options = split_path_and_options(arg, "celeba", {
        "split": "train, val, test or all", "attrs": "comma-separated attribute names",
        "size": "square side in pixels, default 128", "limit": "the first N images of the split"})
    attrs = tuple(a.strip() for a in options["attrs"].split(",")) if "attrs" in options else STARGAN_ATTRS
    if not all(attrs):
        raise DataError(f"empty attribute name in '{spec}'; write ?attrs=Black_Hair,Male (comma-separated)")
    return (path, choice(options, "split", SPLITS, "train", spec), attrs,
            _positive_int(options, "size", spec) or DEFAULT_SIZE, _positive_int(options, "limit", spec), spec)
