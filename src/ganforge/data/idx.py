"""``idx:PATH``: MNIST, Fashion-MNIST and KMNIST in the IDX format, exactly as users download them.

File format (LeCun, Cortes & Burges, "THE MNIST DATABASE", http://yann.lecun.com/exdb/mnist/, section
"FILE FORMATS FOR THE MNIST DATABASE"): a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then NDIM
big-endian uint32 dimension sizes, then the data in C order. Images are ``0x00000803`` (uint8, 3 dims:
N x rows x cols), labels ``0x00000801`` (uint8, 1 dim: N). Fashion-MNIST (Xiao et al. 2017) and KMNIST
(Clanuwat et al. 2018) ship the same file names and layout, so one loader reads all three.

Spec syntax (shared by ``cifar10:``): ``idx:DIR`` or ``idx:DIR?split=test``; ``split`` is ``train``
(default; ``train-*`` files), ``test`` (``t10k-*``, or ``test-*`` as EMNIST names them) or ``all`` (both,
train first). ``idx:FILE`` names one images file; its labels file is found beside it by name
(``...-images-idx3-ubyte`` -> ``...-labels-idx1-ubyte``, plain or ``.gz``). Files are recognised as gzip
by their content (bytes ``1f 8b``), not by name, so a browser that unpacked a ``.gz`` without renaming it
does not matter. A missing labels file gives an unlabelled dataset (enough for unconditional GANs).
Class names are ``"0"``..``"9"`` unless a ``classes.txt`` (one name per line) sits beside the images:
Fashion-MNIST and KMNIST cannot be told apart from MNIST by their files.
"""
from __future__ import annotations

import contextlib
import gzip
import math
import os
import re
import zlib
from pathlib import Path
from typing import IO, Iterator, Mapping

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, register_source

# IDX type byte -> numpy dtype (the format is big-endian throughout).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
SPLITS = ("train", "test", "all")
GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20

# "[prefix-]train-images-idx3-ubyte[.gz]"; MNIST/Fashion/KMNIST use "t10k" for the test split, EMNIST
# "emnist-<set>-test", and some mirrors write "train-images.idx3-ubyte".
_IMAGES_NAME = re.compile(r"^(?:(?P<prefix>.*)[-_])?(?P<split>train|t10k|test)-images(?P<sep>[-.])idx3-ubyte(?:\.gz)?$")
_SPLIT_STEMS = {"train": ("train",), "test": ("t10k", "test")}


# ----------------------------------------------------------------------------- spec parsing (shared)
def split_path_and_options(arg: str, source: str, allowed: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
    """Split ``PATH?key=value&key=value`` into a path and options.

    A path that exists as written is never split, so a ``?`` inside a real file name still works.
    ``allowed`` maps each option name to a short description used in the error message.
    """
    if not arg:
        raise DataError(f"data source '{source}' needs a path: write {source}:PATH")
    path_text, options = arg, {}
    if "?" in arg and not Path(arg).expanduser().exists():
        path_text, _, query = arg.rpartition("?")
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            if not eq or not value:
                raise DataError(f"bad option {item!r} in '{source}:{arg}'; write options as ?key=value&key=value")
            if key not in allowed:
                accepted = ", ".join(f"{k} ({d})" for k, d in allowed.items()) or "no options"
                raise DataError(f"unknown option {key!r} in '{source}:{arg}'; {source} accepts: {accepted}")
            options[key] = value
    if not path_text:
        raise DataError(f"data source '{source}' needs a path before the options: write {source}:PATH?...")
    return Path(path_text).expanduser(), options


def require_existing(path: Path, spec: str, what: str) -> None:
    """The one-line error for a data path that is not there."""
    if not path.exists():
        raise DataError(f"data path {path} does not exist (from '{spec}'); point it at {what}")


def error_reason(err: BaseException) -> str:
    """A library exception's message folded onto one line (tarfile, Pillow and numpy messages can span several)."""
    return " ".join(str(err).split()) or type(err).__name__


def parse_split(options: Mapping[str, str], spec: str) -> str:
    split = options.get("split", "train")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} in '{spec}'; use ?split=train, ?split=test or ?split=all")
    return split


# ----------------------------------------------------------------------------------------- reading
@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn the ways reading a (possibly gzipped) file fails into one-line DataErrors naming it."""
    try:
        yield
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, expected a file") from None
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied; fix its permissions (chmod +r)") from None
    except EOFError:
        raise DataError(f"{path}: the gzip stream ends early (truncated download); download the file again") from None
    except (gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip data ({error_reason(err)}); download the file again") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or error_reason(err)}") from None


def _open(path: Path) -> tuple[IO[bytes], bool]:
    """A binary reader of the file's content (gunzipped when it starts with the gzip magic), and whether it was."""
    with open(path, "rb") as raw_file:
        compressed = raw_file.read(2) == GZIP_MAGIC
    return (gzip.open(path, "rb") if compressed else open(path, "rb")), compressed


