"""The streamed data path (DESIGN.md "v2: two data paths"): data too large to hold as one uint8 tensor.

``data.path: auto | memory | stream``. ``memory`` is the fast path every source has: the prepared data is one uint8
tensor on the device and a batch is one index operation. ``stream`` keeps only the file list and labels in memory
(a ``StreamingSource``) and decodes each sample, to exactly the row the memory path would hold, in DataLoader
workers. ``auto`` streams a streamable source (``folder:``, ``celeba:``) when its prepared uint8 data would exceed
``data.stream_threshold_mb`` (default a quarter of ``memory_limit_bytes()``).

Data order is the sampler's either way: the trainer's ``BatchSampler`` draws each batch's indices as on the memory
path, and the DataLoader runs over a look-ahead copy of that sampler, so its prefetching never moves the state that
checkpoints keep; after a resume the loader restarts from the restored sampler. Under torchrun each rank's sampler
yields its own slice of the global batch, so each rank's workers decode only its shard.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import DataError
from .base import Dataset, _resize, _to_channels
from .folder import FolderPlan
from .sampler import BatchSampler


def default_workers() -> int:
    """``data.workers`` unset: up to 4 decoding processes, leaving one core to the training process."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class StreamingSource:
    """Images read on demand: ``source[i]`` is sample ``i`` as uint8 C x H x W (and its label), the row
    ``prepare(load_source(...), image_size, channels)`` would hold. Only paths, labels and small per-sample fields
    (CelebA's attributes) are in memory. ``plan``: a folder's ``FolderPlan`` or CelebA's ``CelebaPlan`` (its items,
    labels, fields, channels, side and ``decode(i)``).

    Offers the parts of ``Dataset`` that describe the data (``name``, ``kind``, ``y``, ``class_names``, ``meta``,
    ``fields``, ``shape``, ``num_classes``, ``keys()``) and ``x`` as lazy rows: ``source.x[index]`` decodes just those
    rows, so code that takes a few rows (a setup's labelled subset, the fixed held-out batch, the build-time shape
    check) works unchanged; ``sample_rows(index)`` gives them as an in-memory ``Dataset``."""

    kind = "image"

    def __init__(self, plan: Any, image_size: int | None, channels: int | None):
        self.plan = plan
        self.name = plan.name
        self.image_size = image_size
        self.channels = channels
        self.y = plan.labels_tensor()
        self.class_names = plan.class_names
        self.meta: dict[str, Any] = {**plan.meta(), "data_path": "stream"}
        # small per-sample fields (CelebA's attributes) stay in memory; a batch takes its rows of them
        self.fields: dict[str, torch.Tensor] = plan.fields() if hasattr(plan, "fields") else {}
        c = channels if channels is not None else plan.channels
        s = image_size if image_size is not None else plan.side
        self._shape = (c, s, s)
        self.x = _LazyRows(self)

    def __len__(self) -> int:
        return len(self.plan.items)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def nbytes(self) -> int:
        """What the prepared data would take as one uint8 tensor (the memory path)."""
        c, h, w = self._shape
        return len(self) * c * h * w

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names is not None else 0

    def keys(self) -> tuple[str, ...]:
        return ("image",) + (("label",) if self.y is not None else ()) + tuple(self.fields)

    def image(self, i: int) -> torch.Tensor:
        """Sample ``i`` decoded and brought to the model's geometry, by the same steps as ``prepare`` in the same
        order (channels, then the antialiased resize), so it equals the memory path's row bit for bit."""
        x = torch.from_numpy(np.array(self.plan.decode(i), copy=True))[None]   # writable: torch warns otherwise
        if self.channels is not None:
            x = _to_channels(x, self.channels, self.name)
        if self.image_size is not None:
            x = _resize(x, self.image_size)
        return x[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        # -1 for unlabelled data: the collate function drops it; a DataLoader cannot collate None.
        return self.image(i), int(self.y[i]) if self.y is not None else -1

    def rows(self, index: torch.Tensor | list[int]) -> torch.Tensor:
        index = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
        if len(index) == 0:
            return torch.zeros((0, *self._shape), dtype=torch.uint8)
        return torch.stack([self.image(int(i)) for i in index])

    def load_all(self) -> Dataset:
        """Every image decoded into memory, before ``prepare``: exactly the loader's dataset (``folder.load_folder``,
        ``celeba.load_celeba``), from the scan already made (``data.path=auto`` on data small enough for the memory
        path)."""
        plan = self.plan
        images = np.empty((len(plan.items), plan.channels, plan.side, plan.side), dtype=np.uint8)
        for i in range(len(plan.items)):
            images[i] = plan.decode(i)
        return Dataset(x=torch.from_numpy(images), y=plan.labels_tensor(), name=plan.name,
                       class_names=plan.class_names, meta=plan.meta(), fields=dict(self.fields))

    def sample_rows(self, index: torch.Tensor | list[int]) -> Dataset:
        """Rows ``index`` decoded into an in-memory ``Dataset`` (a reference sample for FID, a labelled subset)."""
        index = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
        return Dataset(x=self.rows(index), y=None if self.y is None else self.y[index], name=self.name,
                       class_names=self.class_names, meta=dict(self.meta),
                       fields={k: v[index] for k, v in self.fields.items()})


    def subset(self, index: torch.Tensor, name: str | None = None) -> Dataset:
        """``Dataset.subset``'s counterpart (StackedGAN's classifier split): the rows decoded, in memory."""
        rows = self.sample_rows(index)
        rows.name = name or self.name
        return rows


class _LazyRows:
    """``StreamingSource.x``: indexing decodes the rows asked for; its length and shape are the data's."""

    def __init__(self, source: StreamingSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.source), *self.source.shape))

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, slice):
            return self.source.rows(range(*index.indices(len(self.source))))
        if isinstance(index, int):
            return self.source.image(index)
        return self.source.rows(torch.as_tensor(index).cpu())


