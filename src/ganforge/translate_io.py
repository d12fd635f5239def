"""Reading users' images for ``ganforge translate`` and writing the translations back.

Inputs: one image file, a folder of image files (its top level, sorted by name), or a ``.npz`` whose ``arr_0`` is
uint8 N x H x W x C (or N x H x W), the layout ``ganforge sample`` writes. Outputs mirror them: a file for a file, a
folder of same-named PNGs for a folder (or for a single file given a folder), a ``.npz`` with ``arr_0`` uint8 NHWC in
the same order for an npz (or for any inputs of one size). Channels are adapted to the model (grey -> RGB repeats
the plane, RGB -> grey is PIL's ITU-R 601 luma, alpha is composited on white), and images of another size are
resized to the model's input (bicubic) and their outputs back to the same scale, each said in one line; a fully
convolutional model (``Model.input_size_multiple()``: super-resolution) takes each image at its own size instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class Inputs:
    """Users' images as uint8 H x W x C arrays (C as read: 1, 3 or 4), with the names outputs are written under."""

    images: list[np.ndarray]
    names: list[str]
    kind: str                       # "file" | "folder" | "npz"
    notes: list[str] = field(default_factory=list)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, rgba).convert("RGB")
            elif im.mode not in ("L", "RGB"):
                im = im.convert("L" if im.mode in ("1", "I", "I;16", "F") else "RGB")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"--input {path}: not a readable image ({type(e).__name__}: {str(e)[:80]})") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_inputs(spec: str | Path) -> Inputs:
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"--input {path} does not exist; give an image file, a folder of images or a .npz")
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise DataError(f"--input {path} holds no image files ({' '.join(IMAGE_SUFFIXES)}) at its top level")
        return Inputs([_read_image(p) for p in files], [p.stem for p in files], "folder")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "arr_0" not in z.files:
                    raise DataError(f"--input {path} has no arr_0 (it has {', '.join(z.files) or 'nothing'}); "
                                    "translate reads arr_0 as uint8 N x H x W x C images")
                arr = z["arr_0"]
        except (OSError, ValueError) as e:
            raise DataError(f"--input {path}: not a readable .npz ({type(e).__name__}: {str(e)[:80]})") from None
        if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4)) \
                or len(arr) == 0:
            raise DataError(f"--input {path}: arr_0 is {arr.dtype} of shape {list(arr.shape)}; translate reads "
                            "uint8 N x H x W x C (C 1, 3 or 4) or N x H x W images, N >= 1")
        arr = arr[..., None] if arr.ndim == 3 else arr
        images = [a[:, :, :3] if a.shape[-1] == 4 else a for a in arr]   # npz: alpha dropped, not composited
        return Inputs(images, [f"{i:06d}" for i in range(len(arr))], "npz")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return Inputs([_read_image(path)], [path.stem], "file")
    raise DataError(f"--input {path}: use an image file ({' '.join(IMAGE_SUFFIXES)}), a folder of them or a .npz")


def fit_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """H x W x C uint8 to the model's channel count (1 or 3)."""
    have = image.shape[-1]
    if have == channels:
        return image
    if channels == 3 and have == 1:
        return np.repeat(image, 3, axis=-1)
    if channels == 1 and have == 3:   # PIL's "L": ITU-R 601-2 luma
        from PIL import Image
        return np.asarray(Image.fromarray(image).convert("L"))[:, :, None]
    raise DataError(f"cannot turn {have}-channel images into the model's {channels} channels")


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W x C uint8 resized (bicubic) to ``height`` x ``width``."""
    if image.shape[:2] == (height, width):
        return image
    from PIL import Image
    mode = "L" if image.shape[-1] == 1 else "RGB"
    im = Image.fromarray(image[:, :, 0] if mode == "L" else image, mode)
    out = np.asarray(im.resize((width, height), Image.BICUBIC))
    return out[:, :, None] if out.ndim == 2 else out


def check_output(out: str | Path, inputs: Inputs) -> Path:
    """Where outputs go, refused before any work: an npz, a PNG file for a single image, else a folder."""
    path = Path(out).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return path
    if suffix in IMAGE_SUFFIXES:
        if suffix != ".png":
            raise ConfigError(f"--out {path}: translations are written as PNG; use a .png name, a folder or a .npz")
        if len(inputs.images) != 1:
            raise ConfigError(f"--out {path} is one image file but --input has {len(inputs.images)} images; give a "
                              "folder or a .npz as --out")
        return path
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} exists and is not a folder; give a folder, a .png or a .npz")
    return path


def write_outputs(out: Path, images: list[np.ndarray], names: list[str]) -> str:
    """Write uint8 H x W x C outputs; returns what was written, in words."""
    from PIL import Image
    suffix = out.suffix.lower()
    if suffix == ".npz":
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise DataError(f"--out {out}: the outputs have {len(shapes)} different sizes (the inputs did), which one "
                            "npz array cannot hold; give a folder as --out")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".tmp.npz")
        np.savez(tmp, arr_0=np.stack(images))
        tmp.replace(out)
        return f"{out} (arr_0 uint8 {' x '.join(map(str, (len(images),) + images[0].shape))})"

    def save(image: np.ndarray, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        Image.fromarray(image[:, :, 0] if image.shape[-1] == 1 else image).save(tmp, format="PNG")
        tmp.replace(path)

    if suffix == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        save(images[0], out)
        return str(out)
    out.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        save(image, out / f"{name}.png")
    return f"{out}/ ({len(images)} PNG files)"
