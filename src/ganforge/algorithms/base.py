"""The algorithm vocabulary: what one training step means for a GAN family.

An ``Algorithm`` owns its networks (``self.nets``), its objective and its per-family state, declares which
optimizer group updates which networks, and implements ``train_step(ctx)``. It never owns the loop:
the Trainer hands it a ``StepContext`` that draws real batches, runs autocast, and performs each
optimizer update (zero-grad, backward, step, schedule), so that AMP, DDP, clipping of gradients and
accounting live in one place for every family.

An update is ``ctx.update(group, loss)``, or in pieces: any number of ``ctx.backward(group, loss, gain)`` calls
that accumulate ``gain * d loss`` into the group's gradients, then one ``ctx.optimizer_step(group)``. The pieces are
for lazy regularisation (a penalty every k updates with gain k), gradient accumulation over micro-batches
(``ctx.accumulate``, ``micro_batches``) and one graph feeding several losses (``retain_graph``).

Tensor state that is not a network's (image pools, running averages, labelled subsets) is the algorithm's:
``state_tensors`` / ``load_state_tensors`` (by default the buffers of the modules in ``self.state_modules``),
checkpointed bit-exactly in ``training.safetensors`` beside the optimizer state, never in the network weights.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Protocol

import torch
import torch.nn as nn

from ..objectives import Need, Objective
from ..registry import Registry


@dataclass
class Batch:
    """One batch of named tensors (``data/base.py`` BATCH_KEYS), on the device.

    ``x`` is the main sample (``batch["image"]`` or ``batch["vector"]``) in the model's value range, ``y`` the int64
    labels (``batch["label"]``) or None; ``fields`` the other keys the source yields (image fields such as ``target``
    and ``lowres`` in the model's value range too)."""

    x: torch.Tensor
    y: torch.Tensor | None
    fields: dict[str, torch.Tensor] = field(default_factory=dict)
    main: str = "image"           # what x is called: "image" or "vector"

    def __getitem__(self, key: str) -> torch.Tensor:
        if key == self.main:
            return self.x
        if key == "label" and self.y is not None:
            return self.y
        if key in self.fields:
            return self.fields[key]
        raise KeyError(f"this batch has no {key!r}; it has {', '.join(self.keys())}")

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def keys(self) -> tuple[str, ...]:
        return (self.main,) + (("label",) if self.y is not None else ()) + tuple(self.fields)


def make_batch(x: torch.Tensor, y: torch.Tensor | None, fields: Mapping[str, torch.Tensor], idx: torch.Tensor,
               value_range: tuple[float, float] | None, channels_last: bool = False) -> Batch:
    """The Batch of rows ``idx`` of a dataset's tensors (uint8 images, on the batch's device): images and image
    fields to the model's ``value_range`` (vector data, ``value_range`` None, to float), NHWC when
    ``channels_last``. The trainer's batches and the fixed held-out batch are both made here."""
    from ..data.base import to_model_range
    xb = x[idx]
    xb = to_model_range(xb, value_range) if value_range is not None else xb.float()
    if channels_last and xb.dim() == 4:
        xb = xb.contiguous(memory_format=torch.channels_last)
    out = {}
    for key, data in fields.items():
        value = data[idx]
        if value.dtype == torch.uint8 and value.dim() == 4 and value_range is not None:   # image fields
            value = to_model_range(value, value_range)
            if channels_last:
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return Batch(x=xb, y=None if y is None else y[idx], fields=out, main="image" if value_range is not None else "vector")


@dataclass(frozen=True)
class DataInfo:
    """What the networks and the algorithm may know about the data."""

    kind: str                     # "image" | "vector"
    sample_shape: tuple[int, ...]
    num_classes: int              # 0 if unlabelled
    class_names: tuple[str, ...] | None = None
    keys: tuple[str, ...] = ()    # the batch keys the data yields ("image", "label", "target", ...)
    field_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # per-sample shape of each field
    # The other named streams (data.streams, the held-out one included), each described like the main one.
    streams: Mapping[str, "DataInfo"] = field(default_factory=dict)


class StepContext(Protocol):
    step: int                     # the step being computed (0-based count of completed steps)
    accumulate: int               # micro-batches per optimizer update (train.accumulate; families that split)
    phase: Any                    # train/phases.Phase of this step (resolution, alpha, batch size), None without

    def real_batch(self, stream: str = "main") -> Batch:
        """The next batch of ``stream`` (``main``: data.source; others: data.streams.NAME, each its own sampler)."""
        ...
    def autocast(self) -> contextlib.AbstractContextManager: ...

    def update(self, group: str, loss: torch.Tensor) -> None:
        """One optimizer update of ``group`` on ``loss``: ``backward(group, loss)`` then ``optimizer_step(group)``."""
        ...

    def backward(self, group: str, loss: torch.Tensor, gain: float = 1.0, retain_graph: bool = False) -> None:
        """Accumulate ``gain * d loss / d theta`` into the gradients of ``group``'s parameters (the first call since
        the group's last step starts from zero). ``retain_graph`` keeps the graph for another loss on it."""
        ...

    def optimizer_step(self, group: str) -> None:
        """Apply the accumulated gradients: NaN guard, gradient averaging over ranks, lr schedule, optimizer (and
        GradScaler) step, zero-grad. (Not ``step``: that is the step counter above.)"""
        ...


def accumulation(ctx: StepContext) -> int:
    """``ctx.accumulate``; 1 for a context without it (the tests' recording contexts, written before accumulation)."""
    return int(getattr(ctx, "accumulate", 1))


def micro_batches(size: int, parts: int) -> list[tuple[slice, float]]:
    """``parts`` consecutive slices of a batch of ``size`` rows (sizes differ by at most one, like
    ``torch.tensor_split``), each with its share ``rows / size``: backpropagating each micro-batch's mean loss with
    that gain sums to the gradient of the whole batch's mean loss. ``parts=1``: the whole batch, gain 1."""
    if not 1 <= parts <= size:
        raise ValueError(f"cannot split a batch of {size} into {parts} micro-batches (train.accumulate must be <= "
                         "the batch size per process)")
    base, extra = divmod(size, parts)
    out, start = [], 0
    for i in range(parts):
        rows = base + (i < extra)
        out.append((slice(start, start + rows), rows / size))
        start += rows
    return out


def tensor_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor],
                    prefix: str = "", where: str = "these networks") -> str | None:
    """The first tensor (in ``expected``'s order) that keeps ``given`` from loading into ``expected``, in words, or
    None when every name and shape fits."""
    for name, t in expected.items():
        if name not in given:
            return f"{prefix}{name} {list(t.shape)} is not in the checkpoint"
        if tuple(given[name].shape) != tuple(t.shape):
            return f"{prefix}{name} is {list(given[name].shape)} in the checkpoint but {list(t.shape)} here"
    extra = [k for k in given if k not in expected]
    return f"the checkpoint's {prefix}{extra[0]} has no place in {where}" if extra else None


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Stop parameter gradients of ``modules`` (e.g. D during the generator step): gradients still flow
    through them to the inputs, but no weight gradients are computed or accumulated."""
    saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Run modules in inference mode (BN running statistics, no dropout), restoring their mode after."""
    saved = [(m, m.training) for m in modules]
    for m, _ in saved:
        m.eval()
    try:
        yield
    finally:
        for m, flag in saved:
            m.train(flag)


