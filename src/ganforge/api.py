"""The Python API: ``ganforge.train(recipe, **overrides)`` and ``ganforge.load(run_dir).sample(n, seed=...)``.

``Model`` and ``load`` live in ``inference.py`` (sampling needs none of the training machinery) and are re-exported
here.
"""
from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .algorithms import DataInfo
from .build import build
from .config import RESUMABLE, Config, apply_overrides, build_config, load_config
from . import interrupts
from .errors import ConfigError, GanforgeError, note_run_dir
from .inference import Model, load, parse_init_from, select_checkpoint
from .train import distributed
from .train.checkpoint import atomic_write_text, latest_checkpoint, read_checkpoint
from .train.lock import RunLock
from .train.rundir import append_readme, new_run_dir, read_run, require_checkpoint, write_run_files
from .train.trainer import Trainer, load_weights

# Keyword shortcuts accepted by train() and the CLI flags they mirror.
SHORTCUTS = {"steps": "train.steps", "seed": "train.seed", "batch_size": "train.batch_size", "data": "data.source",
             "device": "train.device", "precision": "train.precision", "time_limit_s": "train.time_limit_s"}
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

    def load(self, step: int | str | Path | None = None) -> Model:
        return load(self.run_dir, step=step)


@distributed.session   # under torchrun: the process group the Trainer joins is left when training ends
def train(recipe: str | None = None, *, out: str | Path | None = None, resume: str | Path | None = None,
          force: bool = False, progress: bool | str = True, overrides: dict[str, Any] | None = None,
          command: str | None = None, on_step: Any = None, init_from: str | Path | None = None,
          **kwargs: Any) -> RunResult:
    """Train a recipe (name or YAML path), or resume a run directory.

    Keyword overrides: ``steps``, ``seed``, ``batch_size``, ``data``, ``device``, ``precision``, or any dotted key
    written with double underscores (``optim__D__lr=1e-4``), or ``overrides={"optim.D.lr": 1e-4}``.
    ``init_from="RUN[:STEP]"``: a new run that starts from another run's network weights (and EMA copy), with
    fresh optimizers at step 0. ``progress``: True (a bar on a terminal, plain lines otherwise), "log" (plain
    lines every ``log_every`` steps) or False (silent).
    Returns the run directory and the last logged metrics.
    """
    changes = collect_overrides(overrides, kwargs)
    command = command or "python: ganforge.train(" + ", ".join(
        [repr(recipe)] * bool(recipe) + [f"{k}={v!r}" for k, v in changes.items()] +
        ([f"resume={str(resume)!r}"] if resume else []) + ([f"init_from={str(init_from)!r}"] if init_from else [])
    ) + ")"
    if resume is not None and init_from is not None:
        raise ConfigError(f"--init-from starts a new run and --resume continues {resume}; give one of them")
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is not interrupts.interrupt:
        interrupts.clear()     # a stop remembered from an earlier call in this process (the CLI clears its own)
    with contextlib.ExitStack() as held:     # the run directory's lock, released when training ends in any way
        if resume is not None:
            trainer, run_dir, cfg = _resume(Path(resume), recipe, changes, progress, command, held)
        else:
            trainer, run_dir, cfg = _start(recipe, out, force, changes, progress, command, init_from, held)
        last = trainer.fit(on_step=on_step)
    return RunResult(run_dir=run_dir, config=cfg, steps=trainer.step, last_metrics=last)


def _resume(run_dir: Path, recipe: str | None, changes: dict[str, Any], progress: bool | str, command: str,
            held: contextlib.ExitStack) -> tuple[Trainer, Path, Config]:
    note_run_dir(run_dir)
    cfg, info, meta = read_run(run_dir)
    RunLock.check_free(run_dir, "resume")      # early, and writing nothing: the lock is taken once all is checked
    before = cfg.train.steps   # the lr horizon of checkpoints written before it was recorded in them
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
    built.algorithm.check_training_files()
    trainer = Trainer(built, run_dir, progress=progress, evaluator=_evaluator(cfg, built))
    ckpt = trainer.restore(recorded_steps=before)
    if trainer.is_main:   # under torchrun rank 0 alone writes
        held.enter_context(RunLock.acquire(run_dir, "resume"))
        write_run_files_config_only(run_dir, cfg)
        append_readme(run_dir, f"\nResumed at step {trainer.step} from {ckpt.name}:\n\n    {command}\n")
    return trainer, run_dir, cfg


