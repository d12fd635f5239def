"""Algorithms: what one training step means for each GAN family. Importing registers them."""
from .base import Algorithm, Batch, DataInfo, StepContext, algorithm_class, algorithm_names, register_algorithm
from . import adversarial  # noqa: F401  (registration)
from . import triplegan  # noqa: F401  (registration)
from . import infogan  # noqa: F401  (registration)
from . import stackedgan  # noqa: F401  (registration)
from . import conditional, acgan  # noqa: F401  (registration)
from . import srgan  # noqa: F401  (registration)
from . import cyclegan  # noqa: F401  (registration)
from . import stargan  # noqa: F401  (registration)
from . import pix2pix  # noqa: F401  (registration)
from . import cogan  # noqa: F401  (registration)
from . import shared_latent  # noqa: F401  (registration)
from . import lapgan  # noqa: F401  (registration)
from . import progan  # noqa: F401  (registration)
from . import biggan  # noqa: F401  (registration)
from . import stylegan  # noqa: F401  (registration)
from . import bigan  # noqa: F401  (registration)
from . import text2image  # noqa: F401  (registration)
from . import stackgan  # noqa: F401  (registration)
from . import vaegan  # noqa: F401  (registration)

__all__ = ["Algorithm", "Batch", "DataInfo", "StepContext", "algorithm_class", "algorithm_names", "register_algorithm"]
