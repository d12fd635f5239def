"""Objectives: pure loss functions of discriminator outputs. Importing registers them all."""
from .base import OBJECTIVES, Need, Objective, objective_class, objective_names, register_objective
from . import classic, energy, fgan, glsgan, hinge, least_squares, relativistic, wasserstein  # noqa: F401  (registration)

__all__ = ["OBJECTIVES", "Need", "Objective", "objective_class", "objective_names", "register_objective"]
