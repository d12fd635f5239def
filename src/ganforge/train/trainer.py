"""The one training loop. It knows nothing of any GAN family: the algorithm says what a step is.

Per step: ``algorithm.train_step(ctx)`` (which draws real batches and calls ``ctx.update(group, loss)`` for each
optimizer update), then EMA, then every K steps: metrics line, fixed-noise sample grid, evaluation,
checkpoint. SIGINT/SIGTERM finish the current step, write a checkpoint and stop; ``--resume`` continues
bit-exactly (weights, optimizer moments, lr schedule position, RNG streams, data order are all restored).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
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


def make_optimizer(cfg: OptimConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


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
        self.progress = progress
        self.evaluator = evaluator
        tc = cfg.train
        if tc.threads:
            torch.set_num_threads(tc.threads)
        self.device = resolve_device(tc.device)
        self.algorithm: Algorithm = built.algorithm.to(self.device)
        self.algorithm.train()
        ds = built.dataset
        # The whole dataset lives on the device as one tensor: a batch is one index operation.
        self.data_x = ds.x.to(self.device)
        self.data_y = None if ds.y is None else ds.y.to(self.device)
        self.value_range = self.algorithm.value_range if ds.kind == "image" else None
        self.sampler = BatchSampler(len(ds), tc.batch_size, cfg.data.sampling, seed=tc.seed)
        self.groups = {g: [p for key in keys for p in self.algorithm.nets[key].parameters()]
                       for g, keys in self.algorithm.optimizer_groups.items()}
        self.optimizers = {g: make_optimizer(cfg.optim[g], ps) for g, ps in self.groups.items()}
        self.updates = {g: 0 for g in self.groups}
        self.ema = (EMA({k: self.algorithm.nets[k] for k in self.algorithm.ema_networks}, tc.ema.decay, tc.ema.start)
                    if tc.ema.enabled else None)
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tc.precision]
        if tc.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA GPU; on CPU use train.precision=bf16")
        self.scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
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
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
        else:
            loss.backward()
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
        return save_checkpoint(self.run_dir, self.step, self.weights(), self.training_state(), self.json_state(),
                               keep=self.cfg.train.keep_checkpoints)

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
        torch.set_rng_state(training["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in training["rng"]:
            torch.cuda.set_rng_state(training["rng"]["cuda"], self.device)
        self.sampler.load_state_dict(training["sampler"])
        self.log_sums = {k: v.to(self.device) for k, v in training["log_sums"].items()}
        self.step = int(state["step"])
        self.updates = {g: int(state["updates"].get(g, 0)) for g in self.optimizers}
        self.log_count = int(state.get("log_count", 0))
        self.algorithm.load_extra_state(state.get("algorithm", {}))
        truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        return ckpt

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
        now = time.time()
        rec: dict[str, Any] = {"kind": "train", "step": self.step, "time": round(now, 3)}
        n = max(self.log_count, 1)
        for k, v in self.log_sums.items():
            rec[k] = float(torch.as_tensor(v).item()) / n
        dt = max(now - t_last, 1e-9)
        rec["steps_per_s"] = round((self.step - steps_last) / dt, 4)
        rec["samples_per_s"] = round(rec["steps_per_s"] * self.cfg.train.batch_size, 2)
        append_jsonl(self.run_dir / "metrics.jsonl", rec)
        self.log_sums, self.log_count = {}, 0
        return rec

    # ------------------------------------------------------------------------------------ the loop
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
                if facts:
                    append_jsonl(self.run_dir / "metrics.jsonl", {"kind": "setup", "step": 0, **facts})
                self.write_samples()
            while self.step < tc.steps:
                logs = self.algorithm.train_step(_Context(self))
                self.step += 1
                if self.ema is not None:
                    self.ema.update({k: self.algorithm.nets[k] for k in self.ema.shadow}, self.step)
                for k, v in logs.items():
                    self.log_sums[k] = self.log_sums.get(k, 0) + (v.detach().double() if torch.is_tensor(v) else v)
                self.log_count += 1
                bar.update(1)
                if self.step % tc.log_every == 0 or self.step == tc.steps:
                    last = self.write_log(t_last, steps_last)
                    t_last, steps_last = time.time(), self.step
                    bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k.endswith("loss")}, refresh=False)
                    if not math.isfinite(sum(v for k, v in last.items() if k.endswith("loss"))):
                        bar.write(f"warning: non-finite loss at step {self.step}: {last}")
                if self.step % tc.sample_every == 0 or self.step == tc.steps:
                    self.write_samples()
                if self.evaluator is not None and tc.eval_every and (self.step % tc.eval_every == 0 or self.step == tc.steps):
                    rec = {"kind": "eval", "step": self.step, "time": round(time.time(), 3), **self.evaluator(self)}
                    append_jsonl(self.run_dir / "metrics.jsonl", rec)
                if on_step is not None:
                    on_step(self)
                if self._stop is not None:
                    ckpt = self.save()
                    write_report(self.run_dir)
                    raise TrainingInterrupted(self.step, ckpt, self._stop)
                if tc.time_limit_s and time.time() - t_start >= tc.time_limit_s and self.step < tc.steps:
                    self.stopped_by_time = True
                    last = self.write_log(t_last, steps_last) if self.log_count else last
                    self.write_samples()
                    break
                if self.step % tc.checkpoint_every == 0 and self.step < tc.steps:
                    self.save()
                    write_report(self.run_dir)
            self.save()
            write_report(self.run_dir)
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