def _start(recipe: str | None, out: str | Path | None, force: bool, changes: dict[str, Any], progress: bool | str,
           command: str, init_from: str | Path | None, held: contextlib.ExitStack) -> tuple[Trainer, Path, Config]:
    if not recipe:
        raise ConfigError("give a recipe to train (see `ganforge list`) or --resume RUN_DIR")
    cfg = load_config(recipe, changes)
    built = build(cfg)   # everything is validated before any directory is touched
    built.algorithm.check_training_files()
    warm = _init_weights(init_from, built) if init_from is not None else None
    dist = distributed.setup(cfg.train.device)   # rank 0 creates the directory; the others get its path or error
    dist.check_batch(cfg.train.batch_size)
    if cfg.starts_from and init_from is None and progress is not False and dist.is_main:
        # not refused: a user may want the second phase alone; but it is not the source's recipe then (said once,
        # by rank 0, under torchrun)
        print(f"ganforge: {cfg.name} is meant to start from a finished {cfg.starts_from} run (--init-from RUN); "
              f"training from scratch. The two phases: ganforge train {cfg.starts_from} --out R, then ganforge train "
              f"{cfg.name} --init-from R", file=sys.stderr, flush=True)
    with _signals_interrupt():
        run_dir = Path(dist.on_main(new_run_dir, out, cfg.name, force))
        if dist.is_main:
            held.enter_context(RunLock.acquire(run_dir, "train into"))
        try:
            note_run_dir(run_dir)
            trainer = Trainer(built, run_dir, progress=progress, evaluator=_evaluator(cfg, built))
            if warm is not None:
                trainer.warm_start(warm[0], str(warm[1]))
            if trainer.is_main:
                choice = trainer.precision_choice
                write_run_files(run_dir, cfg, built.info, command, str(trainer.device),
                                precision_auto=None if choice is None else {
                                    "precision": choice.precision, "channels_last": choice.channels_last,
                                    "why": choice.why})
                if warm is not None:
                    _record_init(run_dir, *warm[1:])
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM) or failed before training began: the directory holds no work, only what this
            # call wrote into it, so it goes, and the same --out can be used again.
            if dist.is_main and latest_checkpoint(run_dir) is None:
                held.close()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return trainer, run_dir, cfg


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like SIGINT while a run is being set up (the trainer's own handlers take over
    in ``fit``), so that a run stopped before its first step is cleaned up, not left half made."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = signal.signal(signal.SIGTERM, interrupts.interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _init_weights(spec: str | Path, built: Any) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """``--init-from RUN[:STEP]``: the checkpoint's weights, checked against the new run's networks (refused with
    the first tensor that does not fit), its path, and what to record about it."""
    source, step = parse_init_from(spec)
    src_cfg, _, _ = read_run(source)
    ckpt = select_checkpoint(source, step)
    weights, _, state = read_checkpoint(ckpt, with_training=False)
    # Loading into the freshly built networks checks the fit before any directory exists; the Trainer loads
    # them again (with the EMA copy) once it has moved the networks to their device.
    load_weights(built.algorithm, weights, None,
                 why=f"--init-from needs the same networks as {ckpt} ({src_cfg.name}): same architecture and data "
                     "shape")
    facts = {"run": str(source), "checkpoint": str(ckpt), "step": int(state["step"]), "recipe": src_cfg.name,
             "ema": any(k.startswith("ema.") for k in weights)}
    return weights, ckpt, facts


def _record_init(run_dir: Path, ckpt: Path, facts: dict[str, Any]) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    meta["init_from"] = facts
    atomic_write_text(run_dir / "run.json", json.dumps(meta, indent=1))
    append_readme(run_dir, f"\nInitialised from {ckpt} (step {facts['step']} of a '{facts['recipe']}' run): its "
                           f"network weights{' and EMA copy' if facts['ema'] else ''}; new optimizer state, "
                           "step 0.\n")


def write_run_files_config_only(run_dir: Path, cfg: Config) -> None:
    from .config import dump_yaml
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


def command_line() -> str:
    return "ganforge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


__all__ = ["train", "load", "Model", "RunResult", "GanforgeError"]
