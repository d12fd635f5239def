"""``sr:DIR``: super-resolution pairs cut from any folder of high-resolution images (DIV2K style:
``DIR/0001.png ...``; subfolders are searched too).

Each image gives ``?crops_per_image=`` (default 16) HR crops of ``?crop=`` x ``?crop=`` pixels (default 96, SRGAN's
training patch) at positions drawn uniformly from a generator seeded with the run seed, so a run's patches are
the same every time it loads them. The LR input of each crop is Pillow's BICUBIC resize of the uint8 HR crop by
``?scale=`` (default 4), as SRGAN and the DIV2K bicubic track make it. Yields ``image`` (HR, uint8 3 x crop x crop)
and ``lowres`` (uint8 3 x crop/scale x crop/scale). The crops are fixed at load time (the fast in-memory path:
a batch is one index op); more crops per image give more variety at the cost of memory. Images are read as RGB.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, check_fits_in_memory, register_source
from .folder import _positive_int, _say_once
from .idx import split_path_and_options
from .translation import BICUBIC, existing_folder, image_size, images_in, read_rgb, to_chw

DEFAULT_CROP = 96
DEFAULT_CROPS_PER_IMAGE = 16
DEFAULT_SCALE = 4


def load_sr(root: Path, crop: int = DEFAULT_CROP, crops_per_image: int = DEFAULT_CROPS_PER_IMAGE,
            scale: int = DEFAULT_SCALE, seed: int = 0, name: str | None = None) -> Dataset:
    """HR crops and their bicubic LR versions (module docstring)."""
    name = name or f"sr:{root}"
    existing_folder(root, name, "a folder of high-resolution images (DIV2K_train_HR/ ...)")
    if crop % scale:
        raise DataError(f"crop {crop} is not a multiple of scale {scale} in '{name}'; the LR side crop/scale must be "
                        f"whole: use e.g. ?crop={crop // scale * scale or scale}")
    paths = images_in(root, name, "high-resolution images")
    sizes = [image_size(p) for p in paths]
    for p, (w, h) in zip(paths, sizes):  # judged before anything is decoded or allocated
        if w < crop or h < crop:
            raise DataError(f"image {p} is {w}x{h}, smaller than the {crop}x{crop} crop (from '{name}'); remove it "
                            f"or use a smaller ?crop=")
    lr = crop // scale
    n = len(paths) * crops_per_image
    check_fits_in_memory(n, 3 * (crop * crop + lr * lr), name, f"{len(paths)} images x {crops_per_image} crops of "
                         f"{crop}x{crop}", "use fewer ?crops_per_image= or a smaller ?crop=")
    hr_out = np.empty((n, 3, crop, crop), dtype=np.uint8)
    lr_out = np.empty((n, 3, lr, lr), dtype=np.uint8)
    generator = torch.Generator().manual_seed(seed)
    row = 0
    for p in paths:
        img = read_rgb(p)
        width, height = img.size
        tops = torch.randint(0, height - crop + 1, (crops_per_image,), generator=generator).tolist()
        lefts = torch.randint(0, width - crop + 1, (crops_per_image,), generator=generator).tolist()
        for top, left in zip(tops, lefts):
            patch = img.crop((left, top, left + crop, top + crop))
            hr_out[row] = to_chw(patch)
            lr_out[row] = to_chw(patch.resize((lr, lr), resample=BICUBIC))
            row += 1
    summary = (f"{name}: {len(paths)} images x {crops_per_image} random {crop}x{crop} crops (seed {seed}) = {n} HR "
               f"patches; LR {lr}x{lr} by bicubic x{scale}")
    _say_once(summary)
    return Dataset(x=torch.from_numpy(hr_out), y=None, name=name, fields={"lowres": torch.from_numpy(lr_out)},
                   meta={"source": "sr", "root": str(root), "crop": crop, "scale": scale,
                         "crops_per_image": crops_per_image, "seed": seed, "summary": summary})


@register_source("sr", "super-resolution from a folder of HR images (DIV2K ...): sr:DIR [?crop=96&crops_per_image=16"
                       "&scale=4]; random HR crops from the run seed, LR by bicubic downsampling; yields image, lowres",
                 keys=("image", "lowres"))
def _sr(arg: str, seed: int) -> Dataset:
    spec = f"sr:{arg}"
    path, options = split_path_and_options(arg, "sr", {
        "crop": "HR patch side, default 96", "crops_per_image": "patches per image, default 16",
        "scale": "downsampling factor, default 4"})
    return load_sr(path, _positive_int(options, "crop", spec) or DEFAULT_CROP,
                   _positive_int(options, "crops_per_image", spec) or DEFAULT_CROPS_PER_IMAGE,
                   _positive_int(options, "scale", spec) or DEFAULT_SCALE, seed=seed, name=spec)