def _read_up_to(fh: IO[bytes], limit: int) -> bytearray:
    """At most ``limit`` bytes, in chunks (so a short file never costs the memory ``limit`` promises).

    A bytearray is writable, so numpy and torch can wrap it without a copy."""
    data = bytearray()
    while len(data) < limit and (chunk := fh.read(min(_READ_CHUNK, limit - len(data)))):
        data += chunk
    return data


def read_idx(path: Path | str, expected_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file (plain or gzip) into an array of its stored shape, native byte order.

    ``expected_magic``: e.g. ``IMAGES_MAGIC``; another magic number is a DataError naming both.
    """
    path = Path(path)
    with _reading(path):
        fh, compressed = _open(path)
        with fh:
            return _parse_idx(path, fh, compressed, expected_magic)


def _parse_idx(path: Path, fh: IO[bytes], compressed: bool, expected_magic: int | None) -> np.ndarray:
    """Header first, then the body: the sizes the header declares are checked against the file (and memory)
    before the body is read, so a damaged or hostile header (dims of 2^32 - 1) costs no more than the file."""
    raw = _read_up_to(fh, 4)
    magic = int.from_bytes(bytes(raw[:4]).ljust(4, b"\0"), "big")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (magic 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} for images "
                        f"or 0x{LABELS_MAGIC:08x} for labels); use the files of the MNIST / Fashion-MNIST / KMNIST "
                        f"download")
    if expected_magic is not None and magic != expected_magic:
        kinds = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
        found = kinds.get(magic, "another type or rank of data")
        raise DataError(f"{path} holds IDX {found} (magic 0x{magic:08x}), expected {kinds.get(expected_magic, 'data')} "
                        f"(magic 0x{expected_magic:08x}); check which file the path points at")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header_bytes = 4 + 4 * ndim
    raw += _read_up_to(fh, header_bytes - 4)
    if len(raw) < header_bytes:
        raise DataError(f"{path} is truncated inside its header: expected at least {header_bytes} bytes, "
                        f"got {len(raw)}; download the file again")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = math.prod(dims) * dtype.itemsize      # Python ints: no int64 wrap-around for absurd dims
    expected = header_bytes + body
    unpacked = " once gunzipped" if compressed else ""
    fix = "download the file again"
    if not compressed:
        size = os.fstat(fh.fileno()).st_size
        if size != expected:
            state = "truncated" if size < expected else "longer than its header says"
            raise DataError(f"{path} is {state}: its header (dims {dims}) needs {expected} bytes, the file has "
                            f"{size}; {fix}")
    from .base import memory_limit_bytes
    if body > memory_limit_bytes():
        raise DataError(f"{path}: its header declares dims {dims}, {body / 2**30:,.1f} GiB of data, more than the "
                        f"{memory_limit_bytes() / 2**30:,.1f} GiB (half this machine's RAM) one dataset may take; "
                        f"check the file ({fix} if it is damaged)")
    data = _read_up_to(fh, body + 1)             # one byte more than declared tells "longer than its header says"
    if len(data) != body:
        state = "truncated" if len(data) < body else "longer than its header says"
        have = f"{header_bytes + len(data)}" if len(data) <= body else f"more than {expected}"
        raise DataError(f"{path} is {state}: its header (dims {dims}) needs {expected} bytes, the file has "
                        f"{have}{unpacked}; {fix}")
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array if dtype.byteorder in ("=", "|") else array.astype(dtype.newbyteorder("="))


# -------------------------------------------------------------------------------------- locating files
def _as_file(path: Path) -> Path:
    """Kaggle's MNIST unpacks ``train-images-idx3-ubyte/train-images-idx3-ubyte``: step into such a folder."""
    inner = path / path.name
    return inner if path.is_dir() and inner.is_file() else path


def find_images_file(directory: Path, split: str) -> Path:
    """The images file of one split (``train`` or ``test``) in a download directory."""
    matches: dict[str, list[Path]] = {}
    for entry in sorted(directory.iterdir()):
        m = _IMAGES_NAME.match(entry.name)
        if m and m.group("split") in _SPLIT_STEMS[split]:
            stem = entry.name[:-3] if entry.name.endswith(".gz") else entry.name
            matches.setdefault(stem, []).append(_as_file(entry))
    if not matches:
        wanted = " or ".join(f"{s}-images-idx3-ubyte[.gz]" for s in _SPLIT_STEMS[split])
        raise DataError(f"no {split} images in {directory}: expected {wanted}; point idx: at the folder holding "
                        f"the MNIST / Fashion-MNIST / KMNIST files")
    if len(matches) > 1:
        names = ", ".join(sorted(matches))
        raise DataError(f"{directory} holds several {split} image sets ({names}); name one file, "
                        f"e.g. idx:{directory / sorted(matches)[0]}")
    # The same file both unpacked and gzipped: the unpacked one is read faster.
    candidates = next(iter(matches.values()))
    return min(candidates, key=lambda p: p.name.endswith(".gz"))


def download_folder(data_file: Path) -> Path:
    """The folder a data file was downloaded into (above Kaggle's folder-of-the-same-name wrapper)."""
    folder = data_file.parent
    return folder.parent if folder.name == data_file.name else folder


def labels_file_for(images_file: Path) -> Path | None:
    """``...-images-idx3-ubyte[.gz]`` -> the ``...-labels-idx1-ubyte[.gz]`` beside it, if any."""
    name = images_file.name[:-3] if images_file.name.endswith(".gz") else images_file.name
    labels_name, count = re.subn(r"images([-.])idx3", r"labels\1idx1", name)
    if count == 0:
        return None
    folder = download_folder(images_file)
    for candidate in (folder / labels_name, folder / (labels_name + ".gz")):
        if candidate.exists():
            return _as_file(candidate)
    return None


def read_class_names(folder: Path, num_labels: int) -> list[str]:
    """Names from ``classes.txt`` beside the files, else the digits "0".."9" (at least as many as labels)."""
    names_file = folder / "classes.txt"
    if not names_file.is_file():
        return [str(i) for i in range(max(10, num_labels))]
    try:
        text = names_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {names_file} ({error_reason(err)}); save it as UTF-8 text, one name a line") \
            from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) < num_labels:
        raise DataError(f"{names_file} lists {len(names)} class names but the labels go up to {num_labels - 1}; "
                        f"write one name per line for every class")
    return names


# ------------------------------------------------------------------------------------------ loading
def _load_one(images_file: Path) -> tuple[np.ndarray, np.ndarray | None]:
    images = read_idx(images_file, IMAGES_MAGIC)
    if len(images) == 0:
        raise DataError(f"{images_file} holds no images (its header says 0); download the file again")
    labels_file = labels_file_for(images_file)
    if labels_file is None:
        return images, None
    labels = read_idx(labels_file, LABELS_MAGIC)
    if len(labels) != len(images):
        raise DataError(f"{labels_file} has {len(labels)} labels but {images_file} has {len(images)} images; "
                        f"the two files come from different downloads")
    return images, labels


def load_idx(path: Path | str, split: str | None = None, name: str | None = None) -> Dataset:
    """Load IDX images (and labels when present) from a download directory or one images file.

    ``split``: ``train`` (default), ``test`` or ``all`` for a directory; must be None for a single file.
    """
    path = Path(path)
    name = name or f"idx:{path}"
    require_existing(path, name, "a folder with train-images-idx3-ubyte[.gz] or one such file")
    if path.is_dir() and not (path / path.name).is_file():
        chosen = split or "train"
        if chosen not in SPLITS:
            raise DataError(f"unknown split {chosen!r} for {name}; use train, test or all")
        files = [find_images_file(path, s) for s in (("train", "test") if chosen == "all" else (chosen,))]
    else:
        if split is not None:
            raise DataError(f"'{name}' names a single file, which is its own split; "
                            f"drop ?split= or point at the folder")
        files, chosen = [_as_file(path)], "file"
    parts = [_load_one(f) for f in files]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    y, class_names = None, None
    if all(p[1] is not None for p in parts):  # labels only when every file of the split has them
        labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
        y = torch.from_numpy(labels)
        class_names = read_class_names(download_folder(files[0]), int(labels.max()) + 1)
    return Dataset(x=torch.from_numpy(images).unsqueeze(1), y=y, name=name, class_names=class_names,
                   meta={"source": "idx", "files": [str(f) for f in files], "split": chosen})


@register_source("idx", "MNIST / Fashion-MNIST / KMNIST IDX files (plain or .gz): idx:DIR[?split=train|test|all] "
                        "or idx:FILE (train-images-idx3-ubyte[.gz], labels found beside it)")
def _idx(arg: str, seed: int) -> Dataset:
    spec = f"idx:{arg}"
    path, options = split_path_and_options(arg, "idx", {"split": "train, test or all"})
    split = parse_split(options, spec) if "split" in options else None
    return load_idx(path, split, name=spec)