class _WithIndex(torch.utils.data.Dataset):
    """The loader's view of a source: each item carries its index, so the trainer can check that a batch is the
    one its own sampler drew."""

    def __init__(self, source: StreamingSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        x, y = self.source[i]
        return x, y, i


def _collate(items: list[tuple[torch.Tensor, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.stack([x for x, _, _ in items]), torch.tensor([y for _, y, _ in items], dtype=torch.int64),
            torch.tensor([i for _, _, i in items], dtype=torch.int64))


class _Ahead:
    """An endless iterable of batch indices from a look-ahead sampler (the DataLoader's batch_sampler)."""

    def __init__(self, sampler: BatchSampler):
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.sampler.next().tolist()


class StreamLoader:
    """The main stream's batches when its data is streamed: ``next()`` advances the trainer's ``sampler`` by one
    batch and returns those rows (uint8 images, labels or None) decoded by a DataLoader over a look-ahead copy of
    the sampler (``workers`` processes, 0: in this process; pinned memory for a CUDA device)."""

    def __init__(self, source: StreamingSource, sampler: BatchSampler, workers: int, pin_memory: bool):
        self.source, self.sampler = source, sampler
        self.workers, self.pin_memory = workers, pin_memory
        self._it: Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def _start(self) -> None:
        s = self.sampler
        ahead = BatchSampler(s.n, s.batch_size, s.mode, seed=0, rank=s.rank, world_size=s.world_size)
        # The loader starts exactly where the trainer's sampler stands (sharing its permutation tensor is safe: a
        # sampler replaces it each epoch, never writes into it).
        ahead.load_state_dict(s.state_dict())
        loader = DataLoader(_WithIndex(self.source), batch_sampler=_Ahead(ahead), num_workers=self.workers,
                            collate_fn=_collate, pin_memory=self.pin_memory,
                            prefetch_factor=2 if self.workers > 0 else None,
                            # Its own generator: an iterator otherwise draws its workers' base seed from the global
                            # RNG, shifting the training noise (decoding uses no randomness, so any seed will do).
                            generator=torch.Generator().manual_seed(0))
        self._it = iter(loader)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        if self._it is None:
            self._start()
        assert self._it is not None
        want = self.sampler.next()
        try:
            x, y, got = next(self._it)
        except DataError as err:
            # A worker's DataError (a file that decodes badly) comes back wrapped with its worker's traceback; the
            # user gets the one line it was raised with.
            lines = [ln for ln in str(err).splitlines() if ln.strip()]
            last = lines[-1] if lines else str(err)
            raise DataError(last.split("DataError: ", 1)[-1]) from None
        if not torch.equal(got, want):   # the two samplers are one state advanced in lockstep: drift is a bug here
            raise RuntimeError("the streamed batch is not the one the sampler drew (look-ahead out of step)")
        fields = {k: v[got] for k, v in self.source.fields.items()}     # the batch's rows of the in-memory fields
        return x, (y if self.source.y is not None else None), fields

    def reset(self) -> None:
        """Forget prefetched batches (after the sampler's state was restored): the next batch restarts the loader."""
        self.close()

    def close(self) -> None:
        # Dropping the iterator shuts its worker processes down; an endless loader never ends them by itself.
        self._it = None
