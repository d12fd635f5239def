"""Reading a local pretrained-weights file (Inception for FID, VGG19 for SRGAN's content loss) safely.

safetensors, or a torch file through ``torch.load(weights_only=True)``: nothing is ever unpickled. Any unreadable or
unexpected file is one CheckpointError line naming the file and what it should be.
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import CheckpointError


def read_weights_file(path: Path, what: str, expected: str, advice: str = "") -> dict[str, torch.Tensor]:
    """The state dict in ``path``. ``what`` names the weights ("Inception weights"), ``expected`` the file they should
    be, ``advice`` what to do about an unreadable one (appended to its message)."""
    from safetensors import SafetensorError   # a corrupt header raises this, which is no OSError / ValueError
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            loaded = load_file(str(path))
        else:
            # torch warns about a plain (non-zip) pickle before failing on it; the warnings are held back so that a
            # refused file gives only the one line below, and shown when the file loads.
            with warnings.catch_warnings(record=True) as caught:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            for w in caught:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            SafetensorError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if first_line.startswith("Weights only load failed"):
            # torch's own advice here (load with weights_only=False) would unpickle an untrusted file: never say it
            first_line = "not a file of tensors torch.load(weights_only=True) can read"
        raise CheckpointError(f"cannot read {what} {path} ({first_line}); it should be {expected} or a .safetensors "
                              f"copy of it{advice}") from None
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"{what} {path} is not a plain state dict of tensors; expected {expected}")
    return dict(loaded)
