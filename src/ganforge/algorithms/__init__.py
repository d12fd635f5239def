"""Algorithms: what one training step means for each GAN family. Importing registers them."""
from .base import Algorithm, Batch, DataInfo, StepContext, algorithm_class, algorithm_names, register_algorithm
from . import adversarial  # noqa: F401  (registration)

__all__ = ["Algorithm", "Batch", "DataInfo", "StepContext", "algorithm_class", "algorithm_names", "register_algorithm"]
