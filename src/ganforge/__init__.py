"""ganforge: train, sample and evaluate the classic family of GANs.

    >>> import ganforge
    >>> run = ganforge.train("dcgan-mnist", steps=2000, out="runs/dcgan")
    >>> images = ganforge.load(run.run_dir).sample(64, seed=0)
    >>> older = ganforge.load(run.run_dir, step=1000)       # any checkpoint the run kept
"""
from typing import Any

from ._version import __version__
from ._lazy import lazy_names
from .errors import GanforgeError
from . import train as _training    # the subpackage (light); bound before the function below takes the name

# The rest imports torch (seconds): loaded on first use, so that `ganforge --help` is quick and a Ctrl-C while torch
# loads reaches the command line's one-line handler instead of a traceback.
_LAZY = {"RunResult": "api", "load": "inference", "Model": "inference", "TrainingDiverged": "train.trainer"}


def train(recipe: str | None = None, **kwargs: Any) -> Any:
    """Train a recipe or resume a run: ``ganforge.api.train`` (its docstring has every argument)."""
    from .api import train as api_train
    return api_train(recipe, **kwargs)


__getattr__ = lazy_names(__name__, _LAZY, globals())


__all__ = ["train", "load", "Model", "RunResult", "GanforgeError", "TrainingDiverged", "__version__"]
