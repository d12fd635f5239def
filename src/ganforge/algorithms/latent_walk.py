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

Generators with a W space (``has_w_space``: StyleGAN, ``models/stylegan.py``; Karras et al. 2019 section 2 and
appendix B; spec 23.3 items 5-6) take the same flags in W instead: z is mapped to per-layer styles ws and the generator
synthesises from them (``G(ws)``):

- ``--truncation PSI``: w' = w_avg + PSI (w - w_avg) in the layers below ``--truncation-cutoff K`` (default the
  network's ``truncation_cutoff``, the paper's 8: 4^2 - 32^2); PSI 1 is the untruncated sample, 0 the average image,
  negative values the "anti-face" (the paper's figure 8); any finite PSI is taken;
- ``--mix [K]``: a style-mixing grid of (K+1) x (K+1): the top-left cell the average image (w_avg), the top row K
  column sources, the left column K row sources, and cell (i, j) the coarse styles (layers below ``--mix-cutoff``,
  default 4: the paper's coarse 4^2 - 8^2) of row source i with the fine styles of column source j (figure 3);
- ``--noise-seed S``: one fixed noise image per layer from seed S, the same for every sample (``fixed_noise``).
"""
from __future__ import annotations

from typing import Any, Mapping

import contextlib
import math
from typing import Iterator

import torch
import torch.nn as nn

from ..errors import ConfigError

RESAMPLE_ROUNDS = 64     # after this many rounds the few components left are drawn by inverse CDF (same law)
W_SPACE_CONTROLS = ("truncation_cutoff", "mix", "mix_cutoff", "noise_seed")   # flags only a W-space generator takes
FLAGS = {"truncation_cutoff": "--truncation-cutoff", "mix": "--mix", "mix_cutoff": "--mix-cutoff",
         "noise_seed": "--noise-seed"}
DEFAULT_MIX_CUTOFF = 4   # the paper's coarse styles: layers of 4^2 and 8^2 (figure 3)


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


def has_w_space(net: nn.Module | None) -> bool:
    """Whether ``net`` maps z to per-layer styles it can be given directly (StyleGAN's generator)."""
    return bool(getattr(net, "has_w_space", False))


def mix_grid_size(k: int) -> int:
    """Samples of a ``--mix K`` grid: (K + 1)^2 (a header row and column of sources)."""
    return (int(k) + 1) ** 2


def _check_w_controls(net: nn.Module, truncation: float | None, truncation_cutoff: int | None, mix: int | None,
                      mix_cutoff: int | None, interpolate: Any, n: int) -> None:
    layers = int(net.num_layers)
    if truncation is not None and not math.isfinite(float(truncation)):
        raise ConfigError(f"--truncation must be a finite number (StyleGAN: 0.7; 1 is no truncation), got {truncation}")
    if truncation_cutoff is not None and not 1 <= int(truncation_cutoff) <= layers:
        raise ConfigError(f"--truncation-cutoff must be between 1 and this generator's {layers} style layers (the "
                          f"paper: 8), got {truncation_cutoff}")
    if truncation_cutoff is not None and truncation is None:
        raise ConfigError("--truncation-cutoff says which layers --truncation PSI truncates; give --truncation too")
    if mix_cutoff is not None and mix is None:
        raise ConfigError("--mix-cutoff sets the crossover layer of a --mix grid; give --mix too")
    if mix_cutoff is not None and not 1 <= int(mix_cutoff) < layers:
        raise ConfigError(f"--mix-cutoff must be between 1 and {layers - 1} (the layers below it take the row's coarse "
                          f"styles), got {mix_cutoff}")
    if mix is not None:
        if int(mix) < 1:
            raise ConfigError(f"--mix K needs K >= 1 sources per side, got {mix}")
        if interpolate is not None:
            raise ConfigError("--mix and --interpolate make different grids; give one of them")
        if n != mix_grid_size(mix):
            raise ConfigError(f"--mix {mix} lays out {mix_grid_size(mix)} samples ({int(mix) + 1} x {int(mix) + 1}), "
                              f"got {n}; leave --n out")


def w_space_inputs(net: nn.Module, z: torch.Tensor, truncation: float | None = None,
                   truncation_cutoff: int | None = None, mix: int | None = None,
                   mix_cutoff: int | None = None) -> torch.Tensor:
    """Per-layer styles (N, L, w_dim) for latents ``z`` (N, latent_dim) of a W-space generator ``net``: mapped,
    truncated in W, and for ``mix`` laid out as the style-mixing grid (the module docstring)."""
    cutoff = truncation_cutoff if truncation_cutoff is not None else getattr(net, "truncation_cutoff", None)
    ws = net.styles(z)
    if truncation is not None:
        ws = net.truncate(ws, float(truncation), cutoff)
    if mix is None:
        return ws
    k, crossover = int(mix), int(mix_cutoff or min(DEFAULT_MIX_CUTOFF, net.num_layers - 1))
    rows, cols = ws[:k], ws[k:2 * k]
    avg = net.w_avg.to(ws.dtype).expand(1, ws.shape[1], -1)
    grid = [torch.cat([avg, cols])]                                   # header: average image, column sources
    for i in range(k):
        mixed = net.mix(rows[i:i + 1].expand(k, -1, -1), cols, crossover)
        grid.append(torch.cat([rows[i:i + 1], mixed]))              # row source, then its mixes
    return torch.cat(grid)


@contextlib.contextmanager
def fixed_noise(net: nn.Module, seed: int | None) -> Iterator[None]:
    """``--noise-seed S``: the generator's per-layer noise fixed from seed S while sampling (None: unchanged)."""
    if seed is None:
        yield
        return
    if not hasattr(net, "fix_noise"):
        raise ConfigError(f"--noise-seed fixes per-layer noise inputs (StyleGAN); this model's {type(net).__name__} "
                          "has none")
    if int(seed) < 0:
        raise ConfigError(f"--noise-seed must be >= 0, got {seed}")
    net.fix_noise(int(seed))
    try:
        yield
    finally:
        net.fix_noise(None)


def apply_latent_controls(algorithm: Any, inputs: Mapping[str, torch.Tensor], n: int, generator: torch.Generator,
                          truncation: float | None = None, interpolate: tuple[int, int] | str | None = None,
                          frames: int | None = None, net: nn.Module | None = None,
                          truncation_cutoff: int | None = None, mix: int | None = None,
                          mix_cutoff: int | None = None, noise_seed: int | None = None) -> dict[str, torch.Tensor]:
    """``inputs`` (a family's ``sample_inputs``) with z truncated and/or replaced by a walk of ``frames`` per row.
    With ``net`` a W-space generator (the one that will sample), z becomes its per-layer styles, truncated and mixed
    in W (``noise_seed`` is ``fixed_noise``'s, applied around the generation; here only checked)."""
    out = dict(inputs)
    w_only = {k: v for k, v in (("truncation_cutoff", truncation_cutoff), ("mix", mix), ("mix_cutoff", mix_cutoff),
                                ("noise_seed", noise_seed)) if v is not None}
    if has_w_space(net):
        _check_w_controls(net, truncation, truncation_cutoff, mix, mix_cutoff, interpolate, n)
        if "z" not in out:
            raise ConfigError(f"a W-space generator samples from z; algorithm '{algorithm.name}' gives "
                              f"{', '.join(out) or 'nothing'}")
        if truncation is None and interpolate is None and mix is None and truncation_cutoff is None:
            return out
        if interpolate is not None:
            out = apply_latent_controls(algorithm, out, n, generator, None, interpolate, frames)
        out["z"] = w_space_inputs(net, out["z"], truncation, truncation_cutoff, mix, mix_cutoff)
        return out
    if w_only:
        flag = FLAGS[next(iter(w_only))]
        what = type(net).__name__ if net is not None else f"algorithm '{algorithm.name}'"
        raise ConfigError(f"{flag} works on a generator with a W space and per-layer noise (StyleGAN); {what} has "
                          "none")
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
