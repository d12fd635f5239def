"""Spectral normalisation (Miyato et al. 2018, SNGAN; seed 002 part 1 section 7).

Each weight W is replaced by ``W / sigma(W)``, sigma the largest singular value (the spectral norm), so every linear
map is 1-Lipschitz and so is the network when its activations are (seed 002 section 7.5: ||f||_Lip <= prod_l
sigma(W^l)). sigma is estimated by power iteration, one step per forward pass with the vector u carried over between
steps (seed 002 section 7.5, algorithm "SGD with spectral normalization"):

    v <- W^T u / ||W^T u||_2,   u <- W v / ||W v||_2,   sigma(W) = u^T W v

A convolution kernel (out, in, kh, kw) is treated as the (out, in * kh * kw) matrix (seed 002 section 7.4 "a
b x a k_w k_h matrix"; Miyato et al. section 3); a transposed convolution's kernel is stored (in, out, kh, kw), so its
output dimension is 1.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import ConfigError

_NORMALISED_LAYERS = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                      nn.ConvTranspose2d, nn.ConvTranspose3d)


def output_dim(layer: nn.Module) -> int:
    """The weight dimension that indexes output units: 1 for ConvTranspose (weight (in, out, ...)), else 0."""
    return 1 if isinstance(layer, nn.modules.conv._ConvTransposeNd) else 0


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Spectrally normalise the ``weight`` of every Linear, Embedding, Conv and ConvTranspose layer of ``module``.

    Uses ``torch.nn.utils.parametrizations.spectral_norm``: the raw weight stays the trained parameter
    (``layer.parametrizations.weight.original``), ``layer.weight`` is W / sigma(W), and u, v are buffers saved in the
    state dict. One power iteration per training forward pass is the paper's setting (Miyato et al. section 3.1;
    seed 002 section 7.4 "one iteration was adequate in our experiments"). Layers already normalised are left as
    they are. Returns ``module`` (changed in place) so it can wrap a constructor call.
    """
    if n_power_iterations < 1:
        raise ConfigError(f"spectral norm needs at least 1 power iteration, got {n_power_iterations}; SNGAN uses 1")
    if not eps > 0:
        raise ConfigError(f"spectral norm eps must be > 0, got {eps}")
    layers = [layer for layer in module.modules()
              if isinstance(layer, _NORMALISED_LAYERS) and not parametrize.is_parametrized(layer, "weight")]
    for layer in layers:
        spectral_norm(layer, name="weight", n_power_iterations=n_power_iterations, eps=eps, dim=output_dim(layer))
    return module


def weight_as_matrix(weight: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The kernel as the matrix whose spectral norm SN divides by: dimension ``dim`` as rows, the rest flattened."""
    if dim != 0:
        weight = weight.movedim(dim, 0)
    return weight.reshape(weight.shape[0], -1)


def spectral_norm_estimate(weight_matrix: torch.Tensor, u: torch.Tensor, iters: int = 1,
                           eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Power-iteration estimate of sigma(W) for a 2-D ``weight_matrix`` (rows = output units), from the start vector
    ``u`` (length = rows). Returns ``(sigma, u, v)`` after ``iters`` iterations of the SNGAN update above; feeding the
    returned u back in continues the iteration, as SNGAN does across training steps.

    sigma = u^T W v is a lower bound of the true spectral norm that converges to it at the rate
    (sigma_2 / sigma_1)^(2 iters).
    """
    if weight_matrix.dim() != 2:
        raise ValueError(f"spectral_norm_estimate needs a 2-D matrix, got shape {tuple(weight_matrix.shape)}; "
                         "reshape kernels with weight_as_matrix")
    if iters < 1:
        raise ValueError(f"spectral_norm_estimate needs iters >= 1, got {iters}")
    v = torch.empty(0)
    for _ in range(iters):
        v = weight_matrix.T @ u
        v = v / (torch.linalg.vector_norm(v) + eps)
        u = weight_matrix @ v
        u = u / (torch.linalg.vector_norm(u) + eps)
    sigma = u @ weight_matrix @ v
    return sigma, u, v
