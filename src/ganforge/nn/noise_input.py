"""Per-layer noise inputs of StyleGAN's synthesis network (Karras et al. 2019, section 3.2 "stochastic variation";
seed 002 chapter 3 part 1, spec 23.3 item 4).

After each convolution a single-channel image of uncorrelated Gaussian noise, one per sample and layer, is
broadcast to all feature maps with a learned per-channel scaling factor "B" and added:

    x_c <- x_c + b_c * n,    n ~ N(0, 1)^{H x W},    b initialised to 0 (the authors' ``apply_noise``)

so at initialisation the layer adds nothing and the network learns how much stochastic detail each channel takes.

Where the noise comes from:

- in training mode, ``torch.randn`` on the global generator (its state is checkpointed: resume is bit-exact);
- a *fixed* noise image (``fix(noise)``): the same (1, 1, H, W) image for every sample, the authors' ``noise_inputs``
  variables / StyleGAN2-ADA's ``noise_mode='const'``; ``ganforge sample --noise-seed S`` draws these from seed S, so
  only z (and the styles) change across a grid;
- otherwise (evaluation mode: grids, ``ganforge sample``, FID) from the ``generator`` the synthesis network passes,
  so that sampling neither consumes nor depends on the training random stream.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class NoiseInput(nn.Module):
    """Adds ``weight[c] * noise`` to every channel c of an (N, channels, H, W) map; ``weight`` starts at zero."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.zeros(channels))
        # A plain attribute, not a buffer: never checkpointed, never averaged or copied by the EMA of G.
        self.fixed: torch.Tensor | None = None

    def fix(self, noise: torch.Tensor | None) -> None:
        """Use ``noise`` (1, 1, H, W) for every sample from now on; None: random noise again."""
        self.fixed = noise

    def draw(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The noise image(s) for ``x``: the fixed one, or (N, 1, H, W) fresh draws (from ``generator`` if given)."""
        if self.fixed is not None:
            return self.fixed.to(device=x.device, dtype=x.dtype)
        shape = (x.shape[0], 1, x.shape[2], x.shape[3])
        if generator is None:
            return torch.randn(shape, device=x.device, dtype=x.dtype)
        return torch.randn(shape, generator=generator, device=generator.device).to(device=x.device, dtype=x.dtype)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        noise = self.draw(x, generator) if noise is None else noise
        return x + self.weight.view(1, -1, 1, 1).to(x.dtype) * noise

    def extra_repr(self) -> str:
        return f"channels={self.channels}, fixed={self.fixed is not None}"
