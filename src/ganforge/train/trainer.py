"""The one training loop. It knows nothing of any GAN family: the algorithm says what a step is.

Per step: ``algorithm.train_step(ctx)`` (which draws real batches and calls ``ctx.update(group, loss)`` for each
optimizer update), then EMA, then every K steps: metrics line, fixed-noise sample grid, evaluation,
checkpoint. SIGINT/SIGTERM finish the current step, write a checkpoint and stop; ``--resume`` continues
bit-exactly (weights, optimizer moments, lr schedule position, RNG streams, data order and the algorithm's tensor
state, ``Algorithm.state_tensors``, are all restored).

An update in pieces: ``ctx.backward(group, loss, gain=1.0, retain_graph=False)`` adds ``gain * d loss`` to the
group's gradients (the first call after the group's last step starts from zero, so gradients another group's
backward left on these parameters never count, as with ``ctx.update``); ``ctx.optimizer_step(group)`` then runs, once
per update, the NaN guard, the gradient average over ranks, the lr schedule, the optimizer (GradScaler) step and
zero-grad. ``ctx.update(group, loss)`` is exactly the two. (The method is not called ``step``: ``ctx.step`` is the
step counter the algorithms read.) A step that leaves a backward without its optimizer step is an error.

Data streams: ``ctx.real_batch()`` draws from ``main`` (``data.source``), ``ctx.real_batch("b")`` from
``data.streams.b``; every stream has its own sampler (seed: ``stream_seed(run seed, name)``), checkpointed with the
main one. ``data.held_out`` is never trained on: a family that samples from data (``Algorithm.samples_from_data``)
gets a fixed ``train.grid_size`` batch of it (``held_out_batch``) as ``sample_inputs(..., batch=)``, and progress
grids laid out by ``Algorithm.grid_panels`` (columns input | output | target, a row per sample). The main stream's
data is one uint8 tensor on the device, or, streamed (``data.path``, ``data/streaming.py``), decoded by a DataLoader
over a look-ahead copy of its sampler: the same batches, and the sampler's state is still all a checkpoint keeps.

Gradient accumulation, ``train.accumulate: N``: the data stream, ``train.batch_size`` and every random draw stay
those of ``N = 1``; the algorithm splits each update's batch into N consecutive micro-batches (``micro_batches``),
backpropagates each one's mean loss with gain rows/B and steps once, so an update averages the N micro-batches and
its gradient is the whole batch's (to float rounding) for networks without batch statistics; BatchNorm, minibatch
discrimination and batch-mean losses (feature matching, relativistic averages) see each micro-batch as a batch.
Only activation memory shrinks. Families declare it (``Algorithm.supports_accumulation``: ``adversarial``); others
refuse N > 1 at build time.

Per-parameter learning rates, ``optim.<group>.lr_mult: {"G.mapping": 0.01}``: the group's parameters whose name
``<network key>.<parameter name>`` (the checkpoint's ``nets.`` keys) starts with a prefix, at a dotted boundary,
form their own optimizer param group at ``lr * mult`` (the longest matching prefix wins; the schedule scales every
param group alike). StyleGAN's mapping network at 0.01x. A prefix that matches nothing is refused at build time.

Every update is checked for a non-finite loss or gradient (``train.nonfinite``): ``stop`` raises
``TrainingDiverged`` before the bad step is applied and writes no checkpoint; ``skip`` leaves the weights and the
optimizer state as they were and counts the update in ``nonfinite_skipped``. A checkpoint is never written of
non-finite weights.

What the user sees: a tqdm bar when stderr is a terminal (its total is the step the run will reach first, by
``train.steps`` or by the time limit at the measured rate), otherwise one plain line per ``log_every`` steps.

Under ``torchrun`` the same loop runs in every process (``train/distributed.py``): the trainer splits the global
batch across ranks, averages each update's gradients after ``backward``, averages BatchNorm running statistics after
each step, and lets rank 0 alone write files.

Speed options, the same computation up to float rounding: ``train.optimizer_impl`` (fused Adam/AdamW/SGD: default
on CUDA; on CPU opt-in, measured 3-12x faster optimizer steps); ``train.channels_last`` (off: for dcgan-mnist in fp32
on CPU it measured 1-3% slower, for dcgan-fashion's 3x3 convolutions 13% faster); ``train.compile`` (off: 6% slower
steady state for dcgan-mnist on CPU, plus the compile); ``train.precision`` (bf16 autocast; fp16 with a gradient
scaler on CUDA; off until measured safe per family). ``bench/speed.py`` measures them against a plain PyTorch loop.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Literal, TextIO

import torch
import torch.nn as nn
from tqdm import tqdm

from ..algorithms import Algorithm, Batch, algorithm_class, algorithm_names
from ..algorithms.base import make_batch, tensor_mismatch
from ..build import Built
from ..config import HELD_OUT, Config, OptimConfig, config_difference
from ..data import Dataset, to_uint8
from ..data.sampler import BatchSampler
from ..data.streaming import StreamingSource, StreamLoader, default_workers
from ..errors import CheckpointError, ConfigError, GanforgeError
from ..report import save_grid, save_panels, save_scatter, write_report
from . import distributed
from .checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
from .phases import Phase, phase_at
from .precision import PrecisionChoice, choose_precision, measured_family
from .ema import EMA


log = logging.getLogger(__name__)
UNUSED_STREAM_STEPS = 50   # steps of a run after which a configured stream never drawn is warned about


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training and a checkpoint was written."""

    def __init__(self, step: int, checkpoint: Path, signame: str):
        super().__init__(f"{signame} at step {step}")
        self.step, self.checkpoint, self.signame = step, checkpoint, signame


class TrainingDiverged(GanforgeError):
    """A loss, gradient or weight became NaN / Inf (``train.nonfinite=stop``). Nothing of the bad state was
    written: the run's latest checkpoint is still its last good one. A GanforgeError because the fix is the
    user's (a lower learning rate, ``train.nonfinite=skip``); exit status 3 so scripts can tell it from bad input."""

    exit_code = 3

    def __init__(self, message: str, step: int, group: str | None = None):
        super().__init__(message)
        self.step, self.group = step, group


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA GPU is available here; use train.device=cpu")
    return torch.device(name)


# torch has single-kernel ("fused") implementations of these on CPU and CUDA; the others have foreach at best.
FUSED_OPTIMIZERS = ("adam", "adamw", "sgd")


def optimizer_impl_kwargs(name: str, impl: str, device_type: str = "cpu") -> dict[str, bool]:
    """Constructor flags for ``train.optimizer_impl``. The update is the same math in every implementation, but not
    the same rounding, and a GAN's trajectory amplifies rounding: after 800 gan-toy steps the fused and for-loop runs
    of one seed end in different places (mean distance to the ring 0.82 vs 0.60; over seeds 1-3, 1.21/1.00/0.41 vs
    0.67/0.52/0.83).

    ``auto``: on CUDA fused where torch has it (Adam, AdamW, SGD); on CPU torch's default (the for-loop), so CPU runs
    keep the numbers they always had. ``fused`` on CPU is the fast choice for small networks: the fused Adam step
    measured 3-12x faster than the for-loop (0.2 vs 2.4 ms for gan-toy, 3.6 vs 10.2 ms for dcgan-fashion), gan-toy
    training 1.3x. For RMSprop foreach measured no faster than the for-loop on CPU."""
    if impl == "auto":
        return {"fused": True} if name in FUSED_OPTIMIZERS and device_type == "cuda" else {}
    if impl == "fused":
        if name not in FUSED_OPTIMIZERS:
            raise ConfigError(f"train.optimizer_impl=fused: torch has no fused {name}; use auto, foreach or for-loop "
                              f"(fused exists for {', '.join(FUSED_OPTIMIZERS)})")
        return {"fused": True}
    return {"foreach": impl == "foreach"}


