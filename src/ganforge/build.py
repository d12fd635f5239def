"""From a validated Config to live objects: dataset, networks, objective, algorithm.

This is the one place where recipe parameters meet constructors, so every parameter is checked here
against the registered class's signature (unknown key, wrong type) before anything is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .algorithms import Algorithm, Batch, DataInfo, algorithm_class
from .algorithms.base import make_batch
from .config import HELD_OUT, Config, check_params
from .data import Dataset, load_source, prepare
from .errors import ConfigError, DataError
from .models import CONTEXT_KEYS, network_class
from .nn.spectral import apply_spectral_norm
from .objectives import Objective, objective_class

if TYPE_CHECKING:  # pragma: no cover
    from .data.streaming import StreamingSource

# Switches the builder applies to any network after construction (unless the architecture takes the key itself):
# ``spectral_norm: true`` wraps every Linear / Conv / ConvTranspose / Embedding weight in spectral normalisation
# (Miyato et al. 2018; seed 002 part 1 section 7), ``spectral_norm_iterations`` power iterations per forward pass.
SPECTRAL_NORM_KEYS = {"spectral_norm": bool, "spectral_norm_iterations": int}

# Where a user should set a context fact instead of in a network's own section.
RESERVED = {"latent_dim": "algorithm.latent_dim", "image_size": "data.image_size", "channels": "data.channels",
            "sample_shape": "data.source", "num_classes": "data.source", "cond_dim": "algorithm settings"}


def _construct(cls: Any, kwargs: dict[str, Any], where: str) -> Any:
    try:
        return cls(**kwargs)
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}") from None


def build_objective(cfg: Config) -> Objective:
    cls = objective_class(cfg.objective.name)
    params = check_params(cls, cfg.objective.params, "objective")
    return _construct(cls, params, "objective")


def algorithm_params(cfg: Config) -> tuple[type[Algorithm], dict[str, Any]]:
    cls = algorithm_class(cfg.algorithm.name)
    params = check_params(cls, cfg.algorithm.params, "algorithm", skip=("nets", "objective", "data"))
    return cls, params


def stream_threshold_bytes(cfg: Config) -> int:
    """Prepared uint8 bytes above which ``data.path=auto`` streams: ``data.stream_threshold_mb``, else a quarter of
    the in-memory limit (room for the model, the optimizer and a second copy while preparing)."""
    from .data.base import memory_limit_bytes
    mb = cfg.data.stream_threshold_mb
    return int(mb * 2**20) if mb is not None else memory_limit_bytes() // 4


def load_dataset(cfg: Config) -> "Dataset | StreamingSource":
    """The main data, prepared to the model's geometry, on the path ``data.path`` chooses (data/streaming.py):
    one uint8 tensor (``Dataset``), or a ``StreamingSource`` decoded per batch."""
    from .data import resolve_source
    from .data.streaming import StreamingSource
    ds: Dataset | StreamingSource
    spec = resolve_source(cfg.data.source)
    prefix, _, arg = spec.partition(":")
    if cfg.data.path != "memory" and prefix == "folder":
        from .data.folder import open_folder, say_summary
        stream = StreamingSource(open_folder(arg), cfg.data.image_size, cfg.data.channels)
        if cfg.data.path == "stream" or stream.nbytes > stream_threshold_bytes(cfg):
            ds = stream
            say_summary(stream.plan, streamed=True)
        else:   # small: decoded once into memory from the scan already made, exactly as load_folder does
            loaded = stream.load_all()
            say_summary(stream.plan)   # after decoding, as load_folder: a folder with a bad file stops before it
            ds = prepare(loaded, cfg.data.image_size, cfg.data.channels)
    elif cfg.data.path != "memory" and prefix == "celeba":
        from .data.celeba import load_plan, open_celeba
        from .data.folder import _say_once
        plan = open_celeba(arg)
        stream = StreamingSource(plan, cfg.data.image_size, cfg.data.channels)
        if cfg.data.path == "stream" or stream.nbytes > stream_threshold_bytes(cfg):
            ds = stream
            _say_once(plan.summary + " (streamed: decoded per batch)")
        else:   # small: decoded into memory from the listing already made, exactly as load_celeba does
            ds = prepare(load_plan(plan), cfg.data.image_size, cfg.data.channels)
    elif cfg.data.path == "stream":
        raise ConfigError(f"data.path=stream: data source {cfg.data.source} cannot be streamed (folder: and celeba: "
                          "sources can); use data.path=auto or memory")
    else:
        ds = prepare(load_source(cfg.data.source, seed=cfg.train.seed), cfg.data.image_size, cfg.data.channels)
    if len(ds) < 2:
        raise DataError(f"data source {cfg.data.source} holds {len(ds)} sample(s); a GAN needs at least 2")
    return ds


def load_streams(cfg: Config, main: Dataset) -> dict[str, Dataset]:
    """The datasets of ``data.streams`` (and ``data.held_out``), each prepared to its own (or the main) geometry.
    Each must be of the main data's kind (images or vectors): a batch is converted by the sampling network's range."""
    out = {}
    for name, sc in cfg.data.stream_configs().items():
        ds = prepare(load_source(sc.source, seed=cfg.train.seed), sc.image_size, sc.channels)
        if len(ds) < 1:
            raise DataError(f"data.streams.{name}: data source {sc.source} holds no samples")
        if ds.kind != main.kind:
            raise DataError(f"data.streams.{name}: data source {sc.source} holds {ds.kind}s but the main data "
                            f"{cfg.data.source} {main.kind}s; every stream must be of the main data's kind")
        out[name] = ds
    return out


def data_info(ds: Dataset, streams: dict[str, Dataset] | None = None) -> DataInfo:
    return DataInfo(kind=ds.kind, sample_shape=tuple(ds.shape), num_classes=ds.num_classes,
                    class_names=tuple(ds.class_names) if ds.class_names else None, keys=ds.keys(),
                    field_shapes={k: tuple(v.shape[1:]) for k, v in ds.fields.items()},
                    streams={name: data_info(s) for name, s in (streams or {}).items()})


def check_streams(cfg: Config, cls: type[Algorithm], info: DataInfo) -> None:
    """Every stream the algorithm declares is configured and yields the keys it needs of it: one line naming the
    --set that adds it (or the sources that would yield the keys) otherwise."""
    from .data.base import sources_yielding
    for name in cls.streams:
        need = cls.stream_needs_keys.get(name, ())
        fit = sources_yielding(list(need)) if need else []
        kinds = f" (a source yielding {', '.join(need)}: {', '.join(s + ':...' for s in fit)})" if fit else ""
        if name not in info.streams:
            raise DataError(f"algorithm '{cls.name}' draws from data stream '{name}', which the config lacks; add it "
                            f"with --set data.streams.{name}.source=SOURCE{kinds}")
        have = info.streams[name].keys
        missing = [k for k in need if k not in have]
        if missing:
            raise DataError(f"algorithm '{cls.name}' needs batches with {', '.join(need)} from data stream '{name}', "
                            f"but {cfg.data.stream_configs()[name].source} yields {', '.join(have) or 'nothing'}; "
                            f"use a source that yields them ({', '.join(s + ':...' for s in fit) or 'none is registered yet'})")


def check_groups(cfg: Config, cls: type[Algorithm]) -> None:
    want, have = set(cls.optimizer_groups), set(cfg.optim)
    if want - have:
        raise ConfigError(f"optim needs a section for each of {sorted(want)} (algorithm '{cls.name}'); "
                          f"missing: {sorted(want - have)}")
    if have - want:
        raise ConfigError(f"unknown optimizer group(s) optim.{sorted(have - want)[0]}; "
                          f"algorithm '{cls.name}' updates {sorted(want)}")


def split_spectral_norm(params: dict[str, Any], accepted: dict[str, Any],
                        where: str) -> tuple[dict[str, Any], int | None]:
    """Take the spectral-norm switch out of a network's parameters (those the architecture does not take itself).

    Returns the remaining parameters and the number of power iterations, or None when spectral norm is off."""
    from .config import coerce
    mine = {k: coerce(params[k], tp, f"{where}.{k}") for k, tp in SPECTRAL_NORM_KEYS.items()
            if k in params and k not in accepted}
    rest = {k: v for k, v in params.items() if k not in mine}
    iterations = mine.get("spectral_norm_iterations", 1)
    if iterations < 1:
        raise ConfigError(f"{where}.spectral_norm_iterations must be >= 1 (SNGAN uses 1), got {iterations}")
    if "spectral_norm_iterations" in mine and not mine.get("spectral_norm", False):
        raise ConfigError(f"{where}.spectral_norm_iterations is set but {where}.spectral_norm is not true; "
                          f"add {where}.spectral_norm=true")
    return rest, (iterations if mine.get("spectral_norm", False) else None)


def build_algorithm(cfg: Config, info: DataInfo) -> Algorithm:
    """Networks, objective and algorithm for ``cfg`` on data described by ``info`` (seeded init).

    Warnings raised while building (torch's "Initializing zero-element tensors is a no-op" for algorithm.latent_dim=0)
    are held back until everything is built: when a later check refuses the config, its one line is the only output;
    when the build succeeds, they are shown as usual."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        algo = _build_algorithm(cfg, info)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    return algo


def _build_algorithm(cfg: Config, info: DataInfo) -> Algorithm:
    cls, params = algorithm_params(cfg)
    check_groups(cfg, cls)
    missing_keys = [k for k in cls.needs_keys if k not in info.keys]
    if missing_keys:
        from .data.base import sources_yielding
        fit = sources_yielding(list(cls.needs_keys))
        raise DataError(f"algorithm '{cls.name}' needs batches with {', '.join(cls.needs_keys)}, but "
                        f"{cfg.data.source} yields {', '.join(info.keys) or 'nothing'}; use a source that yields "
                        f"them ({', '.join(s + ':...' for s in fit) if fit else 'none is registered yet'})")
    check_streams(cfg, cls, info)
    if cls.needs_labels_with(params) and info.num_classes < 2:
        raise DataError(f"algorithm '{cls.name}' needs labelled data, but {cfg.data.source} has no labels; "
                        "use a labelled source (mnist5k, idx:, a folder with class subfolders)")
    objective = build_objective(cfg)
    contexts = cls.network_context(params, info)
    missing = [k for k in cls.roles if k not in cfg.networks]
    if missing:
        raise ConfigError(f"networks.{missing[0]} is missing: algorithm '{cls.name}' needs networks "
                          f"{', '.join(cls.roles)} (e.g. networks.{missing[0]}.arch=...)")
    extra = [k for k in cfg.networks if k not in cls.roles]
    if extra:
        raise ConfigError(f"unknown network 'networks.{extra[0]}'; algorithm '{cls.name}' uses {', '.join(cls.roles)}")
    torch.manual_seed(cfg.train.seed)
    nets = {}
    for key, role in cls.roles.items():
        comp = cfg.networks[key]
        where = f"networks.{key}"
        net_cls = network_class(role, comp.name, where)
        from .config import signature_params
        accepted = signature_params(net_cls)
        net_params, spectral = split_spectral_norm(comp.params, accepted, where)
        user = check_params(net_cls, net_params, where, skip=CONTEXT_KEYS, reserved=RESERVED)
        ctx = {k: v for k, v in contexts[key].items() if k in accepted}
        nets[key] = _construct(net_cls, {**ctx, **user}, where)
        if spectral is not None:
            nets[key] = apply_spectral_norm(nets[key], n_power_iterations=spectral)
    algo = _construct(cls, {"nets": nets, "objective": objective, "data": info, **params}, "algorithm")
    from .algorithms.regularization import parse_regularize
    algo.attach_regularization(parse_regularize(cfg.regularize, cls.roles, cls.name))
    if info.kind == "image" and algo.value_range is None:
        raise ConfigError(f"networks.{cls.sampling_network} has no output activation, so its images have no fixed "
                          "range; set its out_activation to tanh or sigmoid")
    return algo


@dataclass
class Built:
    config: Config
    dataset: "Dataset | StreamingSource"   # StreamingSource: the main data is streamed (data/streaming.py)
    info: DataInfo
    algorithm: Algorithm
    streams: dict[str, Dataset] = field(default_factory=dict)   # data.streams by name (held_out included)


def describe_shape(info: DataInfo) -> str:
    shape = "x".join(str(d) for d in info.sample_shape)
    return f"{shape} images" if info.kind == "image" else f"vectors of shape {shape}"


def fits_batch(algo: Algorithm, ds: Dataset) -> Batch:
    """Two rows of ``ds`` as a batch in the algorithm's range, for sampling from data at build time."""
    return make_batch(ds.x, ds.y, ds.fields, torch.arange(min(2, len(ds))), algo.value_range)


def check_data_fits(cfg: Config, algo: Algorithm, info: DataInfo, ds: Dataset | None = None) -> None:
    """Make two samples with copies of the networks and compare their shape with the data's, so that a recipe
    given the wrong kind of data (an image GAN on 2-D toy points, a fixed-size network on other sizes) is refused
    with one line at build time, before any run directory exists, instead of failing inside the first step.

    Copies, because a forward pass may change state (a virtual-BN layer keeps the first batch it sees as its
    reference); eval mode and a private generator, so the run's own random streams are untouched. A family that samples
    from data (``samples_from_data``) gets two rows of ``ds`` (the held-out data, else the main data) as its input."""
    import copy
    if algo.samples_from_data and ds is None:
        raise TypeError(f"algorithm '{algo.name}' samples from data: check_data_fits needs the dataset it samples from")
    nets = {k: copy.deepcopy(v).eval() for k, v in algo.nets.items()}
    where = f"recipe '{cfg.name}' on data {cfg.data.source}"
    try:
        with torch.no_grad():
            inputs = algo.sample_inputs(2, torch.Generator().manual_seed(0), torch.device("cpu"),
                                        **({"batch": fits_batch(algo, ds)} if algo.samples_from_data else {}))
            out = algo.generate(inputs, nets)
    except (RuntimeError, ValueError, IndexError) as e:
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise DataError(f"{where}: the networks cannot run on {describe_shape(info)} ({first}); use data of the "
                        "kind the recipe was written for, or a recipe for this data (ganforge list)") from None
    made, expected = tuple(out.shape[1:]), tuple(algo.output_shape())
    if made != expected:
        got = "x".join(str(d) for d in made)
        holds = (describe_shape(info) if expected == tuple(info.sample_shape) else
                 f"{'x'.join(map(str, expected))} targets")
        raise DataError(f"{where}: networks.{algo.sampling_network} makes samples of shape {got} but the data holds "
                        f"{holds}; use data of that shape (data.image_size / data.channels resize "
                        "images), or a recipe for this data (e.g. a *-toy recipe for toy:*)")


def build(cfg: Config) -> Built:
    ds = load_dataset(cfg)
    streams = load_streams(cfg, ds)
    info = data_info(ds, streams)
    algo = build_algorithm(cfg, info)
    check_data_fits(cfg, algo, info, streams.get(HELD_OUT, ds))
    from .train.trainer import check_training_options   # here, not at the top: trainer.py imports this module
    check_training_options(cfg, algo)
    return Built(cfg, ds, info, algo, streams)
