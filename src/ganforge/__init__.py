"""ganforge: train, sample and evaluate the classic family of GANs.

    >>> import ganforge
    >>> run = ganforge.train("dcgan-mnist", steps=2000, out="runs/dcgan")
    >>> images = ganforge.load(run.run_dir).sample(64, seed=0)
"""
__version__ = "0.1.0"

from .api import Model, RunResult, load, train  # noqa: E402
from .errors import GanforgeError  # noqa: E402

__all__ = ["train", "load", "Model", "RunResult", "GanforgeError", "__version__"]