def parameter_groups(algorithm: Algorithm, group: str, lr_mult: dict[str, float]) -> list[dict[str, Any]]:
    """``group``'s parameters as optimizer param groups by ``optim.<group>.lr_mult``: first those no prefix matches
    (in the order of ``parameters()``, no ``lr_mult``), then one param group per prefix, in the config's order, with
    its ``lr_mult`` (saved in the optimizer state). Raises ConfigError for a prefix that matches no parameter."""
    named = [(f"{key}.{name}", p) for key in algorithm.optimizer_groups[group]
             for name, p in algorithm.nets[key].named_parameters()]
    chosen: dict[str, list[nn.Parameter]] = {prefix: [] for prefix in lr_mult}
    rest: list[nn.Parameter] = []
    for name, p in named:
        hits = [pre for pre in lr_mult if name == pre or name.startswith(pre + ".")]
        (chosen[max(hits, key=len)] if hits else rest).append(p)
    empty = [pre for pre, ps in chosen.items() if not ps]
    if empty:
        tops = sorted({".".join(name.split(".")[:2]) for name, _ in named})
        raise ConfigError(f"optim.{group}.lr_mult: no parameter of group {group} is named '{empty[0]}' or "
                          f"'{empty[0]}.*'; its parameters are under {', '.join(tops)} (names as in the checkpoint's "
                          "nets.* keys, without 'nets.')")
    out: list[dict[str, Any]] = [{"params": rest}] if rest else []
    return out + [{"params": ps, "lr_mult": lr_mult[pre]} for pre, ps in chosen.items()]


def check_training_options(cfg: Config, algorithm: Algorithm) -> None:
    """The train / optim keys that depend on the built algorithm (called by ``build``, before any run directory
    exists, and by the Trainer): ``train.accumulate`` needs a family that splits its updates, ``lr_mult`` prefixes
    must name parameters of their group."""
    n = cfg.train.accumulate
    if n > 1 and not algorithm.supports_accumulation:
        able = [name for name in algorithm_names() if algorithm_class(name).supports_accumulation]
        raise ConfigError(f"train.accumulate={n}: algorithm '{algorithm.name}' does not split its updates into "
                          f"micro-batches; use train.accumulate=1 (algorithms that do: {', '.join(able)})")
    for group in algorithm.optimizer_groups:
        if group in cfg.optim and cfg.optim[group].lr_mult:
            parameter_groups(algorithm, group, cfg.optim[group].lr_mult)
    if cfg.train.phases and hasattr(algorithm, "check_phases"):   # a growing family (ProGAN) checks the resolutions
        algorithm.check_phases(cfg.train.phases)


