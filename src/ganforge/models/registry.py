"""Registry of network architectures by role ("generator", "discriminator", ...) and name.

A recipe names an architecture per network (``networks: {G: {arch: dcgan-book}, D: {arch: dcgan-book}}``);
the algorithm says which role each network key plays. Constructors receive their recipe parameters plus
the *context* facts they ask for by name (``latent_dim``, ``image_size``, ``channels``, ``sample_shape``,
``num_classes``, ``cond_dim``), so a fact is set once (in ``data`` or ``algorithm``), never twice.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..registry import Registry

CONTEXT_KEYS = ("latent_dim", "image_size", "channels", "sample_shape", "num_classes", "cond_dim")

NetworkFactory = Callable[..., nn.Module]

# One registry per role, so that an unknown name is matched ("did you mean") against that role's architectures only.
NETWORKS: dict[str, Registry[NetworkFactory]] = {}


def role_registry(role: str) -> Registry[NetworkFactory]:
    """The architectures registered for ``role`` (an empty registry for a role nothing is registered for yet)."""
    return NETWORKS.setdefault(role, Registry(f"{role} architecture"))


def register_network(role: str, arch: str, source: str) -> Callable[[NetworkFactory], NetworkFactory]:
    return role_registry(role).register(arch, source)


def network_class(role: str, arch: str, where: str) -> NetworkFactory:
    return role_registry(role).get(arch, where=where)


def architectures() -> dict[tuple[str, str], str]:
    """(role, architecture) -> source, sorted."""
    return {(role, arch): src for role in sorted(NETWORKS) for arch, src in NETWORKS[role].describe().items()}
