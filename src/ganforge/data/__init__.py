"""Data sources. Importing this package registers every source with ``load_source``."""
from .base import Dataset, load_source, prepare, register_source, source_help, to_model_range, to_uint8
from . import cifar10, folder, idx, mnist5k, npz, toy2d  # noqa: F401  (registration side effects)

__all__ = ["Dataset", "load_source", "prepare", "register_source", "source_help", "to_model_range", "to_uint8"]
