"""Recipes and configuration: YAML in, validated dataclasses out, every error a readable one-liner.

A recipe is a YAML file (``src/ganforge/recipes/NAME.yaml`` or any path) with these sections::

    name / description / citation / source   what it is, the books and papers it follows (one line), and
                                             where each setting comes from in them
    starts_from: the recipe whose finished run this one is meant to start from (``--init-from RUN``), where a
                 source trains in two phases (SRGAN from SRResNet); optional
    data:       source, image_size, channels, sampling
    algorithm:  name (what one training step means) + that algorithm's parameters (latent size, n_critic, ...)
    networks:   one entry per network the algorithm uses, e.g. G: {arch: dcgan-book, ...}, D: {...}
    objective:  name + the loss's hyperparameters
    optim:      one optimizer per group the algorithm declares (G, D, ...)
    train:      steps, batch size, seed, logging / sampling / checkpoint cadence, EMA, device, precision

``--set a.b.c=value`` overrides any key (the value is parsed as YAML). Parameters of algorithms, networks
and objectives are checked against the constructor's signature and type hints, so an unknown key or a
wrong type is reported with its dotted path and the valid choices.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import ConfigError

# ------------------------------------------------------------------------------------------- sections


def _check_geometry(path: str, image_size: int | None, channels: int | None) -> None:
    if image_size is not None and not 4 <= image_size <= 4096:
        raise ConfigError(f"{path}.image_size must be between 4 and 4096, got {image_size}")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"{path}.channels must be 1 or 3, got {channels}")


@dataclass
class StreamConfig:
    """One named data stream besides ``main`` (``data.streams.NAME``): its own source, sampler and batch size.
    Unset keys (None) take the main stream's value: ``sampling`` data.sampling, ``batch_size`` train.batch_size,
    ``image_size`` / ``channels`` data.image_size / data.channels."""

    source: str = ""
    sampling: Literal["shuffle", "replacement"] | None = None
    batch_size: int | None = None
    image_size: int | None = None
    channels: int | None = None

    def check(self, path: str) -> None:
        if not self.source:
            raise ConfigError(f"{path}.source is missing; give the stream a data source, e.g. "
                              f"--set {path}.source=folder:DIR")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"{path}.batch_size must be >= 1, got {self.batch_size}")
        _check_geometry(path, self.image_size, self.channels)


# The stream the trainer draws sample-grid / evaluation inputs from (never trained on): data.streams.held_out, or
# the shorthand data.held_out: SOURCE.
HELD_OUT = "held_out"
_STREAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class DataConfig:
    source: str = "mnist5k"
    image_size: int | None = None     # None: the dataset's own size (28 for MNIST)
    channels: int | None = None       # None: the dataset's own channel count
    sampling: Literal["shuffle", "replacement"] = "shuffle"
    # Named streams besides "main" (data.source): CycleGAN's unpaired a / b, a held-out stream for grids.
    streams: dict[str, StreamConfig] = field(default_factory=dict)
    held_out: str | None = None       # shorthand for data.streams.held_out.source
    # The main stream's data path (data/streaming.py): auto streams a folder whose prepared uint8 data exceeds
    # stream_threshold_mb (None: a quarter of memory_limit_bytes()); workers decode streamed batches (None: min(4,
    # cores - 1); 0: in the training process).
    path: Literal["auto", "memory", "stream"] = "auto"
    stream_threshold_mb: float | None = None
    workers: int | None = None

    def check(self, path: str) -> None:
        _check_geometry(path, self.image_size, self.channels)
        if self.stream_threshold_mb is not None and not self.stream_threshold_mb > 0:
            raise ConfigError(f"{path}.stream_threshold_mb must be > 0 (megabytes of prepared uint8 data above which "
                              f"data.path=auto streams), got {self.stream_threshold_mb}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"{path}.workers must be >= 0 (0 decodes streamed batches in the training process), "
                              f"got {self.workers}")
        for name in self.streams:
            if name == "main":
                raise ConfigError(f"{path}.streams.main: the main stream is {path}.source (with {path}.sampling and "
                                  "train.batch_size); name the other streams otherwise")
            if not _STREAM_NAME.fullmatch(name):
                raise ConfigError(f"{path}.streams.{name}: a stream name is letters, digits and _ (e.g. a, b, "
                                  "held_out)")
        if self.held_out is not None:
            if HELD_OUT in self.streams:
                raise ConfigError(f"{path}.held_out and {path}.streams.held_out are both set; keep one of them")
            if not self.held_out:
                raise ConfigError(f"{path}.held_out must be a data source, e.g. aligned:DIR?split=val")

    def stream_configs(self) -> dict[str, StreamConfig]:
        """Every stream besides main, the held_out shorthand included, with the main stream's defaults filled in
        (batch_size stays None: train.batch_size, which this section does not know)."""
        out = dict(self.streams)
        if self.held_out is not None:
            out[HELD_OUT] = StreamConfig(source=self.held_out)
        return {name: dataclasses.replace(
            s, sampling=s.sampling or self.sampling,
            image_size=s.image_size if s.image_size is not None else self.image_size,
            channels=s.channels if s.channels is not None else self.channels) for name, s in out.items()}


@dataclass
class OptimConfig:
    name: Literal["adam", "rmsprop", "sgd", "adamw"] = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)   # adam / adamw
    alpha: float = 0.99                          # rmsprop smoothing (Keras rho=0.9 -> alpha 0.9)
    eps: float = 1e-8
    momentum: float = 0.0                        # sgd / rmsprop
    weight_decay: float = 0.0
    # Learning-rate schedule, stepped once per update of this optimizer:
    #   constant; inverse_time: lr / (1 + decay * t), Keras' legacy `decay` argument (seeds 000/004);
    #   linear: constant, then linear to 0 over the last `decay_steps` updates (pix2pix / CycleGAN style).
    schedule: Literal["constant", "inverse_time", "linear"] = "constant"
    decay: float = 0.0
    decay_steps: int = 0
    # Per-parameter lr multipliers by name prefix, "<network key>.<parameter name>" as in the checkpoint's nets.*
    # keys, e.g. {"G.mapping": 0.01} (StyleGAN's mapping network); the longest matching prefix wins (trainer.py).
    lr_mult: dict[str, float] = field(default_factory=dict)

    def check(self, path: str) -> None:
        if not self.lr > 0:
            raise ConfigError(f"{path}.lr must be > 0, got {self.lr}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"{path}.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"{path}.alpha must be in (0, 1), got {self.alpha}")
        if self.eps <= 0 or self.decay < 0 or self.momentum < 0 or self.weight_decay < 0 or self.decay_steps < 0:
            raise ConfigError(f"{path}: eps must be > 0 and decay, decay_steps, momentum, weight_decay >= 0")
        for prefix, mult in self.lr_mult.items():
            if not mult > 0 or not prefix or prefix.startswith(".") or prefix.endswith("."):
                raise ConfigError(f"{path}.lr_mult: each entry is a parameter name prefix (e.g. G.mapping) and a "
                                  f"multiplier > 0, got {prefix!r}: {mult}")


@dataclass
class EMAConfig:
    enabled: bool = False
    decay: float = 0.999
    start: int = 0          # steps before EMA starts (the EMA copy tracks the weights exactly until then)

    def check(self, path: str) -> None:
        if not 0 < self.decay < 1:
            raise ConfigError(f"{path}.decay must be in (0, 1), got {self.decay}")
        if self.start < 0:
            raise ConfigError(f"{path}.start must be >= 0, got {self.start}")


# What may change when a run is resumed: cadence and placement, never the model or the optimisation.
RESUMABLE = ("train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every",
             "train.keep_checkpoints", "train.device", "train.threads", "train.eval_every", "train.eval_metrics",
             "train.eval_samples", "train.time_limit_s", "train.time_limit_clock", "train.nonfinite",
             "train.optimizer_impl", "train.channels_last", "train.compile")   # speed knobs: the same computation


def config_difference(trained: dict[str, Any], now: dict[str, Any], ignore: tuple[str, ...] = RESUMABLE
                      ) -> tuple[str, Any, Any] | None:
    """The first dotted key (with its two values) where two resolved configs (``Config.to_dict()``) differ, outside
    the keys a resume may change; None when they agree."""
    def flat(d: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(d, dict):
            return {prefix: d}
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out

    a, b = flat(trained), flat(now)
    for key in sorted(set(a) | set(b)):
        if key in ignore or any(key.startswith(i + ".") for i in ignore):
            continue
        if a.get(key, "(unset)") != b.get(key, "(unset)"):
            return key, a.get(key, "(unset)"), b.get(key, "(unset)")
    return None


@dataclass
class PhaseConfig:
    """One phase of ``train.phases`` (train/phases.py): a stretch of steps the algorithm reads from ``ctx.phase``."""

    name: str = ""
    steps: int | None = None          # its length; None only for the last phase (until train.steps)
    image_size: int | None = None     # the resolution the algorithm trains at in this phase (None: the data's)
    batch_size: int | None = None     # the main stream's global batch in this phase (None: train.batch_size)
    fade_steps: int = 0               # fade-in: alpha rises linearly to 1 over the phase's first fade_steps steps


@dataclass
class TrainConfig:
    steps: int = 1000                 # generator iterations (the books' train_steps)
    batch_size: int = 64
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2         # each save deletes all but the newest N checkpoints; raise it to keep older
                                      # steps for `--checkpoint STEP` and `--init-from RUN:STEP`
    grid_size: int = 64               # samples in each progress grid (a square number reads best)
    eval_every: int = 0               # 0: no evaluation during training
    eval_metrics: list[str] = field(default_factory=list)
    eval_samples: int = 2000
    ema: EMAConfig = field(default_factory=EMAConfig)
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    # auto: bf16 + channels_last where the hardware does bf16 natively and the family is measured to learn as well in
    # it, else fp32 (train/precision.py); what auto chose is written into the run's config.yaml and run.json.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    threads: int = 0                  # CPU threads for torch (0: auto, the idle cores: train/threads.py)
    time_limit_s: float = 0.0         # stop cleanly (final checkpoint) after this much training time; 0: none
    # the clock time_limit_s counts on: wall time, or this process's CPU time (user + system, all its threads) --
    # a CPU budget that holds on a shared machine (bench/zoo.py --budget-minutes uses it at one thread)
    time_limit_clock: Literal["wall", "cpu"] = "wall"
    # Speed and scale (train/trainer.py, train/distributed.py; bench/speed.py). The same computation either way, up
    # to float rounding (with dropout, channels_last draws its masks in memory order: other masks, same distribution).
    optimizer_impl: Literal["auto", "for-loop", "foreach", "fused"] = "auto"   # auto: fused on CUDA, for-loop on CPU
    channels_last: bool = False       # NHWC memory format for conv nets and image batches
    compile: bool = False             # torch.compile each trained network (compiles on the first steps)
    sync_bn: bool = False             # under torchrun: BatchNorm statistics over the global batch
    # A non-finite (NaN / Inf) loss or gradient in an update: stop (at once, no checkpoint of the bad state, exit 3)
    # or skip that optimizer step (weights and optimizer state unchanged; counted as nonfinite_skipped in metrics).
    nonfinite: Literal["stop", "skip"] = "stop"
    # Gradient accumulation: each optimizer update averages this many consecutive micro-batches of the batch
    # (batch_size stays the update's batch and the data stream is unchanged; trainer.py says what it means).
    accumulate: int = 1
    # A schedule of phases over the steps (resolution, fade-in, batch size) that the algorithm reads from ctx.phase:
    # ProGAN's progressive growing. Empty: one phase, the whole run.
    phases: list[PhaseConfig] = field(default_factory=list)

    def check(self, path: str) -> None:
        for key in ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                    "grid_size", "accumulate"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("eval_every", "threads", "seed", "time_limit_s"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{path}.{key} must be >= 0, got {getattr(self, key)}")
        if self.seed >= 2 ** 63:     # torch.manual_seed overflows above a signed 64-bit value (plus steps)
            raise ConfigError(f"{path}.seed must be < 2**63, got {self.seed}")
        if self.accumulate > self.batch_size:
            raise ConfigError(f"{path}.accumulate={self.accumulate} splits a batch of {self.batch_size} into more "
                              "micro-batches than it has samples; lower it or raise train.batch_size")
        from .train.phases import check_phases
        check_phases(self.phases, f"{path}.phases")
        for i, phase in enumerate(self.phases):
            if phase.batch_size is not None and self.accumulate > phase.batch_size:
                raise ConfigError(f"{path}.accumulate={self.accumulate} splits the batch of {phase.batch_size} of "
                                  f"{path}.phases[{i}] into more micro-batches than it has samples; lower it")
        if self.eval_every and self.eval_samples < 2:
            raise ConfigError(f"{path}.eval_samples must be >= 2, got {self.eval_samples}")
        if not (self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise ConfigError(f"{path}.device must be auto, cpu, cuda or cuda:N, got '{self.device}'")


@dataclass
class Component:
    """A named, registered thing (algorithm, objective, network) and its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    name: str
    description: str = ""
    citation: str = ""     # the books and papers, by name, on one line (`ganforge list`, info, reports)
    source: str = ""
    # The recipe whose finished run this one is meant to start from (``--init-from RUN``): a source that trains in
    # two phases (SRGAN's G starts from SRResNet's). `ganforge train` says so when no --init-from is given; the zoo
    # trains that recipe first and starts from its run.
    starts_from: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    algorithm: Component = field(default_factory=lambda: Component("adversarial"))
    networks: dict[str, Component] = field(default_factory=dict)
    objective: Component = field(default_factory=lambda: Component("nonsaturating"))
    optim: dict[str, OptimConfig] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Regularizers for any family (algorithms/regularization.py: r1, r2, dragan with a lazy `every`, orthogonal per
    # network); checked against the algorithm by ganforge.build.
    regularize: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain YAML-able data (what ``config.yaml`` in a run directory holds)."""
        def comp(c: Component, key: str) -> dict[str, Any]:
            return {key: c.name, **_plain(c.params)}

        return {
            "name": self.name,
            "description": self.description,
            "citation": self.citation,
            "source": self.source,
            **({"starts_from": self.starts_from} if self.starts_from else {}),
            "data": _plain(dataclasses.asdict(self.data)),
            "algorithm": comp(self.algorithm, "name"),
            "networks": {k: comp(v, "arch") for k, v in self.networks.items()},
            "objective": comp(self.objective, "name"),
            "optim": {k: _plain(dataclasses.asdict(v)) for k, v in self.optim.items()},
            "train": _plain(dataclasses.asdict(self.train)),
            # only when set: the configs recorded by runs from before the section existed stay the same
            **({"regularize": _plain(self.regularize)} if self.regularize else {}),
        }


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------- recipes
def recipe_dir() -> Path:
    return Path(str(resources.files("ganforge") / "recipes"))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


# ------------------------------------------------------------------------------------------- YAML reading
# Recipes, --set values and a run's config.yaml are read with these limits. A real recipe is a few KB nested four
# levels deep; the limits stop only inputs that would exhaust the machine or the parser before a word of
# validation: a file given by mistake (a dataset, /dev/urandom copied to x.yaml), thousands of nested brackets
# (PyYAML's composer recurses once per level: a RecursionError), and alias bombs ("billion laughs": nine aliases
# of nine aliases ... expand to 10^9 nodes from 1 KB). A recipe never needs aliases, so they are refused outright
# instead of being budgeted.
MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 32


class _YAMLProblem(Exception):
    """Raised inside the loader; ``load_yaml`` turns it into a one-line ConfigError naming the file or flag."""

    def __init__(self, mark: Any, message: str):
        super().__init__(message)
        self.line = mark.line + 1 if mark is not None else None
        self.message = message


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, nesting deeper than MAX_YAML_DEPTH and duplicate keys.

    PyYAML keeps the last of two equal keys without a word, so a recipe with ``lr`` twice in one section would
    silently train with the second value."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _YAMLProblem(event.start_mark, f"uses the YAML alias *{event.anchor}, which ganforge does not "
                                                 "accept (aliases can expand exponentially); write the value out")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _YAMLProblem(self.peek_event().start_mark,
                                   f"nests more than {MAX_YAML_DEPTH} levels deep (a recipe needs about 4); "
                                   "remove the extra brackets or indentation")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:          # an unhashable key: SafeLoader's own error reports it below
                    continue
                if first is not None:
                    raise _YAMLProblem(key_node.start_mark, f"repeats the key '{key}' (first on line {first}); "
                                                            "YAML would silently keep the last one: delete one")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _yaml_error_text(e: yaml.YAMLError) -> tuple[str, str]:
    """(" line N" or "", the problem on one line) for any PyYAML error."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    if isinstance(e, yaml.reader.ReaderError):
        what = (f"character #x{e.character:04x} at position {e.position} is not allowed in YAML"
                if isinstance(e.character, int) else f"bytes at position {e.position} are not valid {e.encoding}")
    else:
        what = ": ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
    return where, " ".join(what.split())


def load_yaml(text: str, where: str, hint: str = "check the quotes, brackets and indentation there",
              lines: bool = True) -> Any:
    """Parse YAML text with the limits above; every problem is a ConfigError ``{where} line N ...`` (without the
    line number when ``lines`` is false: a one-line --set value)."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{where} is {len(text):,} characters of YAML; ganforge reads at most {MAX_YAML_BYTES:,}")
    loader = _GuardedLoader(text)
    try:
        return loader.get_single_data()
    except _YAMLProblem as p:
        line = f" line {p.line}" if p.line is not None and lines else ""
        raise ConfigError(f"{where}{line} {p.message}") from None
    except yaml.YAMLError as e:
        line, what = _yaml_error_text(e)
        raise ConfigError(f"{where}{line if lines else ''} is not valid YAML ({what}); {hint}") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path, what: str) -> Any:
    """A YAML file's data (``what`` names it in messages: "recipe", "run config"); size, encoding and syntax are
    checked before anything is built from it."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{what} {path} is {size:,} bytes; ganforge reads YAML files of at most "
                              f"{MAX_YAML_BYTES:,} bytes (is this the right file?)")
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{what} {path} line {line} is not UTF-8 text (byte 0x{data[e.start]:02x}); "
                          "save the file as UTF-8") from None
    return load_yaml(text, f"{what} {path}")