class Algorithm(nn.Module):
    name: ClassVar[str] = ""
    source: ClassVar[str] = ""
    roles: ClassVar[dict[str, str]] = {"G": "generator", "D": "discriminator"}
    optimizer_groups: ClassVar[dict[str, tuple[str, ...]]] = {"G": ("G",), "D": ("D",)}
    ema_networks: ClassVar[tuple[str, ...]] = ("G",)
    sampling_network: ClassVar[str] = "G"
    needs_labels: ClassVar[bool] = False
    # Batch keys the family needs besides the main sample (``image`` / ``vector``), e.g. ("target",) for pix2pix;
    # data without them is refused at build time with one line naming the sources that yield them.
    needs_keys: ClassVar[tuple[str, ...]] = ()
    # Named data streams the family draws from besides main (CycleGAN's ("a", "b")), and the batch keys it needs of
    # each (like needs_keys); a stream the config lacks is refused at build time with the --set that adds it.
    streams: ClassVar[tuple[str, ...]] = ()
    stream_needs_keys: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Whether sample_inputs takes real inputs (translation, encoders): the trainer then passes batch=, a fixed batch
    # of train.grid_size from the held-out stream (the main data when there is none), and grid_panels may lay the
    # grid out as input | output | target.
    samples_from_data: ClassVar[bool] = False
    # The objective needs (``objectives.Need``) this family can meet (``algorithms/needs.py``); an objective with any
    # other need is refused when the algorithm is built. Empty by default, so a new family refuses until it declares.
    supported_needs: ClassVar[frozenset[Need]] = frozenset()
    refused_because: ClassVar[dict[Need, str]] = {}    # why a need outside supported_needs cannot be met (messages)
    # Whether train_step splits its updates into ctx.accumulate micro-batches (train.accumulate > 1 is refused at
    # build time for a family that does not: the trainer cannot split an update the algorithm computes).
    supports_accumulation: ClassVar[bool] = False
    # Whether the step passes each D loss through ``needs.penalty`` (``algorithms/needs.py``), where the recipe's
    # ``regularize:`` sample penalties (R1, R2, DRAGAN) are added; a family that does not refuses them at build time.
    applies_sample_penalties: ClassVar[bool] = True
    # Whether ``train.precision: auto`` may train this family in bf16 (with channels_last) where the hardware does
    # bf16 natively: only families measured to learn as well in bf16 as in fp32 (bench/bf16_check.py; the figures in
    # train/precision.py), with an objective and networks measured too. Read by ``train.precision.measured_family``: a class's own
    # declaration, never inherited, because a subclass changes the step (ProGAN's fades, StyleGAN's path-length
    # penalty) and is measured on its own.
    auto_bf16: ClassVar[bool] = False

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo):
        super().__init__()
        self.nets = nn.ModuleDict(dict(nets))
        self.objective = objective
        self.data = data
        # Modules whose buffers are this algorithm's tensor state (state_tensors): submodules of the algorithm, so
        # they move with it to the device, but not networks: no optimizer, EMA copy or weights file sees them.
        self.state_modules = nn.ModuleDict()
        self.phase: Any = None     # the train.phases phase last entered (enter_phase)
        from .regularization import Regularization
        self.regularization = Regularization()     # the recipe's regularize: section (attach_regularization)

    def attach_regularization(self, regularization: Any) -> None:
        """Take the recipe's ``regularize:`` terms (``algorithms/regularization.py``): the sample penalties go where
        this family's step already adds the objective's penalty (``self.needs``), the parameter penalties into each
        optimizer update of the networks' group (the trainer). Refused in one line where the family cannot apply them."""
        from ..errors import ConfigError
        if regularization.penalties and not self.applies_sample_penalties:
            raise ConfigError(f"regularize.{regularization.penalties[0].name}: algorithm '{self.name}' has no "
                              "discriminator loss to add a penalty on its inputs to; remove it (regularize.orthogonal "
                              "works for any network)")
        self.regularization = regularization
        needs = getattr(self, "needs", None)
        if needs is not None:
            needs.regularization = regularization

    # -- what the builder asks before networks exist ------------------------------------------------
    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """Context facts offered to each network's constructor (it takes those it names)."""
        image = data.kind == "image"
        common = {"sample_shape": data.sample_shape, "num_classes": data.num_classes}
        if image:
            common.update(channels=data.sample_shape[0], image_size=data.sample_shape[-1])
        latent = params.get("latent_dim", cls.default_param("latent_dim"))
        return {key: {**common, "latent_dim": latent, "cond_dim": 0} for key in cls.roles}

    @classmethod
    def needs_labels_with(cls, params: Mapping[str, Any]) -> bool:
        """Whether this family with these ``algorithm:`` settings trains on the data's labels (unlabelled data is
        refused at build time then): ``needs_labels``, unless a setting replaces them (BigGAN's ``labels: clusters``)."""
        return cls.needs_labels

    @classmethod
    def default_param(cls, name: str) -> Any:
        import inspect
        p = inspect.signature(cls.__init__).parameters.get(name)
        return None if p is None or p.default is inspect.Parameter.empty else p.default

    # -- training ----------------------------------------------------------------------------------
    def enter_phase(self, phase: Any) -> None:
        """Called with the ``train.phases`` phase (``train/phases.Phase``, None without phases) whenever it changes:
        before the first step of each phase a run computes (after a resume too) and when a run is loaded for
        sampling (the phase of its last step). ``ctx.phase`` gives the same within a step; this is for what samples
        outside one (grids, ``ganforge sample``). Kept as ``self.phase``; a family that grows overrides it."""
        self.phase = phase

    def check_training_files(self) -> None:
        """Reads the files only training needs (SRGAN's VGG19 weights), so that a missing or unreadable one is one
        line before a run directory is made or a run resumed, not an error at the first step. Sampling and
        translation never call it: a trained model does not need its loss's files."""

    def setup(self, dataset: Any, device: torch.device) -> dict[str, Any]:
        """Called once when a fresh run starts (never on resume: what it builds is in the checkpoint).

        For work before adversarial training, e.g. StackedGAN's encoder pretraining or TripleGAN's choice of
        the labelled subset. ``dataset`` is the prepared ``ganforge.data.Dataset`` (uint8 images on the CPU).
        Returns facts worth logging (they go to metrics.jsonl as a ``kind: setup`` row)."""
        return {}

    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """One training step; returns what to log, as 0-d tensors (detached) or floats (the trainer averages them
        over ``train.log_every`` steps)."""
        raise NotImplementedError

    # -- sampling ----------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      **controls: Any) -> dict[str, torch.Tensor]:
        """The generator inputs for ``n`` samples (noise, and labels/codes for conditional families).

        ``controls`` are the sampling controls of ``algorithms/controls.py`` (label, labels, traverse, fix,
        share_noise, per_row); a family uses its helpers so grids are laid out alike, and rejects controls it
        does not understand with ``unknown_controls``."""
        raise NotImplementedError

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """Named images for a progress grid laid out in columns (rows = samples), e.g. ``{"input": ..., "output":
        ..., "target": ...}``, each N x C x H x W in the model's range; None (the default): a plain grid of
        ``generate(inputs)``. For families that sample from data, where an output means little without its input."""
        return None

    # -- translation (families with samples_from_data: ``ganforge translate``, ``Model.translate``) -------------------
    # The controls ``translate`` takes (``direction``: AtoB | BtoA; ``to``: a target domain; ``attrs``: attributes to
    # set); empty for a model that does not translate user images.
    translate_controls: ClassVar[tuple[str, ...]] = ()

    def evaluation_targets(self) -> list[Any] | None:
        """The ``to`` values ``ganforge eval`` sweeps when none is given, for a translator that needs one (StarGAN:
        one generator, every domain a target); None: one evaluation on the default route."""
        return None

    def translation_input_shape(self, **controls: Any) -> tuple[int, ...]:
        """C x H x W of the images ``translate`` takes under ``controls`` (by default the data's samples; a
        super-resolution model takes its ``lowres`` field's shape, CycleGAN's BtoA the other domain's)."""
        return tuple(self.data.sample_shape)

    def translation_size_multiple(self) -> int | None:
        """None: ``translate`` takes ``translation_input_shape`` only (users' images are resized to it). k: the
        translator is fully convolutional, so an image of any size whose sides are multiples of k translates as it
        is (super-resolution upscales a whole photo, not a resized copy of it)."""
        return None

    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  **controls: Any) -> torch.Tensor:
        """Map a batch of user images (N x C x H x W at ``translation_input_shape``, in the model's value range) to
        the model's outputs, in the same order. ``controls`` as ``translate_controls`` lists (a family refuses
        others with ``controls.unknown_controls``). Families that do not translate raise ConfigError."""
        from ..errors import ConfigError
        raise ConfigError(f"algorithm '{self.name}' generates from noise; it does not translate images "
                          "(ganforge sample makes its samples)")

    def evaluation_pairs(self, images: torch.Tensor, fields: Mapping[str, torch.Tensor],
                         **controls: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What ``ganforge eval`` translates and what it compares the translations with, from a held-out set's
        images and fields: by default its images and, where the set has one, its ``target`` field (pix2pix's aligned
        pairs, a digit set's true counterparts); ``direction=BtoA`` of a two-domain translator swaps the two (the
        targets are translated back into the images). With a target domain (``to``) the set's ``target`` is not known
        here to be in that domain (``metrics.translation`` pairs them where the set's spec names its domain). Super-resolution overrides this (``lowres`` -> images)."""
        target = fields.get("target")
        if controls.get("to") is not None:
            return images, None
        if controls.get("direction") == "BtoA":
            if target is None:
                from ..errors import DataError
                raise DataError("evaluating direction BtoA needs held-out images with their domain-B counterparts as "
                                "a `target` field (e.g. mnist5k?split=test&domain=edges&paired=1)")
            return target, images
        return images, target

    def output_shape(self) -> tuple[int, ...]:
        """The shape of one generated sample, checked at build time against a two-sample probe: the data's samples,
        or for a family that samples from data the ``target`` field's when the data has one (pix2pix's outputs look
        like its targets, which may have other channels than its inputs)."""
        if self.samples_from_data and "target" in self.data.field_shapes:
            return tuple(self.data.field_shapes["target"])
        return tuple(self.data.sample_shape)

    def encode(self, images: torch.Tensor, nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        """Codes of a batch of images (N x C x H x W in the model's value range), N x latent_dim, for families with an
        encoder (BiGAN, ALI, VAE-GAN, VAE: ``ganforge encode``, ``Model.encode``). Families without one raise
        ConfigError."""
        from ..errors import ConfigError
        raise ConfigError(f"algorithm '{self.name}' has no encoder; ganforge encode takes a run of a family that "
                          "learns one (bigan, ali, vaegan, vae)")

    def sample_labels(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Labels of generated samples (conditional families), for npz export and label accuracy."""
        return None

    @property
    def value_range(self) -> tuple[float, float] | None:
        return getattr(self.nets[self.sampling_network], "value_range", None)

    # -- per-family state beyond network weights (checkpointed as JSON) -----------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"objective": self.objective.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.objective.load_state_dict(state.get("objective", {}))

    # -- per-family tensor state (checkpointed in training.safetensors as algorithm.<name>) ----------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The family's tensors that are neither network weights nor JSON-sized numbers: image pools, running
        averages, labelled subsets. The live tensors (the checkpoint copies them), by name; by default the buffers
        of ``self.state_modules`` as ``<module>.<buffer>``. A family with state of varying shape (a pool that fills
        up) overrides this, ``load_state_tensors`` and ``state_mismatch``."""
        return {f"{name}.{k}": v for name, module in self.state_modules.items() for k, v in module.state_dict().items()}

    def state_mismatch(self, tensors: Mapping[str, torch.Tensor]) -> str | None:
        """Why ``tensors`` cannot be loaded by ``load_state_tensors`` (the first that does not fit), or None. Checked
        before anything of a checkpoint is loaded, so a refusal changes nothing."""
        return tensor_mismatch(self.state_tensors(), tensors, "algorithm.", f"algorithm '{self.name}'")

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore what ``state_tensors`` returned, bit for bit (values, dtypes; onto this algorithm's device)."""
        for name, module in self.state_modules.items():
            pre = f"{name}."
            module.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}, strict=True)

    def legacy_state_keys(self) -> dict[str, str | None]:
        """Checkpoints written before the state had its own place kept it in the network weights. Each entry maps a
        prefix of such weight keys to the state name prefix it becomes (None: dropped, e.g. an EMA copy of it)."""
        return {}


ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm")


def register_algorithm(cls: type[Algorithm]) -> type[Algorithm]:
    return ALGORITHMS.add(cls.name, cls, cls.source)


def algorithm_names() -> list[str]:
    return ALGORITHMS.names()


def algorithm_class(name: str) -> type[Algorithm]:
    return ALGORITHMS.get(name)
