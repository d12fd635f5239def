"""Run directories: creating them without clobbering anything, and reading them back.

A run directory holds ``config.yaml`` (the resolved config), ``run.json`` (data facts the networks were built
for, versions), ``README.md`` (how it was launched), ``metrics.jsonl``, ``samples/``, ``checkpoints/`` and
``report.html``.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from .. import __version__
from ..algorithms import DataInfo
from ..config import Config, build_config, dump_yaml
from ..errors import CheckpointError, ConfigError, RunDirError
from .checkpoint import atomic_write_text, latest_checkpoint


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


def write_run_files(run_dir: Path, cfg: Config, info: DataInfo, command: str, device: str) -> None:
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg.to_dict()))
    meta = {"ganforge": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "created": _dt.datetime.now().isoformat(timespec="seconds"), "command": command, "device": device,
            "data": {"kind": info.kind, "sample_shape": list(info.sample_shape), "num_classes": info.num_classes,
                     "class_names": list(info.class_names) if info.class_names else None}}
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
    try:
        raw = yaml.safe_load(cfg_path.read_text())
        meta = json.loads(meta_path.read_text())
    except (yaml.YAMLError, json.JSONDecodeError):
        raise RunDirError(f"{run_dir}/config.yaml or run.json is corrupt; the run cannot be read") from None
    try:
        cfg = build_config(raw)
    except ConfigError as e:
        raise RunDirError(f"{cfg_path} is not a valid config ({e})") from None
    d = meta["data"]
    info = DataInfo(kind=d["kind"], sample_shape=tuple(d["sample_shape"]), num_classes=int(d["num_classes"]),
                    class_names=tuple(d["class_names"]) if d.get("class_names") else None)
    return cfg, info, meta


def require_checkpoint(run_dir: Path) -> Path:
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no checkpoint yet (training stopped before the first save); "
                              "train it again with --force")
    return ckpt


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
