"""Generator and discriminator architectures. Importing registers them all."""
from .registry import CONTEXT_KEYS, NETWORKS, architectures, network_class, register_network
from . import dcgan, mlp  # noqa: F401  (registration)
from . import triplegan  # noqa: F401  (registration)
from . import infogan  # noqa: F401  (registration)
from . import stackedgan  # noqa: F401  (registration)
from . import autoencoder  # noqa: F401  (registration)
from . import conditional  # noqa: F401  (registration)
from . import patchgan  # noqa: F401  (registration)
from . import srresnet  # noqa: F401  (registration)
from . import resnet_translator  # noqa: F401  (registration)
from . import stargan  # noqa: F401  (registration)
from . import unet  # noqa: F401  (registration)
from . import cogan  # noqa: F401  (registration)
from . import shared_latent  # noqa: F401  (registration)
from . import lapgan  # noqa: F401  (registration)
from . import resnet_gan  # noqa: F401  (registration)
from . import progan  # noqa: F401  (registration)
from . import biggan  # noqa: F401  (registration)
from . import stylegan  # noqa: F401  (registration)
from . import bigan  # noqa: F401  (registration)
from . import vaegan  # noqa: F401  (registration)

__all__ = ["CONTEXT_KEYS", "NETWORKS", "architectures", "network_class", "register_network"]
