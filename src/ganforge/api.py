"""The Python API: ``ganforge.train(recipe, **overrides)`` and ``ganforge.load(run_dir).sample(n, seed=...)``."""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .algorithms import Algorithm, DataInfo
from .build import build, build_algorithm
from .config import Config, apply_overrides, build_config, load_config
from .data import to_uint8
from .errors import ConfigError, GanforgeError
from .train import distributed
from .train.checkpoint import read_checkpoint
from .train.ema import EMA
from .train.rundir import append_readme, new_run_dir, read_run, require_checkpoint, write_run_files
from .train.trainer import Trainer, load_weights, resolve_device

# Keyword shortcuts accepted by train() and the CLI flags they mirror.
SHORTCUTS = {"steps": "train.steps", "seed": "train.seed", "batch_size": "train.batch_size", "data": "data.source",
             "device": "train.device", "precision": "train.precision", "time_limit_s": "train.time_limit_s"}
# What may change when a run is resumed: cadence and placement, never the model or the optimisation.
RESUMABLE = ("train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every",
             "train.keep_checkpoints", "train.device", "train.threads", "train.eval_every", "train.eval_metrics",
             "train.eval_samples", "train.time_limit_s",
             "train.optimizer_impl", "train.channels_last", "train.compile")   # speed knobs: the same computation


