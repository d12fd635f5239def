"""Paired metrics, where every output has a true target (pix2pix on paired data, super-resolution): L1, PSNR, SSIM.

All functions take two image batches of one shape, ``N x C x H x W``: uint8 (0..255, data range 255), or float with
an explicit ``data_range`` (values taken to lie in ``[0, data_range]``). Each metric is computed per image and
then averaged; PSNR also has a whole-set figure (one MSE over every pixel of the set).

Conventions, chosen to match what papers report and what scikit-image computes:

* ``channels="y"`` (the default for PSNR and SSIM): measure the luminance Y of YCbCr, as super-resolution papers do
  (ITU-R BT.601 in MATLAB's ``rgb2ycbcr`` form, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in
  0..255, kept as float, not rounded, as BasicSR's ``test_y_channel`` does; the data range stays 255). A
  one-channel image is its own luminance (no 16..235 rescale: that would shrink every difference by 219/255).
  ``channels="all"``: PSNR over every channel value together (``skimage.metrics.peak_signal_noise_ratio``), SSIM
  per channel then averaged (``structural_similarity(..., channel_axis=...)``).
* ``crop_border``: pixels dropped from each side before measuring (SR papers crop ``scale`` pixels, where the
  upsampler has no context); 0 by default.
* SSIM is Wang et al. 2004: an 11-tap Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population
  (co)variances, the SSIM map averaged over the region where the window lies wholly inside the image. That is
  exactly ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``: skimage
  filters with reflected borders and then crops the 5 border pixels, which leaves the same valid region.
* PSNR of identical images is infinite; a mean over images with one inf would be inf and say nothing about the
  others, so each PSNR (per image and for the set) is capped at ``PSNR_CAP`` = 100 dB and ``paired_metrics``
  counts how many pairs are identical. 100 dB is an MSE of 1e-10 of the squared range: beyond any real
  translation (a single pixel off by one level in a 1-megapixel RGB image is 113 dB, so such near-identical
  pairs read 100 too: "perfect").
* L1 is the mean absolute difference over every channel value in units of the data range (0 = identical, 1 =
  black vs white everywhere); pix2pix's L1 loss on [-1, 1] images is twice this.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..errors import DataError

Channels = Literal["y", "all"]

PSNR_CAP = 100.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5            # int(3.5 * sigma + 0.5): scipy's truncate=3.5 as skimage sets it, an 11-tap window
SSIM_K1, SSIM_K2 = 0.01, 0.03
# BT.601 luma in MATLAB's rgb2ycbcr form (R, G, B in 0..1 give Y in 16/255..235/255).
Y_OFFSET = 16.0 / 255.0
Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
# Images are measured in chunks of this many, in float64 (for agreement with skimage to 1e-4 and below): bounds the
# memory of a large set to a few of its images' worth.
CHUNK = 64


def _check_pair(a: torch.Tensor, b: torch.Tensor, data_range: float | None, what: str) -> float:
    """The data range of a valid pair; any mismatch is a one-line DataError."""
    for name, t in (("outputs", a), ("targets", b)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise DataError(f"{what}: {name} must be N x C x H x W image tensors, got {shape}")
    if a.shape != b.shape:
        raise DataError(f"{what}: outputs {tuple(a.shape)} and targets {tuple(b.shape)} differ in shape; "
                        "paired metrics compare each output with its own target")
    if len(a) == 0:
        raise DataError(f"{what}: no images to compare")
    if data_range is None:
        if a.dtype != torch.uint8 or b.dtype != torch.uint8:
            raise DataError(f"{what}: float images ({a.dtype}, {b.dtype}) need data_range (e.g. 1.0 for [0, 1]); "
                            "uint8 images have range 255")
        return 255.0
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise DataError(f"{what}: data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def _signal(x: torch.Tensor, channels: Channels, data_range: float, crop_border: int, what: str) -> torch.Tensor:
    """float64 N x C' x H' x W': the channels measured (Y, or all of them), ``crop_border`` pixels cut off."""
    if channels not in ("y", "all"):
        raise DataError(f"{what}: channels must be 'y' (luminance) or 'all' (every channel), got {channels!r}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise DataError(f"{what}: crop_border must be a whole number >= 0, got {crop_border!r}")
    h, w = x.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise DataError(f"{what}: crop_border {crop_border} leaves nothing of {h}x{w} images")
    if crop_border:
        x = x[..., crop_border:h - crop_border, crop_border:w - crop_border]
    x = x.to(torch.float64)
    if channels == "y" and x.shape[1] != 1:
        if x.shape[1] != 3:
            raise DataError(f"{what}: luminance (channels='y') needs 1- or 3-channel images, got {x.shape[1]} "
                            "channels; pass channels='all'")
        wr, wg, wb = Y_WEIGHTS
        x = (Y_OFFSET * data_range + wr * x[:, 0:1] + wg * x[:, 1:2] + wb * x[:, 2:3])
    return x


def l1(outputs: torch.Tensor, targets: torch.Tensor, data_range: float | None = None) -> torch.Tensor:
    """Per-image mean absolute difference over all channel values, in units of the data range (float64 N)."""
    rng = _check_pair(outputs, targets, data_range, "l1")
    out = [(outputs[i:i + CHUNK].to(torch.float64) - targets[i:i + CHUNK].to(torch.float64)).abs().flatten(1).mean(1)
           for i in range(0, len(outputs), CHUNK)]
    return torch.cat(out) / rng


def _mse(outputs: torch.Tensor, targets: torch.Tensor, rng: float, channels: Channels, crop_border: int,
         what: str) -> torch.Tensor:
    out = []
    for i in range(0, len(outputs), CHUNK):
        a = _signal(outputs[i:i + CHUNK], channels, rng, crop_border, what)
        b = _signal(targets[i:i + CHUNK], channels, rng, crop_border, what)
        out.append((a - b).square().flatten(1).mean(1))
    return torch.cat(out)


def _psnr_from_mse(mse: torch.Tensor, rng: float) -> torch.Tensor:
    # mse == 0: float division gives inf, log10(inf) = inf, and the cap makes it PSNR_CAP
    return (10.0 * torch.log10(rng * rng / mse)).clamp(max=PSNR_CAP)


def psnr(outputs: torch.Tensor, targets: torch.Tensor, data_range: float | None = None, channels: Channels = "y",
         crop_border: int = 0) -> torch.Tensor:
    """Per-image PSNR in dB, 10 log10(range^2 / MSE), capped at ``PSNR_CAP`` (float64 N)."""
    rng = _check_pair(outputs, targets, data_range, "psnr")
    return _psnr_from_mse(_mse(outputs, targets, rng, channels, crop_border, "psnr"), rng)


def psnr_set(outputs: torch.Tensor, targets: torch.Tensor, data_range: float | None = None, channels: Channels = "y",
             crop_border: int = 0) -> float:
    """PSNR of the whole set: one MSE over every pixel of every image (dominated by the worst images, where the
    mean of per-image PSNRs is dominated by the best), capped at ``PSNR_CAP``."""
    rng = _check_pair(outputs, targets, data_range, "psnr")
    mse = _mse(outputs, targets, rng, channels, crop_border, "psnr").mean()
    return float(_psnr_from_mse(mse, rng))


def gaussian_window(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> torch.Tensor:
    """The 1-D Gaussian taps (float64, summing to 1) scipy's gaussian_filter uses: exp(-x^2 / 2 sigma^2) on
    -radius..radius, normalised; SSIM's 2-D window is their outer product (separable)."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of M x 1 x H x W maps, output only where the window fits (valid region)."""
    k = len(taps)
    x = F.conv2d(x, taps.view(1, 1, 1, k))
    return F.conv2d(x, taps.view(1, 1, k, 1))


def ssim(outputs: torch.Tensor, targets: torch.Tensor, data_range: float | None = None, channels: Channels = "y",
         crop_border: int = 0) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004; see the module docstring), float64 N; 1 for identical images."""
    rng = _check_pair(outputs, targets, data_range, "ssim")
    taps = gaussian_window()
    side = 2 * SSIM_RADIUS + 1
    c1, c2 = (SSIM_K1 * rng) ** 2, (SSIM_K2 * rng) ** 2
    out = []
    for i in range(0, len(outputs), CHUNK):
        a = _signal(outputs[i:i + CHUNK], channels, rng, crop_border, "ssim")
        b = _signal(targets[i:i + CHUNK], channels, rng, crop_border, "ssim")
        n, c, h, w = a.shape
        if min(h, w) < side:
            raise DataError(f"ssim: images of {h}x{w} pixels (after any crop_border) are smaller than the "
                            f"{side}x{side} window")
        a, b = a.reshape(n * c, 1, h, w), b.reshape(n * c, 1, h, w)
        # The five local moments in one filtering pass: means, second moments, cross moment.
        m = _filter_valid(torch.cat([a, b, a * a, b * b, a * b]), taps).view(5, n * c, -1)
        mu_a, mu_b, aa, bb, ab = m
        var_a, var_b, cov = aa - mu_a * mu_a, bb - mu_b * mu_b, ab - mu_a * mu_b
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2))
        # mean over each channel's valid map, then over channels: skimage's channel_axis average
        out.append(s.mean(1).view(n, c).mean(1))
    return torch.cat(out)


def paired_metrics(outputs: torch.Tensor, targets: torch.Tensor, data_range: float | None = None,
                   channels: Channels = "y", crop_border: int = 0) -> dict[str, Any]:
    """L1, mean PSNR, whole-set PSNR and mean SSIM of outputs against their targets (a flat, JSON-ready dict)."""
    rng = _check_pair(outputs, targets, data_range, "paired metrics")
    mse = _mse(outputs, targets, rng, channels, crop_border, "psnr")
    per_image = _psnr_from_mse(mse, rng)
    return {
        "n": len(outputs),
        "l1": float(l1(outputs, targets, data_range).mean()),
        "psnr": float(per_image.mean()),
        "psnr_set": float(_psnr_from_mse(mse.mean(), rng)),
        "ssim": float(ssim(outputs, targets, data_range, channels, crop_border).mean()),
        "identical": int((mse == 0).sum()),
        "psnr_cap": PSNR_CAP,
        "channels": channels,
        "crop_border": crop_border,
        "data_range": rng,
    }
