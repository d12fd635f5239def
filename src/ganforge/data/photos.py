"""``photos`` and ``textures``: patches of the real photographs that scikit-image and scikit-learn ship in their wheels.

Natural-image data (super-resolution as SRGAN, unconditional patches, texture synthesis) with nothing to download.
The files are read from the installed packages' folders directly with PIL, never through ``skimage.data.*()``, whose
loaders fetch a file that is not bundled with pooch (that is, from the network): a photo is used only if its file is on
disk, and ``meta["photos"]`` says which were. With scikit-image 0.26 and scikit-learn 1.9 all of these are bundled:

- photos (RGB): scikit-image's astronaut, chelsea, coffee, rocket, hubble_deep_field, retina, immunohistochemistry
  (``ihc.png``), and scikit-learn's ``load_sample_image`` pair china and flower;
- textures (grey): scikit-image's brick, grass and gravel.

One photo of each set is held out (``?holdout=``, by default ``coffee`` and ``gravel``): ``?split=train`` (the default)
has patches of the others, ``?split=test`` of it alone, ``?split=all`` of all. ``?patches=`` (default 64) square patches
of ``?size=`` px (default 96, SRGAN's crop) are cut from each photo at positions drawn from a fixed seed and the
photo's name, so a spec always gives the same patches on every machine and every run seed. ``?sr=K`` adds ``lowres``:
each patch downscaled K times by antialiased bicubic interpolation (SRGAN's x4 input, ``?sr=4``); ``size`` must then be
a multiple of K. ``label`` is the photo's index in ``class_names``.
"""
from __future__ import annotations

import importlib.util
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DataError
from .base import Dataset, check_fits_in_memory, register_source
from .glyphs import positive_int, split_options
from .idx import error_reason

# name -> (package, folder inside the package, file). Order is the label order.
PHOTOS = {
    "astronaut": ("skimage", "data", "astronaut.png"),
    "chelsea": ("skimage", "data", "chelsea.png"),
    "coffee": ("skimage", "data", "coffee.png"),
    "rocket": ("skimage", "data", "rocket.jpg"),
    "hubble_deep_field": ("skimage", "data", "hubble_deep_field.jpg"),
    "retina": ("skimage", "data", "retina.jpg"),
    "immunohistochemistry": ("skimage", "data", "ihc.png"),
    "china": ("sklearn", "datasets/images", "china.jpg"),
    "flower": ("sklearn", "datasets/images", "flower.jpg"),
}
TEXTURES = {
    "brick": ("skimage", "data", "brick.png"),
    "grass": ("skimage", "data", "grass.png"),
    "gravel": ("skimage", "data", "gravel.png"),
}
SETS = {"photos": (PHOTOS, "RGB", "coffee"), "textures": (TEXTURES, "L", "gravel")}
PIP_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}
SPLITS = ("train", "test", "all")
DEFAULT_SIZE, DEFAULT_PATCHES = 96, 64
PATCH_SEED = 0


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: importing scikit-learn takes seconds, and nothing of it is needed but two JPEG files.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def bundled(set_name: str) -> dict[str, Path]:
    """The photos of a set whose files are really on disk, in label order: name -> file."""
    found = {}
    for name, (package, folder, file) in SETS[set_name][0].items():
        root = _package_dir(package)
        if root is not None and (root / folder / file).is_file():
            found[name] = root / folder / file
    return found


@lru_cache(maxsize=16)
def _read(path: str, mode: str) -> np.ndarray:
    """uint8 H x W x C pixels of one bundled photo (read once per process)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode)).reshape(im.height, im.width, -1).copy()
    except OSError as err:
        raise DataError(f"cannot read the bundled photo {path}: {error_reason(err)}; reinstall its package "
                        "(pip install --force-reinstall scikit-image scikit-learn)") from None


def cut_patches(pixels: np.ndarray, name: str, size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` size x size patches of one photo (uint8 count x C x size x size) and their top-left corners
    (count x 2: row, column), from a generator seeded by PATCH_SEED and the photo's name, so the patches of one photo
    do not change when another photo is added, dropped or held out."""
    h, w = pixels.shape[:2]
    rng = np.random.default_rng([PATCH_SEED, zlib.crc32(name.encode())])
    corners = np.stack([rng.integers(0, h - size + 1, count), rng.integers(0, w - size + 1, count)], axis=1)
    patches = np.stack([pixels[r:r + size, c:c + size] for r, c in corners])
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2)), corners


def downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """uint8 NCHW images shrunk ``factor`` times by antialiased bicubic interpolation (MATLAB's imresize, as SRGAN
    made its inputs, is antialiased bicubic too)."""
    size = (x.shape[-2] // factor, x.shape[-1] // factor)
    y = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    return y.round().clamp(0, 255).to(torch.uint8)


def load_patches(set_name: str, split: str, size: int, patches: int, sr: int | None, holdout: str | None,
                 spec: str) -> Dataset:
    table, mode, default_holdout = SETS[set_name]
    holdout = holdout or default_holdout
    if holdout not in table:
        raise DataError(f"?holdout={holdout} in '{spec}' is not a {set_name} name; use one of {', '.join(table)}")
    found = bundled(set_name)
    if not found:
        packages = sorted({PIP_NAMES[p] for p, _, _ in table.values()})
        raise DataError(f"data source '{spec}' finds none of its photos on disk; install {' and '.join(packages)} "
                        f"(pip install {' '.join(packages)}), which bundle them")
    if holdout not in found:
        raise DataError(f"the held-out photo {holdout!r} of '{spec}' is not bundled by the installed "
                        f"{PIP_NAMES[table[holdout][0]]}; hold out a bundled one: ?holdout={next(iter(found))} "
                        f"(bundled: {', '.join(found)})")
    if sr is not None and size % sr:
        raise DataError(f"?size={size} in '{spec}' is not a multiple of ?sr={sr}; use a size such as {size - size % sr}"
                        f" so each patch has an exact {sr}x smaller low-resolution input")
    names = [n for n in found if split == "all" or (n == holdout) == (split == "test")]
    check_fits_in_memory(len(names) * patches, (1 if mode == "L" else 3) * size * size, spec,
                         f"{patches} patches of {size} px from {len(names)} photos", "use fewer ?patches= or a smaller ?size=")
    xs, ys, corners = [], [], {}
    for name in names:
        pixels = _read(str(found[name]), mode)
        if min(pixels.shape[:2]) < size:
            smallest = min(min(_read(str(found[n]), mode).shape[:2]) for n in names)
            raise DataError(f"?size={size} in '{spec}' is larger than the photo {name} "
                            f"({pixels.shape[1]} x {pixels.shape[0]}); use ?size={smallest} or less")
        cut, where = cut_patches(pixels, name, size, patches)
        xs.append(torch.from_numpy(cut))
        ys.append(torch.full((patches,), list(found).index(name), dtype=torch.int64))
        corners[name] = where.tolist()
    x = torch.cat(xs)
    fields = {"lowres": downscale(x, sr)} if sr is not None else {}
    meta = {"photos": {n: str(p) for n, p in found.items()}, "split": split, "holdout": holdout, "size": size,
            "patches_per_photo": patches, "corners": corners, "sr": sr}
    return Dataset(x=x, y=torch.cat(ys), name=spec, class_names=list(found), meta=meta, fields=fields)


_OPTIONS = {"split": "train (default: all but the held-out photo), test (it alone) or all",
            "size": f"patch side in px (default {DEFAULT_SIZE})",
            "patches": f"patches per photo (default {DEFAULT_PATCHES})",
            "sr": "K: add lowres, each patch bicubic-downscaled K times (SRGAN: 4)",
            "holdout": "the photo held out for ?split=test (default coffee / gravel)"}


def _load(prefix: str, arg: str, set_name: str | None) -> Dataset:
    spec = f"{prefix}{arg}"
    allowed = {**_OPTIONS, "set": "photos (default) or textures"} if set_name is None else _OPTIONS
    head, options = split_options(arg, prefix, allowed)
    if head:
        raise DataError(f"data source '{prefix}' takes no argument, only options (got '{prefix}:{arg}'); write e.g. "
                        f"{prefix}?split=test&size=96")
    set_name = set_name or options.get("set", "photos")
    if set_name not in SETS:
        raise DataError(f"unknown ?set={set_name} in '{spec}'; use ?set=photos or ?set=textures")
    split = options.get("split", "train")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} in '{spec}'; use ?split=train, ?split=test or ?split=all")
    sr = positive_int(options, "sr", spec, 0) or None
    return load_patches(set_name, split, positive_int(options, "size", spec, DEFAULT_SIZE),
                        positive_int(options, "patches", spec, DEFAULT_PATCHES), sr, options.get("holdout"), spec)


@register_source("photos", "patches of the photos bundled in scikit-image and scikit-learn (astronaut, chelsea, coffee, "
                 "rocket, hubble_deep_field, retina, immunohistochemistry, china, flower), coffee held out: "
                 "photos[?split=train|test|all&size=96&patches=64&sr=4&holdout=NAME&set=photos|textures]; "
                 "?sr=K adds lowres (bicubic /K, SRGAN)",
                 keys=("image", "label", "lowres"), argument=False)
def _photos(arg: str, seed: int) -> Dataset:
    return _load("photos", arg, None)


@register_source("textures", "patches of scikit-image's grey brick, grass and gravel textures, gravel held out: "
                 "textures[?split=train|test|all&size=96&patches=64&sr=K&holdout=NAME]",
                 keys=("image", "label", "lowres"), argument=False)
def _textures(arg: str, seed: int) -> Dataset:
    return _load("textures", arg, "textures")
