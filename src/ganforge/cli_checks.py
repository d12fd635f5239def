"""Checks of command-line arguments that must run before anything is loaded, allocated or written.

``ganforge sample`` loads a model and generates before it writes: an absurd count or an unwritable ``--out`` found
only then costs the whole generation (or the machine's memory), and a refused command must leave nothing behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError

# The most samples one `ganforge sample` draws: 1,000,000 MNIST digits are 784 MB as uint8; far beyond that the
# arrays (float on the way, uint8 in the file) exhaust memory before anything is written. A PNG grid of more than
# 10,000 images (100 x 100) is no longer viewable, and a row of more than 1,000 images is a canvas of tens of
# thousands of pixels per image row.
MAX_SAMPLES = 1_000_000
MAX_GRID_IMAGES = 10_000
MAX_ROW = 1_000


def check_sample_args(n: int | None, nrow: int | None, per_row: int | None, out: Path) -> None:
    """Refuse, with one line, sample counts and layouts out of range and an ``--out`` that cannot be written."""
    out = Path(out)
    if out.suffix not in (".png", ".npz"):
        raise ConfigError(f"--out must end in .png (a grid) or .npz (arrays), got '{out.name}'")
    cap = MAX_GRID_IMAGES if out.suffix == ".png" else MAX_SAMPLES
    if n is not None and not 1 <= n <= cap:
        more = " (write a .npz for more)" if out.suffix == ".png" and n > cap else ""
        raise ConfigError(f"--n must be between 1 and {cap:,} for a {out.suffix} file{more}, got {n}")
    for flag, value in (("--nrow", nrow), ("--per-row", per_row)):
        if value is not None and not 1 <= value <= MAX_ROW:
            raise ConfigError(f"{flag} must be between 1 and {MAX_ROW:,} images per row, got {value}")
    check_writable(out, "--out")


def check_writable(out: Path, flag: str) -> None:
    """``out`` can be created (or replaced), found by creating and deleting a probe file where it would go, so the
    check leaves nothing behind. Missing parent folders are fine when the nearest existing one is writable: the
    command creates them when it writes."""
    out = Path(out).expanduser()
    fix = f"choose a {flag} path in a writable folder"
    if out.is_dir():
        raise ConfigError(f"{flag} {out} is a directory; give a file name inside it, e.g. {out / 'samples.png'}")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write {flag} {out}: {folder} is a file, not a folder; {fix}")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ganforge-write-test-")
    except OSError as e:
        raise ConfigError(f"cannot write {flag} {out}: {folder}: {e.strerror or e}; {fix}") from None
    os.close(fd)
    os.unlink(probe)
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigError(f"cannot write {flag} {out}: the file exists and is read-only; {fix}")