def collect_overrides(overrides: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` (dotted keys) and keyword arguments (shortcuts, or ``a__b`` for ``a.b``)."""
    out = dict(overrides or {})
    for key, value in kwargs.items():
        if value is None:
            continue
        out[SHORTCUTS.get(key, key.replace("__", "."))] = value
    return out


@dataclass
class RunResult:
    run_dir: Path
    config: Config
    steps: int
    last_metrics: dict[str, Any]

    def load(self) -> "Model":
        return load(self.run_dir)


@distributed.session   # under torchrun: the process group the Trainer joins is left when training ends
def train(recipe: str | None = None, *, out: str | Path | None = None, resume: str | Path | None = None,
          force: bool = False, progress: bool = True, overrides: dict[str, Any] | None = None,
          command: str | None = None, on_step: Any = None, **kwargs: Any) -> RunResult:
    """Train a recipe (name or YAML path), or resume a run directory.

    Keyword overrides: ``steps``, ``seed``, ``batch_size``, ``data``, ``device``, ``precision``, or any dotted key
    written with double underscores (``optim__D__lr=1e-4``), or ``overrides={"optim.D.lr": 1e-4}``.
    Returns the run directory and the last logged metrics.
    """
    changes = collect_overrides(overrides, kwargs)
    command = command or "python: ganforge.train(" + ", ".join(
        [repr(recipe)] * bool(recipe) + [f"{k}={v!r}" for k, v in changes.items()] +
        ([f"resume={str(resume)!r}"] if resume else [])) + ")"
    if resume is not None:
        run_dir = Path(resume)
        cfg, info, meta = read_run(run_dir)
        if recipe and recipe != cfg.name and Path(recipe).stem != cfg.name:
            raise ConfigError(f"--resume {run_dir} holds a '{cfg.name}' run, not '{recipe}'; drop the recipe argument")
        for key in changes:
            if key not in RESUMABLE:
                raise ConfigError(f"cannot change {key} when resuming {run_dir}: it would not be the same run; "
                                  "start a new run with --out instead")
        cfg = build_config(apply_overrides(cfg.to_dict(), changes))
        require_checkpoint(run_dir)
        built = build(cfg)
        _check_same_data(built.info, info, run_dir)
        trainer = Trainer(built, run_dir, progress=progress, evaluator=_evaluator(cfg, built))
        ckpt = trainer.restore()
        if trainer.is_main:   # under torchrun rank 0 alone writes
            write_run_files_config_only(run_dir, cfg)
            append_readme(run_dir, f"\nResumed at step {trainer.step} from {ckpt.name}:\n\n    {command}\n")
    else:
        if not recipe:
            raise ConfigError("give a recipe to train (see `ganforge list`) or --resume RUN_DIR")
        cfg = load_config(recipe, changes)
        built = build(cfg)   # everything is validated before any directory is touched
        dist = distributed.setup(cfg.train.device)   # rank 0 creates the directory; the others get its path or error
        dist.check_batch(cfg.train.batch_size)
        run_dir = Path(dist.on_main(new_run_dir, out, cfg.name, force))
        trainer = Trainer(built, run_dir, progress=progress, evaluator=_evaluator(cfg, built))
        if trainer.is_main:
            write_run_files(run_dir, cfg, built.info, command, str(trainer.device))
    last = trainer.fit(on_step=on_step)
    return RunResult(run_dir=run_dir, config=cfg, steps=trainer.step, last_metrics=last)


def write_run_files_config_only(run_dir: Path, cfg: Config) -> None:
    from .config import dump_yaml
    from .train.checkpoint import atomic_write_text
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg.to_dict()))


def _check_same_data(now: DataInfo, then: DataInfo, run_dir: Path) -> None:
    if tuple(now.sample_shape) != tuple(then.sample_shape) or now.num_classes != then.num_classes:
        raise ConfigError(f"the data of {run_dir} now loads as shape {now.sample_shape} with {now.num_classes} "
                          f"classes, but the run was trained on {then.sample_shape} with {then.num_classes}")


def _evaluator(cfg: Config, built: Any) -> Any:
    if not cfg.train.eval_every:
        return None
    from .metrics.during_training import make_evaluator
    return make_evaluator(cfg, built)


# ------------------------------------------------------------------------------------------- inference
class Model:
    """A trained generator loaded from a run directory (EMA weights when the run kept them)."""

    def __init__(self, run_dir: Path, config: Config, info: DataInfo, algorithm: Algorithm,
                 nets: dict[str, torch.nn.Module], step: int, device: torch.device):
        self.run_dir, self.config, self.info = run_dir, config, info
        self.algorithm, self.nets, self.step, self.device = algorithm, nets, step, device

    @property
    def value_range(self) -> tuple[float, float] | None:
        return self.algorithm.value_range if self.info.kind == "image" else None

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch_size: int = 500, **controls: Any) -> torch.Tensor:
        """``n`` samples as the model outputs them (images in its value range, NCHW), on the CPU."""
        return self.sample_with_inputs(n, seed, batch_size, **controls)[0]

    @torch.no_grad()
    def sample_with_inputs(self, n: int, seed: int = 0, batch_size: int = 500,
                           **controls: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        gen = torch.Generator().manual_seed(seed)
        controls = {k: v for k, v in controls.items() if v is not None}
        inputs = self.algorithm.sample_inputs(n, gen, self.device, **controls)
        outs, labels = [], self.algorithm.sample_labels(inputs)
        for i in range(0, n, batch_size):
            part = {k: v[i:i + batch_size] for k, v in inputs.items()}
            outs.append(self.algorithm.generate(part, self.nets).float().cpu())
        return torch.cat(outs), None if labels is None else labels.cpu()

    def images(self, n: int, seed: int = 0, **controls: Any) -> np.ndarray:
        """uint8 N x H x W x C images (the layout FID tools read)."""
        if self.value_range is None:
            raise ConfigError("this model generates vectors, not images; use sample()")
        return to_uint8(self.sample(n, seed, **controls), self.value_range).permute(0, 2, 3, 1).numpy()


def load(run_dir: str | Path, device: str = "cpu", use_ema: bool = True) -> Model:
    """Load the newest checkpoint of a run for sampling."""
    run_dir = Path(run_dir)
    cfg, info, _ = read_run(run_dir)
    ckpt = require_checkpoint(run_dir)
    weights, _, state = read_checkpoint(ckpt, with_training=False)
    algo = build_algorithm(cfg, info)
    ema = None
    has_ema = any(k.startswith("ema.") for k in weights)
    if has_ema:
        ema = EMA({k: algo.nets[k] for k in algo.ema_networks}, decay=0.999)
    load_weights(algo, weights, ema)
    dev = resolve_device(device)
    algo.to(dev).eval()
    nets = dict(algo.nets.items())
    if ema is not None and use_ema:
        nets.update({k: m.to(dev).eval() for k, m in ema.shadow.items()})
    return Model(run_dir, cfg, info, algo, nets, int(state["step"]), dev)


def command_line() -> str:
    return "ganforge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


__all__ = ["train", "load", "Model", "RunResult", "GanforgeError"]
