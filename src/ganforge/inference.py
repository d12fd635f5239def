"""Using a trained run: ``load(run_dir, step=...)`` gives a ``Model`` that samples; checkpoint selection.

Kept apart from ``api.py`` (which trains) so that evaluation code can load a run without importing the training
API, and the training API can import evaluation without an import cycle.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from .algorithms import Algorithm, DataInfo
from .build import build_algorithm
from .config import Config
from .data import to_uint8
from .errors import CheckpointError, ConfigError
from .train.checkpoint import list_checkpoints, read_checkpoint, read_state
from .train.ema import EMA
from .train.phases import phase_at
from .train.rundir import read_run, require_checkpoint
from .train.trainer import load_weights, resolve_device

# A checkpoint: a step number, "latest", or a checkpoint directory (absolute, relative, or a name in the run's
# checkpoints/ such as "step-00001000").
CheckpointSpec = Union[int, str, Path, None]


class Model:
    """A trained generator loaded from a run directory (EMA weights when the run kept them)."""

    def __init__(self, run_dir: Path, config: Config, info: DataInfo, algorithm: Algorithm,
                 nets: dict[str, torch.nn.Module], step: int, device: torch.device, checkpoint: Path | None = None):
        self.run_dir, self.config, self.info = run_dir, config, info
        self.algorithm, self.nets, self.step, self.device = algorithm, nets, step, device
        self.checkpoint = checkpoint

    @property
    def value_range(self) -> tuple[float, float] | None:
        return self.algorithm.value_range if self.info.kind == "image" else None

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch_size: int = 500, **controls: Any) -> torch.Tensor:
        """``n`` samples as the model outputs them (images in its value range, NCHW), on the CPU. Besides the
        family's controls: ``truncation=PSI`` (Gaussian z resampled into [-PSI, PSI] std; in W for StyleGAN, with
        ``truncation_cutoff``, ``mix=K``, ``mix_cutoff``, ``noise_seed``: ``algorithms/latent_walk.py``) and
        ``interpolate=(A, B)`` (a walk from seed A's z to seed B's, a row of n frames, or of ``per_row`` with
        ``labels``)."""
        return self.sample_with_inputs(n, seed, batch_size, **controls)[0]

    @torch.no_grad()
    def sample_with_inputs(self, n: int, seed: int = 0, batch_size: int = 500,
                           **controls: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        gen = torch.Generator().manual_seed(seed)
        controls = {k: v for k, v in controls.items() if v is not None}
        # truncation / interpolate change the noise z any family draws; a W-space generator (StyleGAN) also takes
        # truncation_cutoff, mix, mix_cutoff, noise_seed (algorithms/latent_walk.py)
        from .algorithms.latent_walk import W_SPACE_CONTROLS, apply_latent_controls, fixed_noise
        latent = {k: controls.pop(k) for k in ("truncation", "interpolate", *W_SPACE_CONTROLS) if k in controls}
        inputs = self.algorithm.sample_inputs(n, gen, self.device, **controls)
        net = self.nets.get(self.algorithm.sampling_network)
        if latent:
            from .algorithms.controls import per_row
            frames = per_row(n, controls) if controls.get("labels") or controls.get("per_row") else n
            inputs = apply_latent_controls(self.algorithm, inputs, n, gen, frames=frames, net=net, **latent)
        outs, labels = [], self.algorithm.sample_labels(inputs)
        with fixed_noise(net, latent.get("noise_seed")):
            for i in range(0, n, batch_size):
                part = {k: v[i:i + batch_size] for k, v in inputs.items()}
                outs.append(self.algorithm.generate(part, self.nets).float().cpu())
        return torch.cat(outs), None if labels is None else labels.cpu()

    def input_shape(self, **controls: Any) -> tuple[int, ...]:
        """C x H x W of the images ``translate`` takes under ``controls`` (a translation model's input)."""
        self._check_translates(controls)
        return tuple(self.algorithm.translation_input_shape(**controls))

    def input_size_multiple(self) -> int | None:
        """None: ``translate`` takes ``input_shape()`` images only. k: any size whose sides are multiples of k (a fully
        convolutional translator: super-resolution)."""
        return self.algorithm.translation_size_multiple()

    def _check_translates(self, controls: dict[str, Any]) -> None:
        from .algorithms.base import Algorithm
        from .algorithms.controls import unknown_controls
        if type(self.algorithm).translate is Algorithm.translate:
            self.algorithm.translate(torch.zeros(0))   # raises the family's one-line refusal
        unknown_controls(controls, self.algorithm.translate_controls, f"'{self.algorithm.name}'")

    @torch.no_grad()
    def translate(self, images: torch.Tensor, seed: int = 0, batch_size: int = 64, **controls: Any) -> torch.Tensor:
        """uint8 N x C x H x W images at ``input_shape(**controls)`` -> the model's uint8 outputs, same order, on the
        CPU. ``seed`` fixes whatever randomness the family keeps at test time (pix2pix's dropout)."""
        from .data import to_model_range
        controls = {k: v for k, v in controls.items() if v is not None}
        self._check_translates(controls)
        shape = tuple(self.algorithm.translation_input_shape(**controls))
        multiple = self.algorithm.translation_size_multiple()   # None: the input shape only; k: any sides k | H, W
        if multiple is None:
            fits = images.ndim == 4 and tuple(images.shape[1:]) == shape
        else:
            fits = images.ndim == 4 and images.shape[1] == shape[0] and not (images.shape[2] % multiple or
                                                                            images.shape[3] % multiple)
        if images.dtype != torch.uint8 or not fits:
            sides = " x ".join(map(str, shape[1:])) if multiple is None else f"H x W (multiples of {multiple})"
            raise ConfigError(f"translate takes uint8 N x {shape[0]} x {sides} images, got {images.dtype} "
                              f"{list(images.shape)}")
        outs = []
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for i in range(0, len(images), batch_size):
                x = to_model_range(images[i:i + batch_size].to(self.device), self.value_range)
                y = self.algorithm.translate(x, self.nets, **controls)
                outs.append(to_uint8(y.float(), self.value_range).cpu())
        return torch.cat(outs)

    def encoder_input_shape(self) -> tuple[int, ...]:
        """C x H x W of the images ``encode`` takes; a family without an encoder refuses in one line."""
        from .algorithms.base import Algorithm
        if type(self.algorithm).encode is Algorithm.encode:
            self.algorithm.encode(torch.zeros(0))   # raises the family's one-line refusal
        return tuple(self.algorithm.translation_input_shape())

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """uint8 N x C x H x W images at ``input_shape()`` -> their codes E(x), float32 N x latent_dim on the CPU (a
        stochastic encoder's posterior mean). Families without an encoder refuse in one line (``Algorithm.encode``)."""
        from .data import to_model_range
        shape = self.encoder_input_shape()
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape:
            raise ConfigError(f"encode takes uint8 N x {' x '.join(map(str, shape))} images, got {images.dtype} "
                              f"{list(images.shape)}")
        codes = [self.algorithm.encode(to_model_range(images[i:i + batch_size].to(self.device), self.value_range),
                                       self.nets).float().cpu()
                 for i in range(0, len(images), batch_size)]
        return torch.cat(codes) if codes else torch.zeros(0)

    def images(self, n: int, seed: int = 0, **controls: Any) -> np.ndarray:
        """uint8 N x H x W x C images (the layout FID tools read)."""
        if self.value_range is None:
            raise ConfigError("this model generates vectors, not images; use sample()")
        return to_uint8(self.sample(n, seed, **controls), self.value_range).permute(0, 2, 3, 1).numpy()


def _step_of(ckpt: Path) -> int | None:
    """The step in a checkpoint directory's name (``step-00001000`` -> 1000), None for another name."""
    head, _, digits = ckpt.name.rpartition("-")
    return int(digits) if head == "step" and digits.isdigit() else None


def _steps_text(found: list[Path]) -> str:
    steps = [str(s) for s in map(_step_of, found) if s is not None]
    if len(steps) > 12:    # one line even for a run that kept every checkpoint
        return f"{', '.join(steps[:3])}, ..., {', '.join(steps[-6:])} ({len(steps)} in all)"
    return ", ".join(steps)


def select_checkpoint(run_dir: str | Path, which: CheckpointSpec = None) -> Path:
    """The checkpoint directory ``which`` names in ``run_dir``: None or "latest" the newest, a step number, or a
    checkpoint directory. A step the run did not keep raises one line listing the steps it has."""
    run_dir = Path(run_dir)
    if which is None or (isinstance(which, str) and which.strip().lower() == "latest"):
        return require_checkpoint(run_dir)
    if isinstance(which, bool):
        raise ConfigError(f"a checkpoint is a step number or a checkpoint directory, got {which!r}")
    if isinstance(which, str) and which.strip().isdigit():
        which = int(which.strip())
    found = list_checkpoints(run_dir)
    if isinstance(which, int):
        ckpt = run_dir / "checkpoints" / f"step-{which:08d}"
        if which >= 0 and (ckpt / "state.json").is_file():
            return ckpt
        have = (f"its checkpoints are at steps {_steps_text(found)}" if found else "it has no checkpoint yet")
        raise CheckpointError(f"{run_dir} has no checkpoint at step {which}; {have} (train.keep_checkpoints sets how "
                              "many a run keeps)")
    path = Path(which).expanduser()
    for candidate in (path, run_dir / "checkpoints" / path, *([path.parent] if path.is_file() else [])):
        if (candidate / "state.json").is_file():
            return candidate
    hint = f"steps {_steps_text(found)}" if found else "no checkpoint yet"
    raise CheckpointError(f"{path} is not a checkpoint directory (no state.json); give a step number or a directory "
                          f"such as {run_dir / 'checkpoints' / 'step-00001000'} ({run_dir} has {hint})")


def checkpoint_facts(run_dir: str | Path, which: CheckpointSpec = None) -> dict[str, Any]:
    """What ``ganforge info --checkpoint`` shows of a chosen checkpoint: its path and step (nothing for None)."""
    if which is None:
        return {}
    ckpt = select_checkpoint(run_dir, which)
    return {"checkpoint": str(ckpt), "steps_done": int(read_state(ckpt)["step"])}


def parse_init_from(spec: str | Path) -> tuple[Path, int | None]:
    """``RUN[:STEP]`` -> (run directory, step or None for the latest). A checkpoint directory is accepted as RUN
    (``runs/a/checkpoints/step-00001000``): the run is the directory two levels up."""
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    run, step = (Path(head), int(tail)) if sep and head and tail.isdigit() else (Path(text), None)
    run = run.expanduser()
    named = _step_of(run)
    if step is None and named is not None and run.parent.name == "checkpoints" and (run / "state.json").is_file():
        return run.parent.parent, named
    return run, step


def load(run_dir: str | Path, device: str = "cpu", use_ema: bool = True, step: CheckpointSpec = None) -> Model:
    """Load a checkpoint of a run for sampling: the newest, or ``step`` (a step number, or a checkpoint path)."""
    run_dir = Path(run_dir)
    cfg, info, _ = read_run(run_dir)
    ckpt = select_checkpoint(run_dir, step)
    weights, _, state = read_checkpoint(ckpt, with_training=False)
    bad = next((k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:   # ganforge never writes one; a checkpoint from elsewhere (or before the NaN guard) might
        raise CheckpointError(f"{ckpt} holds non-finite (NaN / Inf) weights ({bad}), which cannot make images; use "
                              "an earlier checkpoint with --checkpoint STEP (ganforge info lists them)")
    algo = build_algorithm(cfg, info)
    ema = None
    has_ema = any(k.startswith("ema.") for k in weights)
    if has_ema:
        ema = EMA({k: algo.nets[k] for k in algo.ema_networks}, decay=0.999)
    load_weights(algo, weights, ema)
    algo.enter_phase(phase_at(cfg.train.phases, max(int(state["step"]) - 1, 0)))   # the phase it last trained in
    dev = resolve_device(device)
    algo.to(dev).eval()
    nets = dict(algo.nets.items())
    if ema is not None and use_ema:
        nets.update({k: m.to(dev).eval() for k, m in ema.shadow.items()})
    return Model(run_dir, cfg, info, algo, nets, int(state["step"]), dev, ckpt)


__all__ = ["CheckpointSpec", "Model", "checkpoint_facts", "load", "parse_init_from", "select_checkpoint"]
