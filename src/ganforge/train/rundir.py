"""Run directories: creating them without clobbering anything, and reading them back.

A run directory holds ``config.yaml`` (the resolved config), ``run.json`` (data facts the networks were built
for, versions), ``README.md`` (how it was launched), ``metrics.jsonl``, ``samples/``, ``checkpoints/`` and
``report.html``.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..algorithms import DataInfo
from ..config import MAX_YAML_BYTES, Config, build_config, dump_yaml, read_yaml_file
from ..errors import CheckpointError, ConfigError, RunDirError
from .checkpoint import atomic_write_text, latest_checkpoint
from .lock import RunLock


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def new_run_dir(out: str | Path | None, name: str, force: bool) -> Path:
    """Create the directory for a new run. An existing non-empty directory is an error unless ``force``,
    and even then it is moved aside (``DIR.replaced-TIMESTAMP``), never deleted."""
    path = Path(out) if out else Path("runs") / f"{name}-{_stamp()}"
    if path.exists() and not path.is_dir():
        raise RunDirError(f"output path {path} exists and is a file; choose another --out")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise RunDirError(f"output directory {path} already holds files; continue that run with --resume {path}, "
                              f"replace it with --force (the old one is kept as {path.name}.replaced-*), "
                              "or choose another --out")
        RunLock.check_free(path, "replace")     # never move a live run's directory from under it
        aside = path.with_name(f"{path.name}.replaced-{_stamp()}")
        n = 1
        while aside.exists():
            aside = path.with_name(f"{path.name}.replaced-{_stamp()}-{n}")
            n += 1
        path.rename(aside)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "samples").mkdir(exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create output directory {path}: {e.strerror}; choose another --out") from None
    return path


def _info_json(info: DataInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": info.kind, "sample_shape": list(info.sample_shape), "num_classes": info.num_classes,
                           "class_names": list(info.class_names) if info.class_names else None,
                           "keys": list(info.keys), "field_shapes": {k: list(v) for k, v in info.field_shapes.items()}}
    if info.streams:   # only when there are any: run.json of a one-stream run stays as it was
        out["streams"] = {name: _info_json(s) for name, s in info.streams.items()}
    return out


def write_run_files(run_dir: Path, cfg: Config, info: DataInfo, command: str, device: str,
                    precision_auto: dict[str, Any] | None = None) -> None:
    """config.yaml, run.json and README.md of a new run; ``precision_auto``: what ``train.precision: auto`` chose
    and why (train/precision.py), kept in run.json."""
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg.to_dict()))
    meta = {"ganforge": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "created": _dt.datetime.now().isoformat(timespec="seconds"), "command": command, "device": device,
            "data": _info_json(info)}
    if precision_auto:
        meta["precision_auto"] = precision_auto
    atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=1))
    readme = (f"# {cfg.name}\n\n{cfg.description}\n\nSource: {cfg.source}\n\n"
              f"Launched {meta['created']} on {device} (ganforge {__version__}, torch {torch.__version__}):\n\n"
              f"    {command}\n\n"
              f"Resume: `ganforge train --resume {run_dir}`; samples: `ganforge sample {run_dir} --n 64 --out grid.png`; "
              "open report.html for curves and grids.\n")
    atomic_write_text(run_dir / "README.md", readme)


def append_readme(run_dir: Path, line: str) -> None:
    path = run_dir / "README.md"
    text = path.read_text() if path.is_file() else ""
    atomic_write_text(path, text + line.rstrip() + "\n")


def read_run(run_dir: str | Path) -> tuple[Config, DataInfo, dict[str, Any]]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; give the --out directory of a training run")
    cfg_path, meta_path = run_dir / "config.yaml", run_dir / "run.json"
    if not cfg_path.is_file() or not meta_path.is_file():
        raise RunDirError(f"{run_dir} is not a ganforge run directory (no config.yaml / run.json)")
    # Every file is checked for what the commands then take from it, so a file edited or damaged by hand is one
    # line naming it, for info, sample, eval and --resume alike, before anything is built or written.
    fix = "restore it from a copy of the run, or start a new run"
    try:
        raw = read_yaml_file(cfg_path, "run config")
    except ConfigError as e:
        raise RunDirError(f"{e}; {fix}") from None
    if not isinstance(raw, dict):
        raise RunDirError(f"{cfg_path} is {'empty' if raw is None else 'not a mapping'}: it should hold the run's "
                          f"resolved config; {fix}")
    try:
        cfg = build_config(raw)
    except ConfigError as e:
        raise RunDirError(f"{cfg_path} is not a valid config ({e})") from None
    meta = _read_json(meta_path, fix)
    info = _data_info(meta, meta_path, fix)
    check_metrics(run_dir / "metrics.jsonl")
    return cfg, info, meta


def _read_json(path: Path, fix: str) -> Any:
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise RunDirError(f"{path} is {path.stat().st_size:,} bytes, not the run facts ganforge writes; {fix}")
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        what = "empty" if isinstance(e, json.JSONDecodeError) and not e.doc.strip() else "not valid JSON"
        raise RunDirError(f"{path} is {what}; {fix}") from None
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror or e}") from None


def _data_info(meta: Any, path: Path, fix: str) -> DataInfo:
    """The data facts the networks were built for, from run.json's ``data`` object."""
    d = meta.get("data") if isinstance(meta, dict) else None
    shape = d.get("sample_shape") if isinstance(d, dict) else None
    names = d.get("class_names") if isinstance(d, dict) else None
    ok = (isinstance(d, dict) and d.get("kind") in ("image", "vector")
          and isinstance(shape, list) and shape and all(_is_int(x) and x >= 1 for x in shape)
          and _is_int(d.get("num_classes")) and d["num_classes"] >= 0
          and (names is None or (isinstance(names, list) and all(isinstance(x, str) for x in names))))
    if not ok:
        got = "a JSON " + type(meta).__name__.replace("dict", "object").replace("list", "array") \
            if not isinstance(meta, dict) else "no valid 'data' entry"
        raise RunDirError(f"{path} has {got}; it should be an object whose 'data' gives kind, sample_shape and "
                          f"num_classes, as ganforge train writes it; {fix}")
    # keys / field_shapes: written since named batches; a run from before yields the main sample (and labels)
    keys = d.get("keys")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        keys = (["image"] if d["kind"] == "image" else ["vector"]) + (["label"] if d["num_classes"] else [])
    shapes = d.get("field_shapes")
    shapes = {k: tuple(v) for k, v in shapes.items() if isinstance(v, list)} if isinstance(shapes, dict) else {}
    streams = d.get("streams")
    streams = {str(n): _stream_info(s) for n, s in streams.items() if isinstance(s, dict)} \
        if isinstance(streams, dict) else {}
    return DataInfo(kind=d["kind"], sample_shape=tuple(shape), num_classes=d["num_classes"],
                    class_names=tuple(names) if names else None, keys=tuple(keys), field_shapes=shapes,
                    streams={n: s for n, s in streams.items() if s is not None})