def read_recipe(name_or_path: str) -> dict[str, Any]:
    """Load a recipe's raw YAML by name (``dcgan-mnist``) or by path to a ``.yaml`` file."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"recipe file {name_or_path} does not exist; give a recipe name (see `ganforge list`) "
                              "or a path to a YAML file")
    else:
        path = recipe_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            close = difflib.get_close_matches(name_or_path, recipe_names(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown recipe '{name_or_path}'{hint}; `ganforge list` shows the recipes")
    raw = read_yaml_file(path, "recipe")
    if not isinstance(raw, dict):
        got = "empty" if raw is None else f"a YAML {_yaml_kind(raw)}"
        raise ConfigError(f"recipe {path} is {got}; it must be a YAML mapping of sections (name, data, networks, "
                          "...), see `ganforge list --long`")
    raw.setdefault("name", path.stem)
    return raw


# ------------------------------------------------------------------------------------------- overrides
def _yaml_kind(x: Any) -> str:
    return "list" if isinstance(x, list) else "mapping" if isinstance(x, dict) else f"scalar ({x!r:.40})"


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["train.steps=100", "optim.D.lr=1e-4"]`` -> {"train.steps": 100, "optim.D.lr": 1e-4}."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set expects key=value with a dotted key such as train.batch_size=32, got '{item}'")
        # Refused, not passed on as raw text: an unclosed quote or bracket is a typo, and the raw text would then
        # reach the config as a string the user did not mean (e.g. name='"abc').
        out[key] = load_yaml(text, f"--set {key}={text}",
                             hint=f"quote a string value as YAML, e.g. --set {key}='\"text\"'",
                             lines=False) if text.strip() else ""
    return out


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (creating intermediate mappings)."""
    raw = _deepcopy(raw)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"cannot set '{dotted}': '{'.'.join(parts[:i + 1])}' is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return raw


