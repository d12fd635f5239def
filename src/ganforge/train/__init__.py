"""Training machinery: the Trainer loop, checkpoints, EMA, run directories, phases, the run lock.

Its names are loaded on first use (they import torch), so that ``import ganforge`` stays light (see ``__init__``)."""
from __future__ import annotations

from typing import Any

_LAZY = {"latest_checkpoint": "checkpoint", "read_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
         "Trainer": "trainer", "TrainingInterrupted": "trainer"}

__all__ = ["Trainer", "TrainingInterrupted", "latest_checkpoint", "read_checkpoint", "save_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganforge.train' has no attribute {name!r}")
