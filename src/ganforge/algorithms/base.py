"""The algorithm vocabulary: what one training step means for a GAN family.

An ``Algorithm`` owns its networks (``self.nets``), its objective and its per-family state, declares which
optimizer group updates which networks, and implements ``train_step(ctx)``. It never owns the loop:
the Trainer hands it a ``StepContext`` that draws real batches, runs autocast, and performs each
optimizer update (zero-grad, backward, step, schedule), so that AMP, DDP, clipping of gradients and
accounting live in one place for every family.
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


@dataclass(frozen=True)
class DataInfo:
    """What the networks and the algorithm may know about the data."""

    kind: str                     # "image" | "vector"
    sample_shape: tuple[int, ...]
    num_classes: int              # 0 if unlabelled
    class_names: tuple[str, ...] | None = None
    keys: tuple[str, ...] = ()    # the batch keys the data yields ("image", "label", "target", ...)
    field_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)   # per-sample shape of each field


class StepContext(Protocol):
    step: int                     # the step being computed (0-based count of completed steps)

    def real_batch(self) -> Batch: ...
    def update(self, group: str, loss: torch.Tensor) -> None: ...
    def autocast(self) -> contextlib.AbstractContextManager: ...


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
    # The objective needs (``objectives.Need``) this family can meet (``algorithms/needs.py``); an objective with any
    # other need is refused when the algorithm is built. Empty by default, so a new family refuses until it declares.
    supported_needs: ClassVar[frozenset[Need]] = frozenset()
    refused_because: ClassVar[dict[Need, str]] = {}    # why a need outside supported_needs cannot be met (messages)

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo):
        super().__init__()
        self.nets = nn.ModuleDict(dict(nets))
        self.objective = objective
        self.data = data

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
    def default_param(cls, name: str) -> Any:
        import inspect
        p = inspect.signature(cls.__init__).parameters.get(name)
        return None if p is None or p.default is inspect.Parameter.empty else p.default

    # -- training ----------------------------------------------------------------------------------
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


ALGORITHMS: Registry[type[Algorithm]] = Registry("algorithm")


def register_algorithm(cls: type[Algorithm]) -> type[Algorithm]:
    return ALGORITHMS.add(cls.name, cls, cls.source)


def algorithm_names() -> list[str]:
    return ALGORITHMS.names()


def algorithm_class(name: str) -> type[Algorithm]:
    return ALGORITHMS.get(name)
