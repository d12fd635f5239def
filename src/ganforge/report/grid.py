"""Sample grids as PNG files (no torchvision): uint8 NCHW -> one tiled image; 2-D points -> a scatter plot; named
panels (input | output | target of a translation model) -> one column each, a row per sample."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, PngImagePlugin


def tile(images: torch.Tensor, nrow: int | None = None, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """uint8 N x C x H x W -> one H' x W' (x 3) array with ``nrow`` images per row and ``pad`` pixels between."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"tile wants uint8 NCHW images, got {images.dtype} {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    canvas = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y:y + h, x:x + w] = arr[i]
    return canvas[..., 0] if c == 1 else canvas


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Write a grid PNG atomically enough for viewers (write then rename); ``scale`` enlarges tiny images."""
    arr = tile(images, nrow)
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")   # one per writer
    img.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def panel_rows(panels: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Named uint8 N x C x H x W panels -> N*K images, row i holding sample i of each panel in the mapping's order
    (tile with ``nrow=K``). Panels of other sizes (a super-resolution input) are nearest-upscaled to the largest,
    grey ones repeated to RGB beside colour ones, so every column lines up."""
    if not panels:
        raise ValueError("panel_rows needs at least one panel")
    items = list(panels.items())
    n = len(items[0][1])
    for name, p in items:
        if p.dtype != torch.uint8 or p.ndim != 4:
            raise ValueError(f"panel {name!r} must be uint8 NCHW images, got {p.dtype} {tuple(p.shape)}")
        if len(p) != n:
            raise ValueError(f"panel {name!r} has {len(p)} images but {items[0][0]!r} has {n}")
    h = max(p.shape[2] for _, p in items)
    w = max(p.shape[3] for _, p in items)
    c = max(p.shape[1] for _, p in items)
    same = []
    for _, p in items:
        p = p.cpu()
        if p.shape[2:] != (h, w):
            p = F.interpolate(p, size=(h, w), mode="nearest")   # uint8 is fine for nearest: pixels are only repeated
        if p.shape[1] != c:
            p = p[:, :1].expand(-1, c, -1, -1)
        same.append(p)
    return torch.stack(same, dim=1).reshape(n * len(items), c, h, w)


def save_panels(panels: Mapping[str, torch.Tensor], path: str | Path, scale: int = 1) -> Path:
    """A PNG with one column per named panel (``{"input": ..., "output": ..., "target": ...}``) and a row per
    sample; the column names are kept in the PNG's ``columns`` text chunk ("input | output | target")."""
    arr = tile(panel_rows(panels), nrow=len(panels))
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    info = PngImagePlugin.PngInfo()
    info.add_text("columns", " | ".join(panels))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")   # one per writer
    img.save(tmp, format="PNG", pnginfo=info)
    tmp.replace(path)
    return path


def save_scatter(points: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None,
                 extent: float | None = None, size: int = 400) -> Path:
    """Plot 2-D samples (black) over optional reference points (e.g. mode centres, red) as a PNG."""
    pts = points.detach().float().cpu()
    ref = None if reference is None else reference.detach().float().cpu()
    if extent is None:
        both = pts if ref is None else torch.cat([pts, ref])
        finite = both[torch.isfinite(both).all(1)]
        extent = float(finite.abs().max()) * 1.15 + 1e-6 if len(finite) else 1.0
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p: torch.Tensor) -> tuple[float, float]:
        return ((float(p[0]) / extent + 1) * size / 2, (1 - float(p[1]) / extent) * size / 2)

    draw.line([(0, size / 2), (size, size / 2)], fill=(220, 220, 220))
    draw.line([(size / 2, 0), (size / 2, size)], fill=(220, 220, 220))
    for p in pts[torch.isfinite(pts).all(1)]:
        x, y = px(p)
        draw.point((x, y), fill=(0, 0, 0))
    if ref is not None:
        for p in ref:
            x, y = px(p)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(220, 0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path