def _stream_info(d: dict[str, Any]) -> DataInfo | None:
    """A stream's entry of run.json as written by ``_info_json`` (None for one that is not: it is left out, and an
    algorithm that needs the stream then says so when it is built)."""
    shape, keys, shapes = d.get("sample_shape"), d.get("keys"), d.get("field_shapes")
    if not (d.get("kind") in ("image", "vector") and isinstance(shape, list) and _is_int(d.get("num_classes"))
            and isinstance(keys, list) and isinstance(shapes, dict)):
        return None
    names = d.get("class_names")
    return DataInfo(kind=d["kind"], sample_shape=tuple(shape), num_classes=d["num_classes"],
                    class_names=tuple(names) if isinstance(names, list) else None, keys=tuple(map(str, keys)),
                    field_shapes={k: tuple(v) for k, v in shapes.items() if isinstance(v, list)})


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_metrics(path: Path) -> None:
    """Every complete line of metrics.jsonl must be a JSON object with a numeric step (info, the report and resume
    read records from it). Lines that are not JSON at all are left alone: a crash can cut the last one short, and
    resume drops such lines."""
    if not path.is_file():
        return
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise RunDirError(f"{path} is not UTF-8 text (byte offset {e.start}); delete the damaged lines") from None
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror or e}") from None
    for number, line in enumerate(text.splitlines(), 1):
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        step = rec.get("step", 0) if isinstance(rec, dict) else None
        if not isinstance(rec, dict) or not isinstance(step, (int, float)) or isinstance(step, bool):
            what = "is not a JSON object" if not isinstance(rec, dict) else f"has a non-numeric step {step!r:.30}"
            raise RunDirError(f"{path} line {number} ({line.strip()[:40]}) {what}; every line is one "
                              "{\"step\": ..., ...} record: delete or fix that line")


def require_checkpoint(run_dir: Path) -> Path:
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no checkpoint yet (training stopped before the first save); "
                              "train it again with --force")
    return ckpt

