"""The one training loop. It knows nothing of any GAN family: the algorithm says what a step is.

Per step: ``algorithm.train_step(ctx)`` (which draws real batches and calls ``ctx.update(group, loss)`` for each
optimizer update), then EMA, then every K steps: metrics line, fixed-noise sample grid, evaluation,
checkpoint. SIGINT/SIGTERM finish the current step, write a checkpoint and stop; ``--resume`` continues
bit-exactly (weights, optimizer moments, lr schedule position, RNG streams, data order are all restored).

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
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from tqdm import tqdm

from ..algorithms import Algorithm, Batch
from ..build import Built
from ..config import Config, OptimConfig
from ..data import to_model_range, to_uint8
from ..data.sampler import BatchSampler
from ..errors import ConfigError
from ..report import save_grid, save_scatter, write_report
from . import distributed
from .checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
from .ema import EMA


class TrainingInterrupted(Exception):
    """Raised after a signal stopped training and a checkpoint was written."""

    def __init__(self, step: int, checkpoint: Path, signame: str):
        super().__init__(f"{signame} at step {step}")
        self.step, self.checkpoint, self.signame = step, checkpoint, signame


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


def make_optimizer(cfg: OptimConfig, params: list[nn.Parameter], impl: str = "for-loop") -> torch.optim.Optimizer:
    flags = optimizer_impl_kwargs(cfg.name, impl, params[0].device.type if params else "cpu")
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
    except (AttributeError, RuntimeError):   # pragma: no cover - torch without the query
        return True


def lr_factor(cfg: OptimConfig, updates: int, step: int, total_steps: int) -> float:
    """Schedule factor for the next update (``updates`` already done, at training step ``step``)."""
    if cfg.schedule == "inverse_time":       # Keras legacy decay: lr / (1 + decay * iterations)
        return 1.0 / (1.0 + cfg.decay * updates)
    if cfg.schedule == "linear" and cfg.decay_steps > 0:
        remaining = total_steps - step
        return min(1.0, max(remaining, 0) / cfg.decay_steps)
    return 1.0


class _Context:
    """The StepContext the trainer gives the algorithm for one step."""

    def __init__(self, trainer: "Trainer"):
        self.t = trainer
        self.step = trainer.step

    def real_batch(self) -> Batch:
        return self.t.next_batch()

    def autocast(self) -> contextlib.AbstractContextManager:
        return self.t.autocast()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.t.apply_update(group, loss)


class Trainer:
    def __init__(self, built: Built, run_dir: Path, progress: bool = True,
                 evaluator: Callable[["Trainer"], dict[str, float]] | None = None):
        cfg = built.config
        self.cfg: Config = cfg
        self.built = built
        self.run_dir = Path(run_dir)
        tc = cfg.train
        if tc.threads:
            torch.set_num_threads(tc.threads)
        # Under torchrun: this process's rank and its device (cuda:LOCAL_RANK or cpu); else a single process.
        self.dist = distributed.setup(tc.device)
        self.is_main = self.dist.is_main
        self.progress = progress and self.is_main
        self.evaluator = evaluator if self.is_main else None
        world = self.dist.world_size
        self.dist.check_batch(tc.batch_size)
        self.device = self.dist.device if self.dist.enabled else resolve_device(tc.device)
        self.algorithm: Algorithm = built.algorithm.to(self.device)
        self.trained_keys = [k for keys in self.algorithm.optimizer_groups.values() for k in keys]
        if tc.sync_bn and self.dist.enabled:
            for key in self.trained_keys:
                self.algorithm.nets[key] = distributed.convert_sync_batchnorm(self.algorithm.nets[key], self.device)
        if tc.channels_last:
            self.algorithm.to(memory_format=torch.channels_last)   # 4-D weights only; the rest is unchanged
        self.algorithm.train()
        ds = built.dataset
        # The whole dataset lives on the device as one tensor: a batch is one index operation.
        self.data_x = ds.x.to(self.device)
        self.data_y = None if ds.y is None else ds.y.to(self.device)
        self.value_range = self.algorithm.value_range if ds.kind == "image" else None
        # Each rank draws the same global batch stream and keeps its slice: together they see the single-process batch.
        self.sampler = BatchSampler(len(ds), tc.batch_size // world, cfg.data.sampling, seed=tc.seed,
                                    rank=self.dist.rank, world_size=world)
        self.groups = {g: [p for key in keys for p in self.algorithm.nets[key].parameters()]
                       for g, keys in self.algorithm.optimizer_groups.items()}
        self.optimizers = {g: make_optimizer(cfg.optim[g], ps, tc.optimizer_impl) for g, ps in self.groups.items()}
        self.updates = {g: 0 for g in self.groups}
        self._layout_checked: set[str] = set()
        self.ema = (EMA({k: self.algorithm.nets[k] for k in self.algorithm.ema_networks}, tc.ema.decay, tc.ema.start)
                    if tc.ema.enabled else None)
        # BatchNorm running statistics that each rank updates from its own slice: averaged after every step.
        self.rank_norm_layers = distributed.unsynced_norm_layers(self.algorithm.nets.values()) if world > 1 else []
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tc.precision]
        if tc.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA GPU; on CPU use train.precision=bf16")
        if tc.precision == "bf16" and not native_bf16(self.device) and self.is_main:
            print("ganforge: warning: train.precision=bf16 on a CPU without bf16 instructions (AVX512-BF16 / AMX): "
                  "torch emulates it, far slower than fp32 (bench/speed.py measures it); use fp32 here",
                  file=sys.stderr)
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
        # Same noise all run long, from its own generator: progress grids are comparable, and drawing them
        # never disturbs the training RNG streams.
        self.fixed_inputs = self.algorithm.sample_inputs(tc.grid_size, torch.Generator().manual_seed(tc.seed + 1),
                                                         self.device)

    # ------------------------------------------------------------------------------------ step pieces
    def next_batch(self) -> Batch:
        idx = self.sampler.next().to(self.device)
        x = self.data_x[idx]
        x = to_model_range(x, self.value_range) if self.value_range is not None else x.float()
        if self.cfg.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return Batch(x=x, y=None if self.data_y is None else self.data_y[idx])

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def apply_update(self, group: str, loss: torch.Tensor) -> None:
        if group not in self.optimizers:
            raise KeyError(f"algorithm updated unknown optimizer group {group!r}")
        opt, ocfg = self.optimizers[group], self.cfg.optim[group]
        factor = lr_factor(ocfg, self.updates[group], self.step, self.cfg.train.steps)
        for pg in opt.param_groups:
            pg["lr"] = ocfg.lr * factor
        opt.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.dist.enabled:
            if group not in self._layout_checked:
                self.dist.check_same_layout(self.groups[group], f"optimizer group {group}")
                self._layout_checked.add(group)
            self.dist.average_gradients(self.groups[group])
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        self.updates[group] += 1

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
            "log_sums": {k: torch.as_tensor(v).detach().cpu().double() for k, v in self.log_sums.items()},
        }

    def json_state(self) -> dict[str, Any]:
        return {"step": self.step, "updates": self.updates, "log_count": self.log_count,
                "algorithm": self.algorithm.extra_state(), "config_name": self.cfg.name}

    def save(self) -> Path:
        """Write a checkpoint (rank 0; under torchrun every rank must call this at the same step)."""
        path = self.run_dir / "checkpoints" / f"step-{self.step:08d}"
        if not self.dist.enabled:
            return save_checkpoint(self.run_dir, self.step, self.weights(), self.training_state(), self.json_state(),
                                   keep=self.cfg.train.keep_checkpoints)
        # Partial log sums become their mean over ranks, so a resumed run logs what an uninterrupted one would.
        self.log_sums = self.dist.mean_values(self.log_sums)
        weights = self.weights()
        hashes = self.dist.fingerprints(weights)
        training = self.training_state()
        state = {**self.json_state(), "distributed": {"world_size": self.dist.world_size, "weights_sha256": hashes}}
        if self.is_main:
            path = save_checkpoint(self.run_dir, self.step, weights, training, state,
                                   keep=self.cfg.train.keep_checkpoints)
        if len(set(hashes)) > 1:      # never seen; a bug if it happens: say so and continue from rank 0's weights
            if self.is_main:
                print(f"ganforge: warning: the {self.dist.world_size} ranks' weights differ at step {self.step} "
                      f"(sha256 {', '.join(h[:12] for h in hashes)}); continuing from rank 0's", file=sys.stderr)
            self.dist.broadcast_modules(list(self.algorithm.nets.values()) +
                                        (list(self.ema.shadow.values()) if self.ema is not None else []))
        return path

    def restore(self, ckpt: Path | None = None) -> Path:
        ckpt = ckpt or latest_checkpoint(self.run_dir)
        if ckpt is None:
            from ..errors import CheckpointError
            raise CheckpointError(f"{self.run_dir} has no checkpoint to resume from; start it again with --force")
        weights, training, state = read_checkpoint(ckpt)
        load_weights(self.algorithm, weights, self.ema)
        for g, o in self.optimizers.items():
            o.load_state_dict(training["optimizers"][g])
        if self.scaler is not None and training.get("scaler"):
            self.scaler.load_state_dict(training["scaler"])
        self._restore_rng(training["rng"], int(state.get("distributed", {}).get("world_size", 1)), int(state["step"]))
        # The sampler's state is the global batch stream, the same on every rank and for any number of ranks.
        self.sampler.load_state_dict(training["sampler"])
        self.log_sums = {k: v.to(self.device) for k, v in training["log_sums"].items()}
        self.step = int(state["step"])
        self.updates = {g: int(state["updates"].get(g, 0)) for g in self.optimizers}
        self.log_count = int(state.get("log_count", 0))
        self.algorithm.load_extra_state(state.get("algorithm", {}))
        if self.is_main:
            truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        self.dist.barrier()    # no rank starts before rank 0 has trimmed the metrics
        return ckpt

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
            print(f"ganforge: note: resuming a {saved_world}-process run with {world} process(es): the data order is "
                  "the same, the noise of ranks > 0 is new, so it continues but not bit-identically", file=sys.stderr)

    # ------------------------------------------------------------------------------------ outputs
    def sampling_nets(self) -> dict[str, nn.Module]:
        nets = dict(self.algorithm.nets.items())
        if self.ema is not None:
            nets.update(self.ema.shadow)
        return nets

    @torch.no_grad()
    def write_samples(self) -> Path:
        nets = self.sampling_nets()
        modules = list(nets.values())
        saved = [(m, m.training) for m in modules]
        for m in modules:
            m.eval()
        try:
            out = self.algorithm.generate(self.fixed_inputs, nets).float()
        finally:
            for m, flag in saved:
                m.train(flag)
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
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
        rec["samples_per_s"] = round(rec["steps_per_s"] * self.cfg.train.batch_size, 2)   # global batch
        if self.is_main:
            append_jsonl(self.run_dir / "metrics.jsonl", rec)
        self.log_sums, self.log_count = {}, 0
        return rec

    # ------------------------------------------------------------------------------------ the loop
    def train_step(self) -> None:
        """One training step and its per-step bookkeeping: exactly what ``fit`` runs each iteration before its
        cadence work (logs, grids, evaluation, checkpoints). ``bench/speed.py`` times this."""
        logs = self.algorithm.train_step(_Context(self))
        self.step += 1
        if self.rank_norm_layers:
            self.dist.average_running_stats(self.rank_norm_layers)
        if self.ema is not None:
            self.ema.update({k: self.algorithm.nets[k] for k in self.ema.shadow}, self.step)
        for k, v in logs.items():
            self.log_sums[k] = self.log_sums.get(k, 0) + (v.detach().double() if torch.is_tensor(v) else v)
        self.log_count += 1

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop = signal.Signals(signum).name

    def fit(self, on_step: Callable[["Trainer"], None] | None = None) -> dict[str, Any]:
        tc = self.cfg.train
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, self._on_signal)
        bar = tqdm(total=tc.steps, initial=self.step, unit="step", dynamic_ncols=True, disable=not self.progress,
                   mininterval=1.0, desc=self.cfg.name)
        last: dict[str, Any] = {}
        t_start = t_last = time.time()
        steps_last = self.step
        self.stopped_by_time = False
        try:
            if self.step == 0:
                facts = self.algorithm.setup(self.built.dataset, self.device)
                if facts and self.is_main:
                    append_jsonl(self.run_dir / "metrics.jsonl", {"kind": "setup", "step": 0, **facts})
                if self.dist.enabled:
                    self.dist.broadcast_modules(self.algorithm.nets.values())
                    if self.dist.rank > 0:   # rank 0 keeps the single-process noise stream; the others their own
                        torch.manual_seed(distributed.rank_seed(tc.seed, self.dist.rank))
                if self.ema is not None:     # the average starts from the networks as training starts
                    self.ema.reset({k: self.algorithm.nets[k] for k in self.ema.shadow})
                if self.is_main:
                    self.write_samples()
            while self.step < tc.steps:
                self.train_step()
                bar.update(1)
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    last = self.write_log(t_last, steps_last)
                    t_last, steps_last = time.time(), self.step
                    postfix = {k: f"{v:.3g}" for k, v in last.items() if k.endswith("loss")}
                    if tc.time_limit_s:   # the bar's ETA counts train.steps; a time-limited run ends sooner
                        left = max(0.0, tc.time_limit_s - (time.time() - t_start))
                        postfix["time_left"] = f"{int(left // 60)}:{int(left % 60):02d}"
                    bar.set_postfix(postfix, refresh=False)
                    if self.is_main and not math.isfinite(sum(v for k, v in last.items() if k.endswith("loss"))):
                        bar.write(f"warning: non-finite loss at step {self.step}: {last}")
                if self.is_main and (self.step % tc.sample_every == 0 or self.step == tc.steps):
                    self.write_samples()
                if self.evaluator is not None and tc.eval_every and (self.step % tc.eval_every == 0 or self.step == tc.steps):
                    rec = {"kind": "eval", "step": self.step, "time": round(time.time(), 3), **self.evaluator(self)}
                    append_jsonl(self.run_dir / "metrics.jsonl", rec)
                if on_step is not None:
                    on_step(self)
                time_up = bool(tc.time_limit_s and time.time() - t_start >= tc.time_limit_s and self.step < tc.steps)
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
                    last = self.write_log(t_last, steps_last) if self.log_count else last
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
            self.dist.barrier()    # all ranks leave together, after rank 0 has written everything
        finally:
            bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        return last


# ---------------------------------------------------------------------------------------- helpers
def load_weights(algorithm: Algorithm, weights: dict[str, torch.Tensor], ema: EMA | None = None) -> None:
    from ..errors import CheckpointError
    nets = {k[len("nets."):]: v for k, v in weights.items() if k.startswith("nets.")}
    try:
        algorithm.nets.load_state_dict(nets, strict=True)
        if ema is not None:
            for key, net in ema.shadow.items():
                pre = f"ema.{key}."
                part = {k[len(pre):]: v for k, v in weights.items() if k.startswith(pre)}
                net.load_state_dict(part if part else algorithm.nets[key].state_dict(), strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise CheckpointError(f"checkpoint weights do not fit the configured networks ({first[:200]}); "
                              "was config.yaml edited after training?") from None


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
