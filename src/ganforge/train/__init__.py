"""Training machinery: the Trainer loop, checkpoints, EMA, run directories."""
from .checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
from .trainer import Trainer, TrainingInterrupted

__all__ = ["Trainer", "TrainingInterrupted", "latest_checkpoint", "read_checkpoint", "save_checkpoint"]