def make_optimizer(cfg: OptimConfig, params: list[nn.Parameter] | list[dict[str, Any]],
                   impl: str = "for-loop") -> torch.optim.Optimizer:
    """``params``: a flat list (one param group), or param groups (``parameter_groups``)."""
    first = params[0]["params"][0] if params and isinstance(params[0], dict) else (params[0] if params else None)
    flags = optimizer_impl_kwargs(cfg.name, impl, first.device.type if first is not None else "cpu")
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                                **flags)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                                 **flags)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, **flags)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **flags)


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix work is done in hardware here (CUDA, or a CPU with AVX512-BF16 / AMX). On other CPUs
    oneDNN emulates it: on an AVX2-only EPYC, one thread, bf16 matmuls ran at ~1 GFLOP/s against ~80 in fp32, and a
    dcgan-mnist step ~15x slower than in fp32 (bench/speed.py)."""
    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        # A torch without the query (or without oneDNN) cannot promise hardware bf16: assuming it would hide the
        # 15x slowdown the warning exists for; a needless warning costs nothing.
        return False


BF16_WARNING = ("train.precision=bf16 on a CPU without bf16 instructions (AVX512-BF16 / AMX): torch emulates it, "
                "far slower than fp32 (bench/speed.py measures it); use fp32 here")


def lr_factor(cfg: OptimConfig, updates: int, step: int, total_steps: int,
              anchor: tuple[int, float] | None = None) -> float:
    """Schedule factor for the next update (``updates`` already done, at training step ``step``).

    ``linear``: 1 until the last ``decay_steps`` steps of the horizon ``total_steps``, then linear to 0 at
    ``total_steps`` (pix2pix / CycleGAN). The horizon is the ``train.steps`` the run started with, recorded in its
    checkpoints, so ``--resume --steps N`` never jumps the lr (the ``Trainer`` re-targets it):

    * if this group's decay had not begun, the decay moves to the last ``decay_steps`` of the new total: exactly the
      schedule a run started with that total has (and its weights, bit for bit);
    * if it had begun, the resumed run continues from the factor ``f`` of the last update taken, at step ``s``, and
      falls linearly to 0 at the new total: ``anchor=(s, f)`` and ``f * (total - step) / (total - s)``. Continuous and
      monotone, decreasing by at most the old per-step decrement when the total grows, and 0 at the new end. A
      finished run (lr ~0) so extended trains on at ~0: a fresh lr wants a new run, ``--init-from RUN``.
    """
    if cfg.schedule == "inverse_time":       # Keras legacy decay: lr / (1 + decay * iterations)
        return 1.0 / (1.0 + cfg.decay * updates)
    if cfg.schedule == "linear" and cfg.decay_steps > 0:
        remaining = max(total_steps - step, 0)
        if anchor is not None:
            a_step, a_factor = anchor
            return a_factor * remaining / max(total_steps - a_step, 1)
        return min(1.0, remaining / cfg.decay_steps)
    return 1.0


class _Context:
    """The StepContext the trainer gives the algorithm for one step."""

    def __init__(self, trainer: "Trainer"):
        self.t = trainer
        self.step = trainer.step
        self.accumulate = trainer.cfg.train.accumulate
        self.phase = trainer.phase

    def real_batch(self, stream: str = "main") -> Batch:
        return self.t.next_batch(stream)

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.t.autocast()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.t.apply_update(group, loss)

    def backward(self, group: str, loss: torch.Tensor, gain: float = 1.0, retain_graph: bool = False) -> None:
        self.t.backward(group, loss, gain, retain_graph)

    def optimizer_step(self, group: str) -> None:
        self.t.optimizer_step(group)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


ProgressMode = Literal["bar", "log", "off"]


def progress_mode(progress: bool | str, stream: TextIO | None = None) -> ProgressMode:
    """``True``: a bar on a terminal, plain lines elsewhere; ``"log"``: plain lines; ``False`` / ``"off"``: silent.
    A bar is never drawn on a stream that is not a terminal: its carriage-return frames would fill a log file."""
    if progress is False or progress == "off":
        return "off"
    if progress not in (True, "bar", "log"):
        raise ConfigError(f"progress must be True, False, 'bar', 'log' or 'off', got {progress!r}")
    stream = stream if stream is not None else sys.stderr
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    return "bar" if progress in (True, "bar") and is_tty else "log"


class Progress:
    """Progress on stderr against whichever limit ends the run first: ``train.steps`` or the time limit.

    ``bar``: tqdm, refreshed at most once a second; under a time limit its total is the step the run is expected
    to stop at (``min(steps, step + rate * time left)``, re-estimated from the measured rate every second), so
    its percentage and ETA are those of the actual end. ``log``: one line per metrics line (``log_every``), like
    stylegan2-ada's log.txt: step/total, losses, steps/s, elapsed, ETA."""

    def __init__(self, mode: ProgressMode, name: str, total: int, step: int, time_limit_s: float,
                 stream: TextIO | None = None, limit_clock: Callable[[], float] = time.time):
        self.mode, self.name, self.total, self.time_limit_s = mode, name, total, time_limit_s
        self.stream = stream if stream is not None else sys.stderr
        self.t_start = time.time()
        # the clock the time limit is counted on (train.time_limit_clock): wall time, or this process's CPU time
        self.limit_clock, self.limit_start = limit_clock, limit_clock()
        self.t_loop, self.step_loop = self.t_start, step
        self._estimated = 0.0
        self.bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True, disable=mode != "bar",
                        mininterval=1.0, desc=name, file=self.stream) if mode == "bar" else None

    def start_loop(self, step: int) -> None:
        """Training steps start now (after setup work): the rate is measured from here."""
        self.t_loop, self.step_loop = time.time(), step
        self._estimated = self.t_loop    # the first estimate after a second of steps, not from the first one

    def expected_end(self, step: int, now: float) -> int:
        """The step the run should stop at: ``train.steps``, or sooner when the time limit comes first."""
        if not self.time_limit_s or step <= self.step_loop or now <= self.t_loop:
            return self.total
        rate = (step - self.step_loop) / (now - self.t_loop)
        left = max(self.time_limit_s - self.limit_used(), 0.0)
        return int(min(self.total, max(step, round(step + rate * left))))

    def update(self, step: int) -> None:
        if self.bar is None:
            return
        now = time.time()
        if self.time_limit_s and now - self._estimated >= 1.0:
            self._estimated = now
            self.bar.total = self.expected_end(step, now)
        self.bar.update(1)

    def logged(self, step: int, rec: dict[str, Any]) -> None:
        """After a metrics line: the losses in the bar's postfix, or a plain line."""
        losses = {k: v for k, v in rec.items() if k.endswith("loss") and isinstance(v, float)}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            return
        if self.mode != "log":
            return
        now = time.time()
        elapsed = now - self.t_start
        rate = float(rec.get("steps_per_s") or 0.0)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        why = ""
        if self.time_limit_s and self.time_limit_s - self.limit_used() < eta:
            eta, why = self.time_limit_s - self.limit_used(), " (time limit)"
        parts = [f"{self.name} step {step}/{self.total}", *(f"{k} {v:.4g}" for k, v in losses.items()),
                 f"{rate:.3g} steps/s", f"elapsed {_clock(elapsed)}",
                 f"eta {_clock(eta) if math.isfinite(eta) else '?'}{why}"]
        if rec.get("nonfinite_skipped"):
            parts.append(f"nonfinite_skipped {rec['nonfinite_skipped']}")
        print("  ".join(parts), file=self.stream, flush=True)

    def limit_used(self) -> float:
        """Seconds of the time limit used so far, on its clock."""
        return self.limit_clock() - self.limit_start

    def time_up(self, step: int) -> None:
        """The time limit ended the run here: the bar ends full, at the step it stopped at."""
        if self.bar is not None:
            self.bar.total = step
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Trainer:
    def __init__(self, built: Built, run_dir: Path, progress: bool | str = True,
                 evaluator: Callable[["Trainer"], dict[str, float]] | None = None):
        cfg = built.config
        self.cfg: Config = cfg
        self.built = built
        self.run_dir = Path(run_dir)
        tc = cfg.train
        # Under torchrun: this process's rank and its device (cuda:LOCAL_RANK or cpu); else a single process.
        self.dist = distributed.setup(tc.device)
        # train.threads=0: the idle cores (train/threads.py), not torch's one per core, which oversubscribes a
        # shared machine; under torchrun each local process takes its share of them.
        from .threads import training_threads
        local = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size or 1))
        self.threads = tc.threads if tc.threads > 0 else max(1, training_threads(0) // max(local, 1))
        torch.set_num_threads(self.threads)
        self.is_main = self.dist.is_main
        self.progress: ProgressMode = progress_mode(progress) if self.is_main else "off"
        self.evaluator = evaluator if self.is_main else None
        world = self.dist.world_size
        self.dist.check_batch(tc.batch_size)
        if tc.accumulate > tc.batch_size // world:
            raise ConfigError(f"train.accumulate={tc.accumulate} splits each process's batch of "
                              f"{tc.batch_size // world} into more micro-batches than it has samples; lower it or "
                              "raise train.batch_size")
        check_training_options(cfg, built.algorithm)
        for i, phase in enumerate(tc.phases):
            if phase.batch_size is not None and phase.batch_size % world:
                raise ConfigError(f"train.phases[{i}].batch_size={phase.batch_size} is the global batch and must divide "
                                  f"evenly over the {world} processes; use a multiple of {world}")
            if phase.batch_size is not None and tc.accumulate > phase.batch_size // world:
                raise ConfigError(f"train.accumulate={tc.accumulate} splits each process's batch of "
                                  f"{phase.batch_size // world} in train.phases[{i}] into more micro-batches than it "
                                  "has samples; lower it")
        self.device = self.dist.device if self.dist.enabled else resolve_device(tc.device)
        self.precision_choice: PrecisionChoice | None = None
        if tc.precision == "auto":
            # Decided once, here, and written into the config (config.yaml): a resume repeats it on any machine.
            measured, family = measured_family(built.algorithm)
            self.precision_choice = choose_precision(self.device, measured, family, native_bf16(self.device))
            tc.precision = self.precision_choice.precision
            tc.channels_last = tc.channels_last or self.precision_choice.channels_last
            if self.is_main and self.progress != "off":
                print(f"ganforge: precision auto -> {tc.precision}{' + channels_last' * tc.channels_last} "
                      f"({self.precision_choice.why})", file=sys.stderr, flush=True)
        self.algorithm: Algorithm = built.algorithm.to(self.device)
        self.trained_keys = [k for keys in self.algorithm.optimizer_groups.values() for k in keys]
        if tc.sync_bn and self.dist.enabled:
            for key in self.trained_keys:
                self.algorithm.nets[key] = distributed.convert_sync_batchnorm(self.algorithm.nets[key], self.device)
        if tc.channels_last:
            self.algorithm.to(memory_format=torch.channels_last)   # 4-D weights only; the rest is unchanged
        self.algorithm.train()
        ds = built.dataset
        self.value_range = self.algorithm.value_range if ds.kind == "image" else None
        # Each rank draws the same global batch stream and keeps its slice: together they see the single-process batch.
        self.sampler = BatchSampler(len(ds), tc.batch_size // world, cfg.data.sampling, seed=tc.seed,
                                    rank=self.dist.rank, world_size=world)
        # Streamed data (data.path, data/streaming.py): a DataLoader decodes the rows this sampler draws, each rank its
        # own slice; otherwise the whole dataset lives on the device as one tensor and a batch is one index operation.
        self.stream_loader: StreamLoader | None = None
        if isinstance(ds, StreamingSource):
            if any(p.batch_size not in (None, tc.batch_size) for p in tc.phases):
                raise ConfigError("train.phases with their own batch_size need the data in memory (the streamed "
                                  "path's workers decode fixed-size batches ahead); set data.path=memory or drop the "
                                  "phases' batch_size")
            workers = cfg.data.workers if cfg.data.workers is not None else default_workers()
            self.stream_loader = StreamLoader(ds, self.sampler, workers, pin_memory=self.device.type == "cuda")
            self.data_x, self.data_y, self.data_fields = None, None, {}
        else:
            self.data_x = ds.x.to(self.device)
            self.data_y = None if ds.y is None else ds.y.to(self.device)
            self.data_fields = {k: v.to(self.device) for k, v in ds.fields.items()}
        # The other streams (data.streams), each on the device with its own sampler, seeded from the run seed and its
        # name: adding a stream never changes another's order. The held-out stream has no sampler: it is never
        # trained on, only its fixed batch (below) is used.
        self.streams: dict[str, tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]] = {}
        self.stream_samplers: dict[str, BatchSampler] = {}
        self.drawn_streams: set[str] = set()   # the data.streams the algorithm has drawn from in this process
        for name, sc in cfg.data.stream_configs().items():
            if name == HELD_OUT:
                continue
            sds = built.streams[name]
            bs = sc.batch_size or tc.batch_size
            if bs % world:
                raise ConfigError(f"data.streams.{name}.batch_size={bs} is the global batch and must divide evenly "
                                  f"over the {world} processes; use a multiple of {world}")
            self.streams[name] = (sds.x.to(self.device), None if sds.y is None else sds.y.to(self.device),
                                  {k: v.to(self.device) for k, v in sds.fields.items()})
            self.stream_samplers[name] = BatchSampler(len(sds), bs // world, sc.sampling or cfg.data.sampling,
                                                      seed=stream_seed(tc.seed, name), rank=self.dist.rank,
                                                      world_size=world)
        self.groups = {g: [p for key in keys for p in self.algorithm.nets[key].parameters()]
                       for g, keys in self.algorithm.optimizer_groups.items()}
        # With lr_mult, param groups by name prefix; without, the one flat group (the optimizer state every run had).
        self.optimizers = {g: make_optimizer(cfg.optim[g], parameter_groups(self.algorithm, g, cfg.optim[g].lr_mult)
                                             if cfg.optim[g].lr_mult else ps, tc.optimizer_impl)
                           for g, ps in self.groups.items()}
        self.updates = {g: 0 for g in self.groups}
        # Per group with gradients accumulated since its last optimizer step: the losses backpropagated (detached),
        # for the NaN guard at step time.
        self._pending: dict[str, list[torch.Tensor]] = {}
        self._layout_checked: set[str] = set()
        self.ema = (EMA({k: self.algorithm.nets[k] for k in self.algorithm.ema_networks}, tc.ema.decay, tc.ema.start)
                    if tc.ema.enabled else None)
        # BatchNorm running statistics that each rank updates from its own slice: averaged after every step.
        self.rank_norm_layers = distributed.unsynced_norm_layers(self.algorithm.nets.values()) if world > 1 else []
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tc.precision]
        if tc.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA GPU; on CPU use train.precision=bf16")
        if tc.precision == "bf16" and not native_bf16(self.device) and self.is_main:
            warnings.warn(BF16_WARNING, stacklevel=2)
        self.scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
        if tc.compile:
            # In place (nn.Module.compile): state_dict keys and the algorithm's calls stay as they are. The EMA copy
            # above was taken first and stays eager (it only samples).
            for key in dict.fromkeys(self.trained_keys):
                self.algorithm.nets[key].compile()
        self.step = 0
        self.log_sums: dict[str, Any] = {}
        self.log_count = 0
        self._stop: str | None = None
        # The linear lr schedule's horizon: train.steps at the first start, kept in every checkpoint, and per group
        # the (step, factor) the decay continues from after a resume changed the total (see lr_factor).
        self.lr_horizon = tc.steps
        self.lr_anchors: dict[str, tuple[int, float]] = {}
        self.nonfinite_skipped = 0
        # A warm start (--init-from) brings what setup() builds and the EMA copy; neither is redone at step 0.
        self.warm_started = False
        self.ema_loaded = False
        # Same noise all run long, from its own generator: progress grids are comparable, and drawing them
        # never disturbs the training RNG streams. A family that samples from data gets the same real inputs all run
        # long too: train.grid_size rows of the held-out stream (the main data when there is none), chosen by a
        # generator of their own, also there for evaluators (``held_out_batch``).
        self.held_out_batch: Batch | None = None
        controls: dict[str, Any] = {}
        if self.algorithm.samples_from_data:
            self.held_out_batch = fixed_batch(built.streams.get(HELD_OUT, ds), tc.grid_size, tc.seed + 3,
                                              self.value_range, self.device)
            controls["batch"] = self.held_out_batch
        n_grid = len(self.held_out_batch.x) if self.held_out_batch is not None else tc.grid_size
        self.fixed_inputs = self.algorithm.sample_inputs(n_grid, torch.Generator().manual_seed(tc.seed + 1),
                                                         self.device, **controls)

    # ------------------------------------------------------------------------------------ step pieces
    def next_batch(self, stream: str = "main") -> Batch:
        """The next batch of ``stream``: ``main`` (data.source) or a name in data.streams."""
        if stream == "main":
            if self.stream_loader is not None:
                return self._streamed_batch()
            phase = self.phase
            size = phase.batch_size // self.dist.world_size if phase is not None and phase.batch_size else None
            idx = self.sampler.next(size).to(self.device)
            return make_batch(self.data_x, self.data_y, self.data_fields, idx, self.value_range,
                              self.cfg.train.channels_last)
        if stream not in self.streams:
            have = ", ".join(["main", *self.streams])
            why = (" (the held-out stream is not trained on: its fixed batch is trainer.held_out_batch)"
                   if stream == HELD_OUT else "")
            raise KeyError(f"algorithm '{self.algorithm.name}' drew from data stream {stream!r}, which this run "
                           f"does not sample{why}; it samples {have} (declare it in Algorithm.streams)")
        x, y, fields = self.streams[stream]
        self.drawn_streams.add(stream)
        idx = self.stream_samplers[stream].next().to(self.device)
        return make_batch(x, y, fields, idx, self.value_range, self.cfg.train.channels_last)

    def warn_unused_streams(self, steps: int) -> None:
        """One line for each configured data stream the algorithm never drew from in ``steps`` steps of this process
        (at least UNUSED_STREAM_STEPS: a family that draws some streams at random steps, ComboGAN's domain pairs,
        has drawn each by then): loaded for nothing, most often a stream name the algorithm does not use."""
        unused = [name for name in self.streams if name not in self.drawn_streams]
        if steps >= UNUSED_STREAM_STEPS and unused:
            drawn = ", ".join(["main", *sorted(self.drawn_streams)])
            for name in unused:
                log.warning(f"ganforge: warning: data.streams.{name} is configured but algorithm "
                            f"'{self.algorithm.name}' never drew from it in {steps} steps (it drew from {drawn}); "
                            f"remove it, or check the stream's name")

    def _streamed_batch(self) -> Batch:
        """The main stream's next batch from the DataLoader: the same rows, and through ``make_batch`` the same
        floats, as the memory path draws for this sampler state."""
        assert self.stream_loader is not None
        x, y, fields = self.stream_loader.next()
        cuda = self.device.type == "cuda"   # pinned on CUDA: the copy overlaps the step
        x = x.to(self.device, non_blocking=cuda)
        y = None if y is None else y.to(self.device, non_blocking=cuda)
        fields = {k: v.to(self.device) for k, v in fields.items()}
        rows = torch.arange(len(x), device=self.device)
        return make_batch(x, y, fields, rows, self.value_range, self.cfg.train.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def lr_factor(self, group: str, step: int | None = None) -> float:
        """The schedule factor of ``group``'s next update at training step ``step`` (default: now)."""
        return lr_factor(self.cfg.optim[group], self.updates[group], self.step if step is None else step,
                         self.lr_horizon, self.lr_anchors.get(group))

    def apply_update(self, group: str, loss: torch.Tensor) -> None:
        """``ctx.update``: one backward of ``loss``, then the optimizer step."""
        self.backward(group, loss)
        self.optimizer_step(group)

    def backward(self, group: str, loss: torch.Tensor, gain: float = 1.0, retain_graph: bool = False) -> None:
        """``ctx.backward``: accumulate ``gain * d loss`` into ``group``'s gradients (module docstring)."""
        if group not in self.optimizers:
            raise KeyError(f"algorithm updated unknown optimizer group {group!r}")
        if group not in self._pending:
            # A new update starts from zero: what other groups' backward passes left on these parameters is dropped.
            self.optimizers[group].zero_grad(set_to_none=True)
            self._pending[group] = []
        scaled = loss if gain == 1.0 else loss * gain    # no multiply at gain 1: ctx.update's exact computation
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward(retain_graph=retain_graph)
        self._pending[group].append(loss.detach())

    def optimizer_step(self, group: str) -> None:
        """``ctx.optimizer_step``: NaN guard, DDP gradient average, lr schedule, optimizer step, zero-grad."""
        if group not in self.optimizers:
            raise KeyError(f"algorithm stepped unknown optimizer group {group!r}")
        regularization = getattr(self.algorithm, "regularization", None)
        if group in self._pending and regularization is not None and regularization.orthogonal:
            # The recipe's parameter penalties (regularize.orthogonal) of the group's networks: once per update,
            # whatever the family's step and micro-batching (algorithms/regularization.py).
            nets = {k: self.algorithm.nets[k] for k in self.algorithm.optimizer_groups.get(group, ())}
            extra = regularization.parameter_terms(nets)
            if extra is not None:
                self.backward(group, extra)
        losses = self._pending.pop(group, None)
        if losses is None:
            raise RuntimeError(f"ctx.optimizer_step({group!r}) without a ctx.backward({group!r}, ...) since that "
                               "group's last step: there is no gradient to apply")
        opt, ocfg = self.optimizers[group], self.cfg.optim[group]
        factor = self.lr_factor(group)
        for pg in opt.param_groups:
            mult = pg.get("lr_mult", 1.0)
            pg["lr"] = ocfg.lr * factor if mult == 1.0 else ocfg.lr * factor * mult
        params = self.groups[group]
        if len(losses) == 1:
            loss = losses[0]
            loss_ok = torch.isfinite(loss).all()
        else:   # one flag for the update, and the first non-finite loss (if any) for the message
            finite = torch.stack([torch.isfinite(x).all() for x in losses])
            loss_ok = finite.all()
            loss = losses[int(torch.argmin(finite.to(torch.uint8)))]
        ranks_bad = 0
        if self.dist.enabled:
            if group not in self._layout_checked:
                self.dist.check_same_layout(params, f"optimizer group {group}")
                self._layout_checked.add(group)
            # The loss flag rides in the gradient all-reduce: every rank learns that some rank's loss went bad
            # without another collective. Averaged gradients are the same everywhere, so is their check.
            ranks_bad = int(self.dist.average_gradients(params, flags=(~loss_ok).float().reshape(1)).item())
        # With a GradScaler (fp16) Inf gradients are routine: the scaler skips those steps and lowers the scale.
        grads = [p.grad for p in params if p.grad is not None] if self.scaler is None else []
        ok = bool(loss_ok) and not ranks_bad and all_finite(grads)
        if not ok:
            self._nonfinite_update(group, loss, bool(loss_ok), ranks_bad)
            return
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        self.updates[group] += 1
        # The gradients are spent: freeing them now costs nothing (the next update starts from zero anyway).
        opt.zero_grad(set_to_none=True)

    def _nonfinite_update(self, group: str, loss: torch.Tensor, loss_ok: bool, ranks_bad: int) -> None:
        """A NaN / Inf loss or gradient in ``group``'s update, before its optimizer step: skip it or stop."""
        if self.cfg.train.nonfinite == "skip":
            # Skipped, not nan_to_num'ed (stylegan2-ada's way): a NaN loss makes every gradient NaN, which
            # nan_to_num turns into zeros that Adam would still apply through its moments. Skipping leaves the
            # weights and the optimizer state exactly as they were, as GradScaler does for an fp16 overflow.
            self.optimizers[group].zero_grad(set_to_none=True)
            self.nonfinite_skipped += 1
            return
        value = float(loss.detach().float().reshape(-1)[0])
        if not loss_ok:
            what = f"the loss of optimizer group {group} is {value}"
        elif ranks_bad:
            what = f"the loss of optimizer group {group} is non-finite on {ranks_bad} of {self.dist.world_size} ranks"
        else:
            what = (f"the loss of optimizer group {group} is finite ({value:.4g}) but the gradient of "
                    f"{self._first_nonfinite_grad(group)} is not")
        raise TrainingDiverged(f"training diverged in step {self.step + 1}: {what}; {self._nothing_saved()}; "
                               f"{self._lowering_hint()}, or resume with --set train.nonfinite=skip to skip such "
                               "updates", self.step + 1, group)

    def _lowering_hint(self) -> str:
        # Every group's lr: the update that went non-finite is often not the one whose lr caused it (a D step with
        # too high an lr makes G's next loss NaN).
        lrs = ", ".join(f"optim.{g}.lr={self.cfg.optim[g].lr:g}" for g in self.optimizers)
        return f"lower the learning rates (now {lrs}) in a new run"

    def _first_nonfinite_grad(self, group: str) -> str:
        for key in self.algorithm.optimizer_groups[group]:
            for name, p in self.algorithm.nets[key].named_parameters():
                if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                    return f"{key}.{name}"
        return "a parameter"

    def _nothing_saved(self) -> str:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            return "no checkpoint was written"
        return f"nothing was saved: {ckpt} is still the latest checkpoint"

    def _check_finite_state(self, weights: dict[str, torch.Tensor]) -> None:
        """Refuse to checkpoint NaN / Inf weights, buffers or algorithm state (a finite gradient step can still
        overflow them, and ``nonfinite=skip`` cannot undo that): stop instead, so the latest checkpoint stays a good
        one."""
        state = {f"algorithm.{k}": v for k, v in self.algorithm.state_tensors().items()}
        for name, t in {**weights, **state}.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise TrainingDiverged(f"training diverged by step {self.step}: the weights {name} are non-finite; "
                                       f"{self._nothing_saved()}; {self._lowering_hint()}", self.step)

    # ------------------------------------------------------------------------------------ state
    def weights(self) -> dict[str, torch.Tensor]:
        out = {f"nets.{k}": v for k, v in self.algorithm.nets.state_dict().items()}
        if self.ema is not None:
            for key, net in self.ema.shadow.items():
                out.update({f"ema.{key}.{k}": v for k, v in net.state_dict().items()})
        return out

    def training_state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dist.enabled:   # every rank's noise stream (a collective: all ranks save together)
            rng["torch_ranks"] = self.dist.gather_rows(torch.get_rng_state())
            if self.device.type == "cuda":
                rng["cuda_ranks"] = self.dist.gather_rows(torch.cuda.get_rng_state(self.device))
        return {
            "optimizers": {g: o.state_dict() for g, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng,
            "sampler": self.sampler.state_dict(),
            # only with streams: a one-stream run's training state stays exactly what it was
            **({"streams": {n: smp.state_dict() for n, smp in self.stream_samplers.items()}}
               if self.stream_samplers else {}),
            "log_sums": {k: torch.as_tensor(v).detach().cpu().double() for k, v in self.log_sums.items()},
        }

    def json_state(self) -> dict[str, Any]:
        return {"step": self.step, "updates": self.updates, "log_count": self.log_count,
                "algorithm": self.algorithm.extra_state(), "config_name": self.cfg.name,
                "config": self.cfg.to_dict(),    # what the run trained with: a hand-edited config.yaml is refused
                "lr_schedule": {"horizon": self.lr_horizon,
                                "anchors": {g: list(a) for g, a in self.lr_anchors.items()}},
                "nonfinite_skipped": self.nonfinite_skipped}

    def save(self) -> Path:
        """Write a checkpoint (rank 0; under torchrun every rank must call this at the same step).

        Raises ``TrainingDiverged`` instead when the weights are non-finite, and (under torchrun) ``RanksDiverged``
        when the ranks' weights differ: in both cases on every rank and before anything is written."""
        path = self.run_dir / "checkpoints" / f"step-{self.step:08d}"
        if not self.dist.enabled:
            weights = self.weights()
            self._check_finite_state(weights)
            return save_checkpoint(self.run_dir, self.step, weights, self.training_state(), self.json_state(),
                                   keep=self.cfg.train.keep_checkpoints, algorithm=self.algorithm.state_tensors())
        # Partial log sums become their mean over ranks, so a resumed run logs what an uninterrupted one would.
        self.log_sums = self.dist.mean_values(self.log_sums)
        weights = self.weights()
        hashes = self.dist.fingerprints(weights)
        if len(set(hashes)) > 1:      # never seen: every rank steps from the same averaged gradients
            raise distributed.RanksDiverged(
                f"the {self.dist.world_size} ranks' weights differ at step {self.step} (sha256 "
                f"{', '.join(h[:12] for h in hashes)}), a bug in distributed training; the step-{self.step:08d} "
                "checkpoint was not written, the latest one is still good: resume from it with --resume")
        self._check_finite_state(weights)   # equal weights on every rank: every rank raises, or none does
        training = self.training_state()
        state = {**self.json_state(), "distributed": {"world_size": self.dist.world_size, "weights_sha256": hashes}}
        if self.is_main:
            path = save_checkpoint(self.run_dir, self.step, weights, training, state,
                                   keep=self.cfg.train.keep_checkpoints, algorithm=self.algorithm.state_tensors())
        return path

    def restore(self, ckpt: Path | None = None, recorded_steps: int | None = None) -> Path:
        """Continue from ``ckpt`` (default: the latest). ``recorded_steps``: the ``train.steps`` the run had before
        this resume, the lr horizon of checkpoints written before the horizon was recorded in them."""
        ckpt = ckpt or latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise CheckpointError(f"{self.run_dir} has no checkpoint to resume from; start it again with --force")
        weights, training, state = read_checkpoint(ckpt)
        if isinstance(state.get("config"), dict):    # checkpoints before it was recorded: nothing to compare
            diff = config_difference(state["config"], json.loads(json.dumps(self.cfg.to_dict())))   # as stored
            if diff is not None:
                key, was, now = diff
                raise CheckpointError(f"{self.run_dir}/config.yaml sets {key}={now!r} but {ckpt.name} was trained with "
                                      f"{key}={was!r}: config.yaml was edited after training. A resume may change only "
                                      "the cadence keys (train.steps, log/sample/checkpoint cadence, device, threads); "
                                      f"restore {key}, or start a new run from this one with --init-from {self.run_dir}")
        load_weights(self.algorithm, weights, self.ema)
        for g, o in self.optimizers.items():
            o.load_state_dict(training["optimizers"][g])
        if self.scaler is not None and training.get("scaler"):
            self.scaler.load_state_dict(training["scaler"])
        self._restore_rng(training["rng"], int(state.get("distributed", {}).get("world_size", 1)), int(state["step"]))
        # The sampler's state is the global batch stream, the same on every rank and for any number of ranks.
        self.sampler.load_state_dict(training["sampler"])
        if self.stream_loader is not None:   # batches prefetched from the old state must not be served
            self.stream_loader.reset()
        saved_streams = training.get("streams", {})
        for name, smp in self.stream_samplers.items():
            if name not in saved_streams:
                raise CheckpointError(f"{ckpt} has no data order for stream '{name}' (data.streams.{name}); was "
                                      "config.yaml edited after training?")
            smp.load_state_dict(saved_streams[name])
        self.log_sums = {k: v.to(self.device) for k, v in training["log_sums"].items()}
        self.step = int(state["step"])
        self.updates = {g: int(state["updates"].get(g, 0)) for g in self.optimizers}
        self.log_count = int(state.get("log_count", 0))
        self.nonfinite_skipped = int(state.get("nonfinite_skipped", 0))
        schedule = state.get("lr_schedule") or {"horizon": recorded_steps or self.cfg.train.steps}
        self.lr_horizon = int(schedule["horizon"])
        self.lr_anchors = {g: (int(a[0]), float(a[1])) for g, a in schedule.get("anchors", {}).items()}
        self.retarget_schedule(self.cfg.train.steps)
        self.algorithm.load_extra_state(state.get("algorithm", {}))
        if self.is_main:
            truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        self.dist.barrier()    # no rank starts before rank 0 has trimmed the metrics
        return ckpt

    def retarget_schedule(self, total: int) -> None:
        """Make ``total`` the horizon of the linear lr decay without a jump in any group's lr (rule: ``lr_factor``).
        Nothing changes when the total is the recorded one (so a plain resume stays bit-exact), or when no
        update is left to take."""
        if total == self.lr_horizon or total <= self.step:
            return
        last = max(self.step - 1, 0)      # the step of the last update taken
        anchors = {}
        for g in self.optimizers:
            c = self.cfg.optim[g]
            if c.schedule != "linear" or c.decay_steps <= 0:
                continue
            taken = self.lr_factor(g, last)
            fresh = lr_factor(c, self.updates[g], last, total)
            if g in self.lr_anchors or not taken == fresh == 1.0:   # the decay had begun (or would have, if shorter)
                anchors[g] = (last, taken)
        self.lr_horizon, self.lr_anchors = total, anchors

    def _restore_rng(self, rng: dict[str, Any], saved_world: int, step: int) -> None:
        """Each rank's own noise stream when the run had this many ranks; otherwise rank 0 takes the saved
        (rank 0 / single-process) stream and the other ranks fresh streams, so training continues, not bit-exactly."""
        world, rank = self.dist.world_size, self.dist.rank
        cuda = self.device.type == "cuda"
        if world > 1 and saved_world == world and "torch_ranks" in rng:
            torch.set_rng_state(rng["torch_ranks"][rank].clone())
            if cuda and "cuda_ranks" in rng:
                torch.cuda.set_rng_state(rng["cuda_ranks"][rank].clone(), self.device)
            return
        if rank == 0:
            torch.set_rng_state(rng["torch"])
            if cuda and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:
            torch.manual_seed(distributed.rank_seed(self.cfg.train.seed + step, rank))
        if saved_world != world and self.is_main:
            log.warning(f"ganforge: note: resuming a {saved_world}-process run with {world} process(es): the data "
                        "order is the same, the noise of ranks > 0 is new, so it continues but not bit-identically")

    def warm_start(self, weights: dict[str, torch.Tensor], source: str) -> None:
        """``--init-from``: a checkpoint's network weights (and EMA copy, when both runs keep one) as the starting
        point of this run at step 0; the optimizers, schedules, RNG streams and data order stay fresh."""
        has_ema = any(k.startswith("ema.") for k in weights)
        load_weights(self.algorithm, weights, self.ema if has_ema else None,
                     why=f"--init-from needs the same networks as {source} (same recipe, architecture and data shape)")
        self.warm_started, self.ema_loaded = True, has_ema and self.ema is not None

    # ------------------------------------------------------------------------------------ outputs
    def sampling_nets(self) -> dict[str, nn.Module]:
        nets = dict(self.algorithm.nets.items())
        if self.ema is not None:
            nets.update(self.ema.shadow)
        return nets

    @torch.no_grad()
    def write_samples(self) -> Path:
        self.enter_phase(max(self.step - 1, 0))
        nets = self.sampling_nets()
        modules = list(nets.values())
        saved = [(m, m.training) for m in modules]
        for m in modules:
            m.eval()
        try:
            panels = self.algorithm.grid_panels(self.fixed_inputs, nets) if self.value_range is not None else None
            out = self.algorithm.generate(self.fixed_inputs, nets).float() if panels is None else None
        finally:
            for m, flag in saved:
                m.train(flag)
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        if panels is not None:   # columns input | output | target ..., a row per sample
            images = {k: to_uint8(v.float(), self.value_range) for k, v in panels.items()}
            return save_panels(images, path, scale=max(1, 64 // max(v.shape[-1] for v in images.values())))
        assert out is not None
        if self.value_range is None:
            from ..data.toy2d import mode_centers
            toy = self.built.dataset.meta.get("toy")
            ref = mode_centers(toy)[0] if toy else None
            pts = self.algorithm.generate(self._scatter_inputs(), nets).float() if out.shape[-1] == 2 else out
            return save_scatter(pts, path, reference=ref)
        images = to_uint8(out, self.value_range)
        scale = max(1, 64 // images.shape[-1])
        return save_grid(images, path, nrow=int(math.ceil(math.sqrt(len(images)))), scale=scale)

    def _scatter_inputs(self) -> dict[str, torch.Tensor]:
        if not hasattr(self, "_scatter"):
            self._scatter = self.algorithm.sample_inputs(2000, torch.Generator().manual_seed(self.cfg.train.seed + 2),
                                                         self.device)
        return self._scatter

    def write_log(self, t_last: float, steps_last: int) -> dict[str, Any]:
        """Append a metrics line (rank 0) of the losses averaged over steps since the last line and over ranks."""
        now = time.time()
        rec: dict[str, Any] = {"kind": "train", "step": self.step, "time": round(now, 3)}
        n = max(self.log_count, 1)
        for k, v in self.dist.mean_values(self.log_sums).items():
            rec[k] = float(torch.as_tensor(v).item()) / n
        dt = max(now - t_last, 1e-9)
        rec["steps_per_s"] = round((self.step - steps_last) / dt, 4)
        last = phase_at(self.cfg.train.phases, max(self.step - 1, 0))   # the phase of the last step computed
        batch = last.batch_size if last is not None and last.batch_size else self.cfg.train.batch_size
        rec["samples_per_s"] = round(rec["steps_per_s"] * batch, 2)   # global batch
        if last is not None:
            rec["phase"], rec["alpha"] = last.index, last.alpha
            rec["resolution"] = last.image_size or self.built.info.sample_shape[-1]   # the phase's (ProGAN reports)
        for group, optim_cfg in self.cfg.optim.items():   # the lr of each group's last update (schedules visible)
            if group in self.updates and self.updates[group]:
                factor = lr_factor(optim_cfg, self.updates[group] - 1, max(self.step - 1, 0), self.lr_horizon,
                                   self.lr_anchors.get(group))
                rec[f"lr_{group}"] = optim_cfg.lr * factor
        if self.cfg.train.nonfinite == "skip":   # the run's total so far: 0 says the guard had nothing to do
            rec["nonfinite_skipped"] = self.nonfinite_skipped
        if self.is_main:
            append_jsonl(self.run_dir / "metrics.jsonl", rec)
        self.log_sums, self.log_count = {}, 0
        return rec

    # ------------------------------------------------------------------------------------ the loop
    def train_step(self) -> None:
        """One training step and its per-step bookkeeping: exactly what ``fit`` runs each iteration before its
        cadence work (logs, grids, evaluation, checkpoints). ``bench/speed.py`` times this."""
        self.enter_phase()
        regularization = getattr(self.algorithm, "regularization", None)   # duck-typed algorithms in tests have none
        if regularization is not None:
            regularization.step, regularization.logs = self.step, {}
        logs = self.algorithm.train_step(_Context(self))
        if regularization is not None and regularization.logs:   # this step's parameter penalties (ortho_G ...)
            logs = {**logs, **regularization.logs}
        if self._pending:   # its gradients would leak into the next step's update of that group
            group = next(iter(self._pending))
            self._pending.clear()
            raise RuntimeError(f"algorithm '{self.algorithm.name}' called ctx.backward({group!r}, ...) without a "
                               f"ctx.optimizer_step({group!r}) before the end of its step")
        self.step += 1
        if self.rank_norm_layers:
            self.dist.average_running_stats(self.rank_norm_layers)
        if self.ema is not None:
            self.ema.update({k: self.algorithm.nets[k] for k in self.ema.shadow}, self.step)
        for k, v in logs.items():
            self.log_sums[k] = self.log_sums.get(k, 0) + (v.detach().double() if torch.is_tensor(v) else v)
        self.log_count += 1

    @property
    def phase(self) -> Phase | None:
        """The train.phases phase of the step being computed (None without phases)."""
        return phase_at(self.cfg.train.phases, self.step)

    def enter_phase(self, step: int | None = None) -> None:
        """Tell the algorithm the phase of ``step`` (default: the step about to be computed) when it differs from the
        last one it was told. Grids pass the last computed step's, so a grid shows the phase that trained it."""
        phase = self.phase if step is None else phase_at(self.cfg.train.phases, step)
        if phase is None:      # no train.phases: nothing to tell (Algorithm.phase stays None)
            return
        key = (phase.index, phase.alpha)
        if getattr(self, "_entered_phase", -1) != key:
            self.algorithm.enter_phase(phase)
            self._entered_phase = key

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop = signal.Signals(signum).name

    def fit(self, on_step: Callable[["Trainer"], None] | None = None) -> dict[str, Any]:
        tc = self.cfg.train
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        from .. import interrupts
        if interrupts.requested and self._stop is None:   # asked for during set-up, its KeyboardInterrupt lost
            self._stop = interrupts.requested
        interrupts.clear()
        progress = Progress(self.progress, self.cfg.name, tc.steps, self.step, tc.time_limit_s,
                            limit_clock=time.process_time if tc.time_limit_clock == "cpu" else time.time)
        last: dict[str, Any] = {}
        t_last = progress.t_start
        steps_last = steps_at_start = self.step
        self.stopped_by_time = False
        try:
            if self.step == 0:
                if not self.warm_started:   # a warm start's weights already hold what setup() would build
                    facts = self.algorithm.setup(self.built.dataset, self.device)
                    if facts and self.is_main:
                        append_jsonl(self.run_dir / "metrics.jsonl", {"kind": "setup", "step": 0, **facts})
                if self.dist.enabled:
                    self.dist.broadcast_modules(self.algorithm.nets.values())
                    for t in self.algorithm.state_tensors().values():   # setup()'s choices: rank 0's everywhere
                        self.dist.broadcast_(t)
                    if self.dist.rank > 0:   # rank 0 keeps the single-process noise stream; the others their own
                        torch.manual_seed(distributed.rank_seed(tc.seed, self.dist.rank))
                if self.ema is not None and not self.ema_loaded:   # the average starts from the starting networks
                    self.ema.reset({k: self.algorithm.nets[k] for k in self.ema.shadow})
                if self.is_main:
                    self.write_samples()
            progress.start_loop(self.step)
            t_last = time.time()
            while self.step < tc.steps:
                self.train_step()
                progress.update(self.step)
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    last = self.write_log(t_last, steps_last)
                    t_last, steps_last = time.time(), self.step
                    progress.logged(self.step, last)
                if self.is_main and (self.step % tc.sample_every == 0 or self.step == tc.steps):
                    self.write_samples()
                if self.evaluator is not None and tc.eval_every and (self.step % tc.eval_every == 0 or self.step == tc.steps):
                    rec = {"kind": "eval", "step": self.step, "time": round(time.time(), 3), **self.evaluator(self)}
                    append_jsonl(self.run_dir / "metrics.jsonl", rec)
                if on_step is not None:
                    on_step(self)
                time_up = bool(tc.time_limit_s and progress.limit_used() >= tc.time_limit_s and self.step < tc.steps)
                stop = self._stop
                if self.dist.enabled:   # every rank stops at the same step, or none does
                    signum, up = self.dist.agree(signal.Signals[stop].value if stop else 0, float(time_up))
                    stop = stop or (signal.Signals(int(signum)).name if signum else None)
                    time_up = bool(up)
                if stop is not None:
                    ckpt = self.save()
                    if self.is_main:
                        write_report(self.run_dir)
                    self.dist.barrier()
                    raise TrainingInterrupted(self.step, ckpt, stop)
                if time_up:
                    self.stopped_by_time = True
                    progress.time_up(self.step)
                    if self.log_count:
                        last = self.write_log(t_last, steps_last)
                        progress.logged(self.step, last)
                    if self.is_main:
                        self.write_samples()
                    break
                if self.step % tc.checkpoint_every == 0 and self.step < tc.steps:
                    self.save()
                    if self.is_main:
                        write_report(self.run_dir)
            self.save()
            if self.is_main:
                write_report(self.run_dir)
                self.warn_unused_streams(self.step - steps_at_start)
            self.dist.barrier()    # all ranks leave together, after rank 0 has written everything
        finally:
            progress.close()
            if self.stream_loader is not None:   # its worker processes; a later fit restarts it where it stood
                self.stream_loader.reset()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        return last


# ---------------------------------------------------------------------------------------- helpers
def stream_seed(seed: int, name: str) -> int:
    """The sampler seed of data stream ``name``: a hash of the run seed and the name (the same on every machine and
    Python, unlike ``hash``), so streams draw independent orders and adding one never changes another's."""
    import hashlib
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1     # < 2**63: what torch.Generator.manual_seed takes


def fixed_batch(ds: Dataset, n: int, seed: int, value_range: tuple[float, float] | None,
                device: torch.device) -> Batch:
    """``min(n, len(ds))`` rows of ``ds`` chosen by a permutation of their own generator (``seed``), as a Batch in the
    model's range on ``device``: the same rows for a run and its resumes, whatever the training streams did."""
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:min(n, len(ds))]
    b = make_batch(ds.x, ds.y, ds.fields, idx, value_range)
    return Batch(x=b.x.to(device), y=None if b.y is None else b.y.to(device),
                 fields={k: v.to(device) for k, v in b.fields.items()}, main=b.main)


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every entry of every tensor is finite. The per-tensor norms (one fused kernel) are finite whenever
    the entries are, so they decide at a fraction of an isfinite pass per tensor (measured: 0.08 vs 0.46 ms for
    gan-toy's D, 1% of its step); only a non-finite norm, which an overflow of huge finite entries also gives,
    is checked entry by entry."""
    if not tensors:
        return True
    if bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all()):
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def first_mismatch(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], prefix: str = "") -> str | None:
    """The first tensor (in the networks' order) that keeps ``given`` from loading into ``expected``, described
    in words, or None when every name and shape fits."""
    return tensor_mismatch(expected, given, prefix)


def split_algorithm_state(algorithm: Algorithm,
                          weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the network tensors, the algorithm's state) of what ``read_checkpoint`` returned: its ``algorithm.*``
    entries, and the state older checkpoints kept among the weights (``Algorithm.legacy_state_keys``: e.g.
    ``nets.D.historical_average.*``, TripleGAN's ``nets.labelled.*``), renamed to what the algorithm keeps now."""
    legacy = algorithm.legacy_state_keys()
    nets: dict[str, torch.Tensor] = {}
    state = {k[len("algorithm."):]: v for k, v in weights.items() if k.startswith("algorithm.")}
    for key, value in weights.items():
        if key.startswith("algorithm."):
            continue
        old = next((pre for pre in legacy if key.startswith(pre)), None)
        if old is None:
            nets[key] = value
        elif legacy[old] is not None:
            state.setdefault(legacy[old] + key[len(old):], value)
    return nets, state


def load_weights(algorithm: Algorithm, weights: dict[str, torch.Tensor], ema: EMA | None = None,
                 why: str = "was config.yaml edited after training?") -> None:
    """Load a checkpoint's ``nets.*`` (and ``ema.*``, or the raw weights when it has none) into the networks, and its
    ``algorithm.*`` (or legacy) state into the algorithm. A checkpoint that does not fit raises one line naming the
    first mismatching tensor, and ``why``; every part is checked before any is loaded."""
    weights, algo_state = split_algorithm_state(algorithm, weights)
    nets = {k[len("nets."):]: v for k, v in weights.items() if k.startswith("nets.")}
    parts: list[tuple[nn.Module, dict[str, torch.Tensor], str]] = [(algorithm.nets, nets, "nets.")]
    if ema is not None:
        for key, net in ema.shadow.items():
            pre = f"ema.{key}."
            part = {k[len(pre):]: v for k, v in weights.items() if k.startswith(pre)}
            parts.append((net, part if part else {k[len(key) + 1:]: v for k, v in nets.items()
                                                   if k.startswith(key + ".")}, pre))
    for module, part, pre in parts:   # every part is checked before any is loaded: a refusal changes nothing
        bad = first_mismatch(module.state_dict(), part, pre)
        if bad:
            raise CheckpointError(f"checkpoint weights do not fit the configured networks: {bad}; {why}")
    bad = algorithm.state_mismatch(algo_state)
    if bad:
        raise CheckpointError(f"checkpoint state does not fit the configured algorithm: {bad}; {why}")
    for module, part, _ in parts:
        module.load_state_dict(part, strict=True)
    algorithm.load_state_tensors(algo_state)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop lines logged after the checkpoint (and any line a crash cut short)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", 0) <= step:
            keep.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)
