"""ganforge: train, sample and evaluate the classic family of GANs.

    >>> import ganforge
    >>> run = ganforge.train("dcgan-mnist", steps=2000, out="runs/dcgan")
    >>> images = ganforge.load(run.run_dir).sample(64, seed=0)
    >>> older = ganforge.load(run.run_dir, step=1000)       # any checkpoint the run kept
"""
from ._version import __version__
from .api import RunResult, train
from .errors import GanforgeError
from .inference import Model, load
from .train.trainer import TrainingDiverged

__all__ = ["train", "load", "Model", "RunResult", "GanforgeError", "TrainingDiverged", "__version__"]
