"""Conditioning augmentation (CA): a text embedding becomes a Gaussian, and the generator's condition a sample of it.

Source: seed 002 chapter 3 part 1 (spec 20.2: "the text embedding phi_t is not used directly; an FC layer maps it to
a mean mu_0(phi_t) and a diagonal variance Sigma_0(phi_t); c_0 = mu_0 + sigma_0 (.) eps, eps ~ N(0, I)"; the KL
term D_KL(N(mu_0, Sigma_0) || N(0, I)) is added to G's loss); Zhang et al. 2017, "StackGAN: Text to Photo-realistic
Image Synthesis with Stacked Generative Adversarial Networks" (ICCV), section 3.2 and equation 4; the same block in
StackGAN++ (Zhang et al. 2018, TPAMI, section 4.1).

Why: an embedding of ~1024 dimensions from few captions leaves the latent condition space sparse and discontinuous;
sampling around the embedding's mean smooths it (more training pairs from small perturbations), and the KL term
keeps the conditioning manifold near N(0, I) so it does not overfit.

The block (spec 20.2, the log-variance form, [V] there: the standard parameterisation):
    [mu, logvar] = W phi_t + b          (one FC layer to 2 * cond_dim; the paper: 1024 -> 2 x 128)
    c = mu + exp(logvar / 2) (.) eps    (eps ~ N(0, I), drawn from the caller's generator or the global RNG)
    KL = 0.5 * mean_batch sum_dims (mu^2 + exp(logvar) - 1 - logvar)
The authors' PyTorch code puts a ReLU after the FC (so logvar >= 0, sigma >= 1) and StackGAN++'s a GLU; the paper
and the seed say only "an FC layer", which is what is built here (``activation: none``); ``relu`` gives the v1 code's.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from ..errors import ConfigError

CAActivation = Literal["none", "relu"]


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """D_KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample summed over the dimensions, averaged over the batch
    (StackGAN eq. 4's regulariser; the authors' ``KL_loss``: -0.5 mean(sum(1 + logvar - mu^2 - exp(logvar))))."""
    per_sample = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float()).sum(1)
    return per_sample.mean()


class ConditioningAugmentation(nn.Module):
    """phi_t (N x embed_dim) -> (c, mu, logvar), each N x cond_dim."""

    def __init__(self, embed_dim: int, cond_dim: int = 128, activation: CAActivation = "none"):
        super().__init__()
        if embed_dim < 1 or cond_dim < 1:
            raise ConfigError(f"conditioning augmentation needs embed_dim and cond_dim >= 1 (the paper: 1024 -> 128), "
                              f"got {embed_dim} and {cond_dim}")
        if activation not in ("none", "relu"):
            raise ConfigError(f"ca_activation must be none (the paper: one FC layer) or relu (the authors' v1 code), "
                              f"got {activation!r}")
        self.embed_dim, self.cond_dim, self.activation = embed_dim, cond_dim, activation
        self.fc = nn.Linear(embed_dim, 2 * cond_dim)

    def moments(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the condition's Gaussian."""
        out = self.fc(embedding)
        if self.activation == "relu":
            out = torch.relu(out)
        return out[:, :self.cond_dim], out[:, self.cond_dim:]

    def forward(self, embedding: torch.Tensor, eps: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c, mu, logvar): c = mu + sigma (.) eps, with ``eps`` given (sampling with fixed draws) or drawn from
        ``generator`` (None: the global RNG, checkpointed by the trainer)."""
        mu, logvar = self.moments(embedding)
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps.to(mu.dtype), mu, logvar
