"""Training machinery: the Trainer loop, checkpoints, EMA, run directories, phases, the run lock.

Its names are loaded on first use (they import torch), so that ``import ganforge`` stays light (see ``__init__``)."""
from __future__ import annotations

from .._lazy import lazy_names

_LAZY = {"latest_checkpoint": "checkpoint", "read_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
         "Trainer": "trainer", "TrainingInterrupted": "trainer"}

__all__ = ["Trainer", "TrainingInterrupted", "latest_checkpoint", "read_checkpoint", "save_checkpoint"]


__getattr__ = lazy_names(__name__, _LAZY, globals())
