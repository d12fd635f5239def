"""``cifar10:PATH``: CIFAR-10, "python version", as downloaded from https://www.cs.toronto.edu/~kriz/cifar.html.

Layout (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images", and the dataset page's
"Dataset layout" section): ``cifar-10-batches-py/`` holds ``data_batch_1`` .. ``data_batch_5`` (train,
10,000 images each), ``test_batch`` and ``batches.meta``. Each batch is a Python 2 pickle of a dict:
``data`` a 10000 x 3072 uint8 array whose rows are 1024 red, 1024 green, 1024 blue values of a 32 x 32
image in row-major order (so a row reshapes straight to 3 x 32 x 32, CHW), and ``labels`` a list of
ints 0..9. ``batches.meta`` holds ``label_names``.

PATH may be that folder, its parent, or the downloaded ``cifar-10-python.tar.gz`` itself (read in place,
nothing is extracted). Split syntax as for ``idx:``: ``?split=train`` (default, batches 1..5 in order),
``test`` or ``all`` (train then test).

Safety: pickles can run arbitrary code when loaded. The batches are read with ``RestrictedUnpickler``,
which resolves only the globals that a numpy array needs (``_reconstruct``/``_frombuffer``, ``ndarray``,
``dtype``), a few plain builtins, and ``_codecs.encode`` limited to latin-1 (how Python 3 pickles bytes at
protocol 2); any other global is refused with a DataError before anything is called.
"""
from __future__ import annotations

import importlib
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, register_source
from .idx import error_reason, parse_split, require_existing, split_path_and_options

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META_FILE = "batches.meta"
BATCHES_DIR = "cifar-10-batches-py"
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10


