"""Registry of network architectures by role ("generator", "discriminator", ...) and name.

A recipe names an architecture per network (``networks: {G: {arch: dcgan-book}, D: {arch: dcgan-book}}``);
the algorithm says which role each network key plays. Constructors receive their recipe parameters plus
the *context* facts they ask for by name (``latent_dim``, ``image_size``, ``channels``, ``sample_shape``,
``num_classes``, ``cond_dim``), so a fact is set once (in ``data`` or ``algorithm``), never twice.
"""
from __future__ import annotations

import difflib
from typing import Callable

import torch.nn as nn

from ..errors import ConfigError

CONTEXT_KEYS = ("latent_dim", "image_size", "channels", "sample_shape", "num_classes", "cond_dim")

_NETWORKS: dict[tuple[str, str], tuple[Callable[..., nn.Module], str]] = {}


def register_network(role: str, arch: str, source: str) -> Callable:
    def wrap(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _NETWORKS[(role, arch)] = (cls, source)
        return cls

    return wrap


def network_class(role: str, arch: str, where: str) -> Callable[..., nn.Module]:
    if (role, arch) not in _NETWORKS:
        names = sorted(a for (r, a) in _NETWORKS if r == role)
        close = difflib.get_close_matches(arch, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{where}: unknown {role} architecture '{arch}'{hint}; known: {', '.join(names)}")
    return _NETWORKS[(role, arch)][0]


def architectures() -> dict[tuple[str, str], str]:
    return {k: src for k, (_, src) in sorted(_NETWORKS.items())}
