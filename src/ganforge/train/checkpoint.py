"""Checkpoints: every tensor in safetensors, everything else in JSON, written so a kill never corrupts one.

Layout inside a run directory::

    checkpoints/step-00001000/weights.safetensors    networks (+ EMA copies): all that sampling needs
    checkpoints/step-00001000/training.safetensors   optimizer state, RNG states, data order (``t.*``), and the
                                                     algorithm's tensor state (``algorithm.<name>``: image pools,
                                                     running averages, labelled subsets)
    checkpoints/step-00001000/state.json             step, non-tensor state, sha256 of both files and of itself
    checkpoints/latest                                name of the newest complete checkpoint

The algorithm's state is training state (sampling never needs it), but whoever reads a checkpoint's weights also
gets it: ``read_checkpoint`` returns it among the weights as ``algorithm.<name>`` (``state.json`` lists the names,
so a checkpoint without any needs no read of ``training.safetensors`` for sampling). Checkpoints written before it
had its place kept it among the network weights; ``trainer.load_weights`` maps those keys.

A checkpoint is written into ``.tmp-step-...`` and renamed into place (atomic on POSIX), then ``latest`` is
replaced atomically. A crash at any moment leaves the previous checkpoint and pointer intact. Nothing is
ever unpickled: loading reads safetensors and JSON only, and verifies the hashes.

``state.json`` is what resuming trusts (the step, update counts, schedule anchors, the skeleton of the training
state), so it is covered too (format 2): ``state_sha256`` is the sha256 of the document's canonical JSON without that
field. A hand-edited step counter is refused instead of resuming a run that is not what its weights say. Format-1
checkpoints (written before) have no such field and are read unverified.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError

FORMAT = 2
READABLE_FORMATS = (1, 2)
_NAME = re.compile(r"step-[0-9]{8,}")


# ------------------------------------------------------------------------- nested state <-> flat tensors
def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested structure by ``{"__tensor__": key}``, collecting it in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"state keys must be str or int at {prefix}")
        return {"__dict__": [[k, flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__":
                [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix}")


def unflatten_state(skel: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skel, dict):
        if "__tensor__" in skel:
            return tensors[skel["__tensor__"]]
        if "__dict__" in skel:
            return {k: unflatten_state(v, tensors) for k, v in skel["__dict__"]}
        if "__list__" in skel:
            return [unflatten_state(v, tensors) for v in skel["__list__"]]
        if "__tuple__" in skel:
            return tuple(unflatten_state(v, tensors) for v in skel["__tuple__"])
    return skel


# ------------------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _doc_digest(doc: dict[str, Any]) -> str:
    """sha256 of a state document's canonical JSON (sorted keys, no spaces), leaving out ``state_sha256``."""
    body = {k: v for k, v in doc.items() if k != "state_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


ALGORITHM_PREFIX = "algorithm."


def save_checkpoint(run_dir: Path, step: int, weights: dict[str, torch.Tensor], training: Any,
                    state: dict[str, Any], keep: int = 2, algorithm: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint ``step`` atomically; keep the newest ``keep`` checkpoints. ``algorithm``: the algorithm's
    tensor state (``Algorithm.state_tensors``), stored in training.safetensors as ``algorithm.<name>``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    train_tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(training, "t", train_tensors)
    algorithm = algorithm or {}
    for name, tensor in algorithm.items():   # "t.*" and "algorithm.*" never collide
        train_tensors[ALGORITHM_PREFIX + name] = tensor.detach().cpu().contiguous().clone()
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}, str(tmp / "weights.safetensors"))
    save_file(train_tensors, str(tmp / "training.safetensors"))
    doc = {"format": FORMAT, "step": step, "state": state, "training": skeleton, "algorithm_tensors": list(algorithm),
           "sha256": {f: _sha256(tmp / f) for f in ("weights.safetensors", "training.safetensors")}}
    # The digest is taken of the document as it reads back (JSON turns int keys into strings, tuples into lists),
    # which is what read_state recomputes.
    doc = json.loads(json.dumps(doc))
    doc["state_sha256"] = _doc_digest(doc)
    with open(tmp / "state.json", "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    for f in ("weights.safetensors", "training.safetensors"):
        with open(tmp / f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():          # re-saving the same step (e.g. final == periodic): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    atomic_write_text(root / "latest", name + "\n")
    complete = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    return sorted(p for p in root.glob("step-*") if (p / "state.json").exists()) if root.is_dir() else []


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        try:
            name = pointer.read_text().strip()
        except (OSError, UnicodeDecodeError):
            name = ""                   # an unreadable pointer: fall back to the newest checkpoint directory
        # Only a checkpoint name: a hand-edited pointer ("../../elsewhere") must not lead out of checkpoints/.
        if _NAME.fullmatch(name) and (root / name / "state.json").is_file():
            return root / name
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _fix(ckpt: Path) -> str:
    return f"delete {ckpt} to fall back to an earlier checkpoint, or start a new run"


def read_state(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's ``state.json`` document, checked: its fields, their types, and (format 2) its own digest.

    Every command that reads a checkpoint's step or state goes through here (sample, eval, info, resume)."""
    ckpt = Path(ckpt)
    path, fix = ckpt / "state.json", _fix(ckpt)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {ckpt} has no state.json; {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt; {fix}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}; {fix}") from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"checkpoint {path} is not a ganforge checkpoint (format "
                              f"{' or '.join(map(str, READABLE_FORMATS))}); {fix}")
    missing = [k for k in ("step", "state", "training", "sha256") if k not in doc]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}; {fix}")
    if doc["format"] >= 2 and doc.get("state_sha256") != _doc_digest(doc):
        raise CheckpointError(f"checkpoint {path} was changed after it was written (its own checksum does not "
                              f"match: a hand-edited step or state?); restore the original file or {fix}")
    step, state, hashes = doc["step"], doc["state"], doc["sha256"]
    if (not isinstance(step, int) or isinstance(step, bool) or step < 0 or not isinstance(state, dict)
            or not isinstance(hashes, dict) or state.get("step", step) != step):
        raise CheckpointError(f"checkpoint {path} has a malformed step, state or sha256 field; {fix}")
    if _NAME.fullmatch(ckpt.name) and int(ckpt.name[5:]) != step:
        raise CheckpointError(f"checkpoint {path} says step {step} but its directory is {ckpt.name}; {fix}")
    return doc


def read_checkpoint(ckpt: Path, with_training: bool = True) -> tuple[dict[str, torch.Tensor], Any, dict[str, Any]]:
    """Return (weights, training state, state dict), verifying the files against their recorded hashes. The weights
    include the algorithm's tensor state as ``algorithm.<name>`` (read from training.safetensors, which is read
    for it even with ``with_training=False`` when the checkpoint has any)."""
    ckpt = Path(ckpt)
    fix = _fix(ckpt)
    doc = read_state(ckpt)
    names = doc.get("algorithm_tensors", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"checkpoint {ckpt}/state.json has a malformed algorithm_tensors field; {fix}")
    files = ["weights.safetensors"] + (["training.safetensors"] if with_training or names else [])
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for f in files:
        path = ckpt / f
        if not path.is_file():
            raise CheckpointError(f"checkpoint {ckpt} is missing {f}; {fix}")
        if _sha256(path) != doc["sha256"].get(f):
            raise CheckpointError(f"checkpoint file {path} is truncated or corrupt (checksum mismatch); {fix}")
        try:
            if f == "training.safetensors" and not with_training:   # only the algorithm's state, not the optimizers'
                with safe_open(str(path), framework="pt") as fh:
                    keys = set(fh.keys())
                    loaded[f] = {k: fh.get_tensor(k) for k in (ALGORITHM_PREFIX + n for n in names) if k in keys}
            else:
                loaded[f] = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {path} ({e}); {fix}") from None
    try:
        training = unflatten_state(doc["training"], loaded["training.safetensors"]) if with_training else None
        algorithm = {ALGORITHM_PREFIX + n: loaded["training.safetensors"][ALGORITHM_PREFIX + n] for n in names}
    except (KeyError, TypeError, ValueError):  # a format-1 skeleton edited by hand (format 2 is checksummed)
        raise CheckpointError(f"checkpoint {ckpt}/state.json does not match {ckpt}/training.safetensors; "
                              f"{fix}") from None
    return {**loaded["weights.safetensors"], **algorithm}, training, doc["state"]