def _numpy_attr(modules: tuple[str, ...], name: str) -> Any:
    """``name`` from the first importable numpy module (``numpy._core`` since numpy 2, ``numpy.core`` before)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy provides none of {modules}.{name}")


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global (a callable or class) outside the allowed set."""

    def __init__(self, what: str) -> None:
        super().__init__(f"forbidden global {what}")
        self.what = what


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocol <= 2, and nothing else."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise ForbiddenGlobal(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_attr(("numpy._core.multiarray", "numpy.core.multiarray"), "_reconstruct")
    frombuffer = _numpy_attr(("numpy._core.numeric", "numpy.core.numeric"), "_frombuffer")
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    # Pickles name the numpy modules as the numpy that wrote them did: numpy.core (1.x) or numpy._core (2.x).
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    for builtins_module in ("builtins", "__builtin__"):  # Python 3 / Python 2 spelling
        for name, value in (("dict", dict), ("list", list), ("tuple", tuple), ("bytes", bytes), ("str", str),
                            ("int", int), ("float", float), ("bytearray", bytearray)):
            allowed[(builtins_module, name)] = value
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals of plain containers and numpy arrays.

    ``encoding="bytes"`` (the default here, as the dataset page recommends) keeps Python 2 ``str`` values
    as bytes, which is what numpy's array reconstruction expects for the raw pixel data.
    """

    ALLOWED = _allowed_globals()

    def __init__(self, file: BinaryIO, *, encoding: str = "bytes") -> None:
        super().__init__(file, encoding=encoding)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None


def restricted_load(file: BinaryIO, where: str) -> Any:
    """Unpickle ``file`` with ``RestrictedUnpickler``; every failure is a one-line DataError naming ``where``."""
    try:
        return RestrictedUnpickler(file).load()
    except ForbiddenGlobal as err:
        raise DataError(f"{where} is not a genuine CIFAR-10 batch: it asks for {err.what}, and only numpy arrays, "
                        f"lists and strings are allowed; download the dataset again") from None
    except Exception as err:  # noqa: BLE001
        # Only numpy's array constructors can run, so a failure anywhere in the opcode stream (EOFError,
        # UnpicklingError, ValueError, TypeError from a damaged dtype, ...) means a damaged file.
        reason = error_reason(err)
        raise DataError(f"{where} is truncated or corrupt ({reason}); download the dataset again") from None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _as_str_keys(obj: Any, where: str) -> dict[str, Any]:
    """Python 2 pickles read with encoding="bytes" have bytes keys: b"data" -> "data"."""
    if not isinstance(obj, dict):
        raise DataError(f"{where} holds a {type(obj).__name__}, expected the dict of a CIFAR-10 batch; "
                        f"download the dataset again")
    return {_text(k): v for k, v in obj.items()}


class _BatchReader:
    """Opens batch files by name from a folder or from inside the downloaded tar archive."""

    def __init__(self, path: Path, spec: str) -> None:
        self.spec, self.archive = spec, None
        if path.is_file():
            try:
                self.archive = tarfile.open(path, "r:*")
            except (tarfile.TarError, OSError) as err:
                raise DataError(f"{path} is neither a folder nor a readable tar archive ({error_reason(err)}); "
                                f"point cifar10: at cifar-10-batches-py/ or at cifar-10-python.tar.gz") from None
            self.members = {Path(m.name).name: m for m in self.archive.getmembers()
                            if m.isfile() and Path(m.name).parent.name == BATCHES_DIR}
            self.where = f"{path}:{BATCHES_DIR}"
        else:
            folder = path / BATCHES_DIR if (path / BATCHES_DIR).is_dir() else path
            self.folder, self.where = folder, str(folder)

    def has(self, name: str) -> bool:
        return name in self.members if self.archive is not None else (self.folder / name).is_file()

    def load(self, name: str) -> dict[str, Any]:
        where = f"{self.where}/{name}"
        if not self.has(name):
            raise DataError(f"{name} is missing from {self.where} (from '{self.spec}'); it should hold "
                            f"data_batch_1..5, test_batch and batches.meta: extract cifar-10-python.tar.gz again")
        if self.archive is not None:
            try:
                payload = self.archive.extractfile(self.members[name]).read()
            except (tarfile.TarError, OSError, EOFError) as err:
                raise DataError(f"cannot read {where} ({error_reason(err)}); download the archive again") from None
            return _as_str_keys(restricted_load(io.BytesIO(payload), where), where)
        try:
            with open(self.folder / name, "rb") as fh:
                return _as_str_keys(restricted_load(fh, where), where)
        except PermissionError:
            raise DataError(f"cannot read {where}: permission denied; fix its permissions (chmod +r)") from None

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _batch_arrays(batch: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' should be a uint8 N x 3072 array, found {found}; "
                        f"this is not a CIFAR-10 python batch")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        labels = np.empty(0)
    if labels.ndim != 1 or len(labels) != len(data):
        raise DataError(f"{where}: 'labels' should list one class per image ({len(data)}); "
                        f"this is not a CIFAR-10 python batch")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{where}: labels range over {labels.min()}..{labels.max()}, expected 0..9")
    return data.reshape(-1, *IMAGE_SHAPE), labels


def load_cifar10(path: Path | str, split: str = "train", name: str | None = None) -> Dataset:
    """Load a CIFAR-10 split (``train``, ``test`` or ``all``) from the python-version folder or archive."""
    path = Path(path)
    name = name or f"cifar10:{path}"
    require_existing(path, name, "the CIFAR-10 python version: cifar-10-batches-py/ or cifar-10-python.tar.gz")
    batch_names = {"train": TRAIN_BATCHES, "test": TEST_BATCHES, "all": TRAIN_BATCHES + TEST_BATCHES}.get(split)
    if batch_names is None:
        raise DataError(f"unknown split {split!r} for {name}; use train, test or all")
    reader = _BatchReader(path, name)
    try:
        meta = reader.load(META_FILE)
        label_names = meta.get("label_names")
        if not isinstance(label_names, list) or len(label_names) != NUM_CLASSES:
            raise DataError(f"{reader.where}/{META_FILE}: 'label_names' should list {NUM_CLASSES} names; "
                            f"extract cifar-10-python.tar.gz again")
        parts = [_batch_arrays(reader.load(b), f"{reader.where}/{b}") for b in batch_names]
    finally:
        reader.close()
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Dataset(x=torch.from_numpy(images), y=torch.from_numpy(labels), name=name,
                   class_names=[_text(n) for n in label_names],
                   meta={"source": "cifar10", "path": str(path), "split": split, "batches": list(batch_names)})


@register_source("cifar10", "CIFAR-10 python version: cifar10:DIR (data_batch_1..5, test_batch, batches.meta) or "
                            "cifar10:cifar-10-python.tar.gz, [?split=train|test|all]")
def _cifar10(arg: str, seed: int) -> Dataset:
    spec = f"cifar10:{arg}"
    path, options = split_path_and_options(arg, "cifar10", {"split": "train, test or all"})
    return load_cifar10(path, parse_split(options, spec), name=spec)
