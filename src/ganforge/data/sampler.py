"""Deterministic batch index streams, resumable from a saved state.

Two modes:
- ``shuffle``: epochs over a permutation drawn from the run seed (the usual PyTorch DataLoader shuffle);
- ``replacement``: every batch drawn uniformly with replacement, as the book's Keras loops do
  (``np.random.randint(0, N, batch_size)``, seed 000 / 004).
The state (generator state, current permutation and position) goes into checkpoints so a resumed run
sees exactly the batches the uninterrupted run would have seen.
"""
from __future__ import annotations

from typing import Literal

import torch

SamplingMode = Literal["shuffle", "replacement"]


class BatchSampler:
    def __init__(self, n: int, batch_size: int, mode: SamplingMode, seed: int, rank: int = 0, world_size: int = 1):
        if n <= 0:
            raise ValueError("cannot sample batches from an empty dataset")
        self.n, self.batch_size, self.mode = n, batch_size, mode
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self.epoch = 0

    def _new_epoch(self) -> None:
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.pos = 0
        self.epoch += 1

    def next(self, batch_size: int | None = None) -> torch.Tensor:
        """Indices of the next batch for this rank (every rank draws the global batch, keeps its slice).
        ``batch_size``: this rank's share for this batch only (train.phases with their own batch size), else the
        sampler's; the draws are the same stream either way, so a schedule of sizes replays exactly."""
        size = self.batch_size if batch_size is None else batch_size
        total = size * self.world_size
        if self.mode == "replacement":
            idx = torch.randint(self.n, (total,), generator=self.generator)
        else:
            parts, need = [], total
            while need > 0:
                if self.perm is None or self.pos >= self.n:
                    self._new_epoch()
                take = min(need, self.n - self.pos)
                parts.append(self.perm[self.pos:self.pos + take])
                self.pos += take
                need -= take
            idx = torch.cat(parts)
        return idx[self.rank * size:(self.rank + 1) * size]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm = state["perm"]
        self.pos = int(state["pos"])
        self.epoch = int(state["epoch"])
