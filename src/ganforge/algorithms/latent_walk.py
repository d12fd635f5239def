"""Sampling-time manipulations of a generator's latent z: the truncation trick and latent walks.

``ganforge sample RUN --truncation PSI`` / ``Model.sample(n, truncation=PSI)``: BigGAN's truncation trick (Brock
et al. 2019 section 3.1; seed 002 part 2 section 4, spec 12.3): keep the N(0, std^2 I) prior, but resample every
component of z whose magnitude exceeds the threshold PSI * std until none does, i.e. draw z from a normal
truncated to [-PSI std, PSI std] per component. Lower PSI: samples nearer the mode (quality, confidence) at the cost
of variety. Resampling, not scaling: the components already inside the range stay as the seed drew them, so a
large PSI gives exactly the untruncated samples. (StyleGAN's truncation scales w towards its mean instead; that is
a W-space trick for a mapping network, not this.) Uniform latents are already bounded and are refused.

``--interpolate A:B`` / ``interpolate=(A, B)``: a latent walk from z_A (the first latent ``torch.Generator()
.manual_seed(A)`` draws) to z_B, ``frames`` evenly spaced points including both ends, along a great circle for
Gaussian latents (slerp, Shoemake 1985, as in White 2016 "Sampling generative networks": a straight line would
pass through the low-norm middle the prior almost never draws) and along the straight line for uniform ones (the
cube is convex). Every row of the grid is the same walk; whatever else the generator takes (labels, codes) is the
row's first sample's along the row, so only z changes across a row. With truncation too, z_A and z_B are
truncated first.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..errors import ConfigError

RESAMPLE_ROUNDS = 64     # after this many rounds the few components left are drawn by inverse CDF (same law)


def truncate_normal(z: torch.Tensor, psi: float, std: float, generator: torch.Generator) -> torch.Tensor:
    """``z`` (drawn from N(0, std^2)) with every component beyond ``psi * std`` redrawn until inside (CPU)."""
    if not psi > 0:
        raise ConfigError(f"--truncation must be > 0 (1.0 keeps components within one std; BigGAN uses 0.04-2), "
                          f"got {psi}")
    z = z.clone()
    limit = psi * std
    for _ in range(RESAMPLE_ROUNDS):
        out = z.abs() > limit
        count = int(out.sum())
        if not count:
            return z
        z[out] = torch.randn(count, generator=generator, dtype=z.dtype) * std
    out = z.abs() > limit
    if out.any():      # psi tiny: draw the rest from the truncated law directly, u ~ U(Phi(-psi), Phi(psi))
        normal = torch.distributions.Normal(0.0, 1.0)
        lo = float(normal.cdf(torch.tensor(-psi)))
        u = lo + (1 - 2 * lo) * torch.rand(int(out.sum()), generator=generator, dtype=torch.float64)
        z[out] = (normal.icdf(u) * std).clamp(-limit, limit).to(z.dtype)
    return z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors ``a`` and ``b`` (D,) at fractions ``t`` (T,) -> (T, D); the norm
    is interpolated linearly, the direction along the great circle. Nearly parallel vectors fall back to lerp."""
    a64, b64, t64 = a.double(), b.double(), t.double()[:, None]
    na, nb = a64.norm(), b64.norm()
    cos = torch.clamp((a64 @ b64) / (na * nb + 1e-30), -1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:
        return ((1 - t64) * a64 + t64 * b64).to(a.dtype)
    ua, ub = a64 / na, b64 / nb
    direction = (torch.sin((1 - t64) * omega) * ua + torch.sin(t64 * omega) * ub) / torch.sin(omega)
    return (direction * ((1 - t64) * na + t64 * nb)).to(a.dtype)


def latent_of(algorithm: Any, what: str) -> tuple[str, float]:
    """(latent_dist, latent_std) of a model whose samples come from a latent ``z``, or a one-line refusal."""
    dist = getattr(algorithm, "latent_dist", None)
    if dist is None or not hasattr(algorithm, "noise"):
        raise ConfigError(f"{what} works on a generator's noise z; algorithm '{algorithm.name}' has none to change")
    return str(dist), float(getattr(algorithm, "latent_std", 1.0))


def parse_interpolate(spec: str) -> tuple[int, int]:
    """``"3:17"`` -> (3, 17): the seeds of the walk's two ends."""
    a, sep, b = str(spec).partition(":")
    try:
        if not sep:
            raise ValueError
        seeds = int(a), int(b)
    except ValueError:
        raise ConfigError(f"--interpolate expects two seeds A:B such as 0:1, got '{spec}'") from None
    if min(seeds) < 0:
        raise ConfigError(f"--interpolate seeds must be >= 0, got '{spec}'")
    return seeds


def apply_latent_controls(algorithm: Any, inputs: Mapping[str, torch.Tensor], n: int, generator: torch.Generator,
                          truncation: float | None = None, interpolate: tuple[int, int] | str | None = None,
                          frames: int | None = None) -> dict[str, torch.Tensor]:
    """``inputs`` (a family's ``sample_inputs``) with z truncated and/or replaced by a walk of ``frames`` per row."""
    out = dict(inputs)
    if truncation is None and interpolate is None:
        return out
    what = "--truncation" if truncation is not None else "--interpolate"
    if "z" not in out:
        raise ConfigError(f"{what} works on a generator's noise z; algorithm '{algorithm.name}' samples from "
                          f"{', '.join(out) or 'nothing'}")
    dist, std = latent_of(algorithm, what)
    if truncation is not None and dist != "normal":
        raise ConfigError(f"--truncation resamples Gaussian latents, but this model draws z from {dist} "
                          "(algorithm.latent_dist); it is already bounded")
    z = out["z"]
    device = z.device

    def truncated(v: torch.Tensor) -> torch.Tensor:
        return truncate_normal(v.cpu(), float(truncation), std, generator) if truncation is not None else v.cpu()

    if interpolate is None:
        out["z"] = truncated(z).to(device)
        return out
    a, b = parse_interpolate(interpolate) if isinstance(interpolate, str) else (int(interpolate[0]), int(interpolate[1]))
    cols = max(1, min(n, int(frames or n)))
    ends = [truncated(algorithm.noise(1, torch.device("cpu"), torch.Generator().manual_seed(s))[0]) for s in (a, b)]
    t = torch.linspace(0, 1, cols) if cols > 1 else torch.zeros(1)
    walk = slerp(ends[0], ends[1], t) if dist == "normal" else (1 - t[:, None]) * ends[0] + t[:, None] * ends[1]
    idx = torch.arange(n)
    out["z"] = walk[idx % cols].to(device=device, dtype=z.dtype)
    first = (idx // cols) * cols        # the row's first sample: labels, codes constant along the row
    for key, value in inputs.items():
        if key != "z" and isinstance(value, torch.Tensor) and len(value) == n:
            out[key] = value[first.to(value.device)]
    return out
