"""Data sources. Importing this package registers every source with ``load_source``.

A source is named ``PREFIX:ARG`` (``folder:imgs/``, ``npz:x.npz``, ``idx:~/mnist``, ``toy:ring8``) or by a bare
name (``mnist5k``). A bare path is accepted too and its kind detected (``resolve_source``): a folder holding IDX
files is ``idx:``, one holding CIFAR-10 python batches ``cifar10:``, any other folder ``folder:``; a ``.npz`` file
``npz:``; an IDX file ``idx:``. Options after ``?`` stay as they are (``imgs/?size=64``).
"""
from pathlib import Path

from ..errors import DataError
from . import base as _base
from .base import Dataset, prepare, register_source, source_help, to_model_range, to_uint8
from . import cifar10, folder, idx, mnist5k, npz, toy2d  # noqa: F401  (registration side effects)
from . import emoji, glyphs, photos  # noqa: F401  (real data from installed packages and fonts: registration)
from . import captions, celeba, sr, translation  # noqa: F401  (user data formats: registration side effects)
from . import digit_captions  # noqa: F401  (mnist5k digits with measured-attribute captions: registration)

__all__ = ["Dataset", "load_source", "prepare", "register_source", "resolve_source", "source_help",
           "to_model_range", "to_uint8"]

# Endings that mark a spec as meant to be a path even when nothing is there (so the error can say so).
_PATHLIKE_SUFFIXES = (".npz", ".gz", "-ubyte", ".png", ".jpg", ".jpeg", ".tar")


def _kind_of_path(path: Path) -> str | None:
    """The source prefix that reads ``path``, judged from the names (never the contents) of its files."""
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return "npz"
        if idx._IMAGES_NAME.match(path.name) or path.name.endswith(("-ubyte", "-ubyte.gz")):
            return "idx"
        if path.name.endswith((".tar.gz", ".tgz")) and "cifar" in path.name.lower():
            return "cifar10"
        return None
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if any(idx._IMAGES_NAME.match(n) for n in names):
            return "idx"
        if cifar10.META_FILE in names and ("data_batch_1" in names or "test_batch" in names):
            return "cifar10"
        return "folder"
    return None


def resolve_source(spec: str) -> str:
    """``spec`` with the prefix its path needs (``imgs/`` -> ``folder:imgs/``); specs with a registered prefix,
    and names of registered sources, unchanged. A spec that reads as a path but names nothing is refused here,
    with a message about the path rather than about unknown source names."""
    if not isinstance(spec, str) or not spec:
        return spec
    head = spec.partition(":")[0].partition("?")[0]
    if head in source_help():
        return spec
    text = spec
    query = ""
    if "?" in spec and not Path(spec).expanduser().exists():
        text, _, rest = spec.rpartition("?")
        query = "?" + rest
    path = Path(text).expanduser()
    kind = _kind_of_path(path)
    if kind is not None:
        return f"{kind}:{text}{query}"
    if path.is_file():
        raise DataError(f"data source '{spec}': cannot tell what the file {path.name} holds; give a .npz "
                              "(arr_0 images, optional labels), an IDX file (*-images-idx3-ubyte[.gz]) or a "
                              "folder of images")
    if "/" in text or "\\" in text or text.startswith((".", "~")) or text.lower().endswith(_PATHLIKE_SUFFIXES):
        raise DataError(f"data source '{spec}': no such file or folder; give an existing image folder, "
                              ".npz file or IDX files, or a named source (ganforge list --all)")
    return spec


def load_source(spec: str, seed: int = 0) -> Dataset:
    """Load a dataset from a source spec such as ``mnist5k``, ``idx:/data/mnist``, ``toy:ring8`` or a bare path
    (``imgs/``, ``x.npz``; see ``resolve_source``)."""
    return _base.load_source(resolve_source(spec), seed)