def _deepcopy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _deepcopy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deepcopy(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------- validation
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, typing.Sequence, dict):
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the type annotation ``tp``; return it in canonical form or raise ConfigError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = ConfigError(f"{path} must be {_type_name(tp)}, got {value!r}")
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, path)
            except ConfigError as e:
                errors.append(e)
        raise bad
    if origin is Literal:
        if value in args:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path} must be one of {', '.join(repr(a) for a in args)}, got {value!r}{hint}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        # A string is not an int ("64" in quotes, "abc"), except the exponent form YAML 1.1 leaves as a string
        # (steps: 1e5 loads as "1e5"), taken when it is a whole number.
        if isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
            f = float(value)
            if math.isfinite(f) and f.is_integer():
                return int(f)
        if isinstance(value, str):
            raise ConfigError(f"{path} must be int, got the string {value!r}; write a whole number without quotes")
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, (int, float)):
            try:
                f = float(value)
            except OverflowError:
                raise ConfigError(f"{path} is too large for a float, got {value!r}") from None
            if not math.isfinite(f):    # inf / nan pass every "> 0" check and poison training silently
                raise ConfigError(f"{path} must be a finite number, got {value!r}")
            return f
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin in (list, typing.Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path} must have {len(args)} items ({_type_name(tp)}), got {value!r}")
            return tuple(coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        seq = [coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad
        vt = args[1] if args else Any
        return {str(k): coerce(v, vt, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, path)
    return value


_YAML11_EXPONENT = re.compile(r"[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+")


def check_finite(x: Any, path: str) -> None:
    """Refuse NaN / inf anywhere in a raw config (also in parameters whose type is not declared): they pass
    range checks such as ``lr > 0`` and turn training into NaNs without an error."""
    if isinstance(x, float) and not math.isfinite(x):
        raise ConfigError(f"{path or 'config'} is {x}; every number in a config must be finite")
    if isinstance(x, dict):
        for k, v in x.items():
            check_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            check_finite(v, f"{path}[{i}]")


def _unknown_key(path: str, key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    where = f"{path}.{key}" if path else key
    return ConfigError(f"unknown config key '{where}'{hint}; valid keys here: {', '.join(sorted(valid))}")


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(path, str(key), list(fields))
        kwargs[key] = coerce(value, hints[key], f"{path}.{key}" if path else key)
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check(path)
    return obj


def signature_params(fn: Any, skip: tuple[str, ...] = ()) -> dict[str, inspect.Parameter]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    return {n: p for n, p in sig.parameters.items()
            if n not in ("self", *skip) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def check_params(fn: Any, params: dict[str, Any], path: str, skip: tuple[str, ...] = (),
                 reserved: dict[str, str] | None = None) -> dict[str, Any]:
    """Validate recipe parameters against a constructor's signature and type hints.

    ``skip`` are parameters the library fills in itself; ``reserved`` maps such names to the key a user
    should set instead (e.g. image_size -> data.image_size).
    """
    allowed = signature_params(fn, skip)
    target = fn.__init__ if inspect.isclass(fn) else fn
    # Annotations that cannot be resolved are a bug in the class, not in the recipe: let it surface (the CLI reports
    # it as an internal error) rather than skip the validation silently.
    hints = typing.get_type_hints(target)
    out = {}
    for key, value in params.items():
        if reserved and key in reserved:
            raise ConfigError(f"{path}.{key} is set by the library; set {reserved[key]} instead")
        if key not in allowed:
            raise _unknown_key(path, key, list(allowed))
        out[key] = coerce(value, hints.get(key, Any), f"{path}.{key}")
    return out


def _component(raw: Any, path: str, key: str = "name") -> Component:
    if isinstance(raw, str):
        raw = {key: raw}
    if not isinstance(raw, dict) or key not in raw or not isinstance(raw[key], str):
        raise ConfigError(f"{path} must be a mapping with a '{key}' (e.g. {path}: {{{key}: ...}}), got {raw!r}")
    params = {k: v for k, v in raw.items() if k != key}
    return Component(raw[key], params)


def build_config(raw: dict[str, Any]) -> Config:
    """Validate a raw recipe dict (after overrides) into a Config. Component parameters are checked later,
    against their registered classes, by ``ganforge.build``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections (name, data, networks, ...), got {_yaml_kind(raw)}")
    check_finite(raw, "")
    known = {f.name for f in dataclasses.fields(Config)}
    for key in raw:
        if key not in known:
            raise _unknown_key("", str(key), sorted(known))
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("recipe needs a 'name'")
    optim_raw = raw.get("optim") or {}
    if not isinstance(optim_raw, dict):
        raise ConfigError("optim must be a mapping of optimizer groups, e.g. optim: {G: {...}, D: {...}}")
    networks_raw = raw.get("networks") or {}
    if not isinstance(networks_raw, dict):
        raise ConfigError("networks must be a mapping, e.g. networks: {G: {arch: dcgan-book}, D: {arch: dcgan-book}}")
    regularize = raw.get("regularize") or {}
    if not isinstance(regularize, dict):
        raise ConfigError("regularize must be a mapping, e.g. regularize: {r1: {gamma: 10, every: 16}}")
    starts_from = raw.get("starts_from") or ""
    if not isinstance(starts_from, str) or (starts_from and starts_from not in recipe_names()):
        close = difflib.get_close_matches(str(starts_from), recipe_names(), n=1)
        raise ConfigError(f"starts_from names the recipe whose run this one starts from, got {starts_from!r}"
                          + (f" (did you mean '{close[0]}'?)" if close else "") + "; `ganforge list` names them")
    return Config(
        starts_from=starts_from,
        regularize=regularize,
        name=name,
        description=str(raw.get("description", "")),
        citation=str(raw.get("citation", "")),
        source=str(raw.get("source", "")),
        data=build_dataclass(DataConfig, raw.get("data"), "data"),
        algorithm=_component(raw.get("algorithm", "adversarial"), "algorithm"),
        networks={str(k): _component(v, f"networks.{k}", "arch") for k, v in networks_raw.items()},
        objective=_component(raw.get("objective", "nonsaturating"), "objective"),
        optim={str(k): build_dataclass(OptimConfig, v, f"optim.{k}") for k, v in optim_raw.items()},
        train=build_dataclass(TrainConfig, raw.get("train"), "train"),
    )


def load_config(recipe: str, overrides: dict[str, Any] | None = None) -> Config:
    return build_config(apply_overrides(read_recipe(recipe), overrides or {}))


class _NoAliasDumper(yaml.SafeDumper):
    """Never writes anchors / aliases (for a value that appears twice): the loader above refuses them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=None, width=110)
