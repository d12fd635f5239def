"""CycleGAN: unpaired image-to-image translation with two generators, two discriminators and a cycle loss.

Source: seed 002 chapter 3 part 2 (spec section 26: a G alone can ignore its input and output any realistic image
of the other domain; a second generator maps its output back, and the input must be recovered, in both
directions). The losses and the step are the paper's, Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks" (ICCV), section 3 and 4, in the official code's form
(junyanz/pytorch-CycleGAN-and-pix2pix, ``cycle_gan_model.py``):

  G_AB: A -> B, G_BA: B -> A;  D_A judges domain A images (real A vs G_BA(b)), D_B domain B (real B vs G_AB(a)).
  (The official code names them the other way round: its D_A judges G_A's outputs, which are B images.)

  G step (one update of both generators, optimizer group G):
    L_G = adv(D_B(G_AB(a))) + adv(D_A(G_BA(b)))                                        adversarial, ``g_adv``
        + lambda (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)                       cycle, ``cycle``
        + identity_weight lambda (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)                   identity, ``identity``
  D step (one update of both discriminators, optimizer group D, after the G step as the official code):
    L_D = d_weight (d(D_B(b), D_B(pool_B(G_AB(a)))) + d(D_A(a), D_A(pool_A(G_BA(b)))))

with adv / d the objective's generator / discriminator losses of D's raw per-patch scores. The paper uses least
squares (LSGAN, D's targets 1 for real and 0 for fake, G's target 1): ``objective: {name: lsgan, scaling: sum}``
gives d = MSE(D(real), 1) + MSE(D(fake), 0) and adv = MSE(D(fake), 1), and ``d_weight`` 0.5 is the official code's
halving of D's loss ("slows down the rate at which D learns relative to G"). (lsgan's default ``book`` scaling
already halves d: with it and d_weight 0.5, D's loss is a quarter of the sum; Adam makes such a constant factor
nearly irrelevant, but the recipes state the official form.) The |.|_1 terms are means over pixels (torch's L1Loss).
lambda = 10 (``lambda_cycle``) and the identity weight 0.5 (times lambda) are the paper's defaults; the identity
loss (section 5.2, "photo generation from paintings", after Taigman et al. 2017) keeps the colours of the input and
is on by default in the official code as here; ``identity_weight: 0`` switches it off. It needs both domains to have
the same channels (G_AB must take B images).

The image pools (``image_pool.py``, 50 images each, ``pool_size``) hold past fakes of each domain: D is trained on
a batch in which each fake was, with probability 0.5, swapped for an older one. They are the algorithm's tensor state
(``pool_A.images`` / ``pool_A.count``, ``pool_B.*``), checkpointed and restored bit-exactly on ``--resume``.

Data: domain A is the main stream (``data.source``), domain B the stream ``b`` (``data.streams.b.source``); each has
its own sampler and order, so the two are drawn independently (unpaired) even when both are views of one set.
Progress grids come from the held-out batch (``data.held_out``, else the main data): input a | G_AB(a) |
G_BA(G_AB(a)) | target (when the held-out source has the true counterpart as its ``target``, as
``mnist5k?domain=edges&paired=1`` does; never used for training).

Objectives: any whose needs the step can meet (weight clipping of both Ds, a gradient penalty on each D, D's real
scores in G's loss); not BEGAN's state (two Ds, one objective state) nor energy-based Ds.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import ConfigError, DataError
from ..objectives import Need, Objective
from .base import Algorithm, DataInfo, StepContext, frozen, register_algorithm
from .controls import unknown_controls
from .image_pool import ImagePool, load_pooled_state, pooled_state_mismatch
from .needs import check_needs

DIRECTIONS = ("AtoB", "BtoA")


@register_algorithm
class CycleGAN(Algorithm):
    name = "cyclegan"
    source = ("seed 002 chapter 3 part 2 (CycleGAN); Zhu et al. 2017, Unpaired Image-to-Image Translation using "
              "Cycle-Consistent Adversarial Networks, sections 3-4; official code junyanz/pytorch-CycleGAN-and-pix2pix")
    roles = {"G_AB": "generator", "G_BA": "generator", "D_A": "discriminator", "D_B": "discriminator"}
    optimizer_groups = {"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")}
    ema_networks = ("G_AB", "G_BA")
    sampling_network = "G_AB"
    streams = ("b",)
    samples_from_data = True
    translate_controls = ("direction",)
    supported_needs = frozenset({Need.WEIGHT_CLIP, Need.GRADIENT_PENALTY, Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS})
    refused_because = {Need.AFTER_D_STEP: "its two discriminators would both update the one objective state",
                       Need.ENERGY_D: "its discriminators are PatchGANs, not auto-encoders",
                       Need.PULLAWAY_TERM: "its discriminators have no auto-encoder codes"}

    def __init__(self, nets: Mapping[str, nn.Module], objective: Objective, data: DataInfo,
                 lambda_cycle: float = 10.0, identity_weight: float = 0.5, pool_size: int = 50,
                 d_weight: float = 0.5):
        super().__init__(nets, objective, data)
        self.needs = check_needs(self.name, objective, self.supported_needs, why=self.refused_because)
        for key, value in (("lambda_cycle", lambda_cycle), ("identity_weight", identity_weight)):
            if not value >= 0:
                raise ConfigError(f"algorithm.{key} must be >= 0 (the paper: lambda_cycle 10, identity_weight 0.5), "
                                  f"got {value}")
        if not d_weight > 0:
            raise ConfigError(f"algorithm.d_weight must be > 0 (the official code halves D's loss: 0.5), "
                              f"got {d_weight}")
        if pool_size < 0:
            raise ConfigError(f"algorithm.pool_size must be >= 0 (the paper: 50 past fakes; 0: none), got {pool_size}")
        shape_a, shape_b = domain_shapes(data)
        if identity_weight > 0 and shape_a[0] != shape_b[0]:
            raise ConfigError(f"algorithm.identity_weight={identity_weight}: the identity loss feeds domain B images "
                              f"to G_AB, which takes domain A's, but A has {shape_a[0]} channel(s) and B {shape_b[0]}; "
                              "set algorithm.identity_weight=0 (or data.channels to give both domains one count)")
        self.lambda_cycle, self.identity_weight, self.d_weight = lambda_cycle, identity_weight, d_weight
        self.pool_size = pool_size
        # Past fakes of each domain: state, not networks (no optimizer, EMA copy or weights file sees them).
        self.state_modules["pool_A"] = ImagePool(pool_size, shape_a)
        self.state_modules["pool_B"] = ImagePool(pool_size, shape_b)

    @classmethod
    def network_context(cls, params: dict[str, Any], data: DataInfo) -> dict[str, dict[str, Any]]:
        """G_AB takes A images and makes B samples, G_BA the reverse; each D takes its own domain's images."""
        ctx = super().network_context(params, data)
        shape_a, shape_b = domain_shapes(data)
        for key, (takes, makes) in {"G_AB": (shape_a, shape_b), "G_BA": (shape_b, shape_a),
                                    "D_A": (shape_a, shape_a), "D_B": (shape_b, shape_b)}.items():
            ctx[key].update(channels=takes[0], image_size=takes[-1], sample_shape=makes)
        return ctx

    # -- state: the two pools, whose size grows up to pool_size -----------------------------------------------------
    def state_mismatch(self, tensors: Mapping[str, torch.Tensor]) -> str | None:
        return pooled_state_mismatch(self.state_modules, tensors, f"algorithm '{self.name}'")

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        load_pooled_state(self.state_modules, tensors)

    @property
    def pools(self) -> tuple[ImagePool, ImagePool]:
        return self.state_modules["pool_A"], self.state_modules["pool_B"]

    # -- losses (also what the unit tests check against direct computation) -----------------------------------------
    @staticmethod
    def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean absolute difference over every pixel (torch.nn.L1Loss), in float32."""
        return (x.float() - y.float()).abs().mean()

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_b: torch.Tensor, fake_a: torch.Tensor,
                         rec_a: torch.Tensor, rec_b: torch.Tensor, score_fake_b: torch.Tensor,
                         score_fake_a: torch.Tensor, idt_b: torch.Tensor | None, idt_a: torch.Tensor | None,
                         real_scores: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
                         ) -> dict[str, torch.Tensor]:
        """The G loss and its parts: ``score_fake_b`` = D_B(G_AB(a)), ``score_fake_a`` = D_A(G_BA(b)); ``idt_b`` =
        G_AB(b), ``idt_a`` = G_BA(a) (None when identity_weight is 0); ``real_scores`` (D_B(b), D_A(a)) for
        objectives that compare fakes with reals."""
        adv = self.objective.g_loss(score_fake_b, real_scores[0]) + self.objective.g_loss(score_fake_a, real_scores[1])
        cycle = self.lambda_cycle * (self.l1(rec_a, real_a) + self.l1(rec_b, real_b))
        identity = torch.zeros((), device=adv.device)
        if self.identity_weight > 0:
            assert idt_a is not None and idt_b is not None
            identity = self.identity_weight * self.lambda_cycle * (self.l1(idt_b, real_b) + self.l1(idt_a, real_a))
        return {"g_loss": adv + cycle + identity, "g_adv": adv, "cycle": cycle, "identity": identity}

    def discriminator_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """One D's loss on its real and (pooled) fake scores: d_weight times the objective's D loss."""
        return self.d_weight * self.objective.d_loss(real_out, fake_out)

    # -- training ------------------------------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        G_AB, G_BA, D_A, D_B = (self.nets[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))
        real_a, real_b = ctx.real_batch().x, ctx.real_batch("b").x     # independent draws: unpaired
        logs: dict[str, Any] = {}

        # G step: D's weights frozen (gradients still flow through D to the generators).
        with frozen(D_A, D_B), ctx.autocast():
            fake_b, fake_a = G_AB(real_a), G_BA(real_b)
            rec_a, rec_b = G_BA(fake_b), G_AB(fake_a)
            idt_b = G_AB(real_b) if self.identity_weight > 0 else None
            idt_a = G_BA(real_a) if self.identity_weight > 0 else None
            score_fake_b, score_fake_a = D_B(fake_b), D_A(fake_a)
            real_scores = (self.needs.real_scores(lambda: D_B(real_b)), self.needs.real_scores(lambda: D_A(real_a)))
        parts = self.generator_losses(real_a, real_b, fake_b, fake_a, rec_a, rec_b, score_fake_b, score_fake_a,
                                      idt_b, idt_a, real_scores)
        ctx.update("G", parts["g_loss"])

        # D step on the fakes of the G step (made before G's update, as the official code), through the pools.
        pool_a, pool_b = self.pools
        pooled_b, pooled_a = pool_b.query(fake_b), pool_a.query(fake_a)
        with ctx.autocast():
            real_out_b, fake_out_b = D_B(real_b), D_B(pooled_b)
            real_out_a, fake_out_a = D_A(real_a), D_A(pooled_a)
        loss_d_b = self.needs.penalty(self.discriminator_loss(real_out_b, fake_out_b), D_B, real_b, pooled_b, logs,
                                      key="gp_B")
        loss_d_a = self.needs.penalty(self.discriminator_loss(real_out_a, fake_out_a), D_A, real_a, pooled_a, logs,
                                      key="gp_A")
        loss_d = loss_d_a + loss_d_b
        ctx.update("D", loss_d)
        self.needs.clip(D_A, D_B)

        return {**logs, "d_loss": loss_d.detach(), "d_A": loss_d_a.detach(), "d_B": loss_d_b.detach(),
                **{k: v.detach() for k, v in parts.items()}}

    # -- sampling from data and translating ----------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, device: torch.device,
                      batch: Any = None, **controls: Any) -> dict[str, torch.Tensor]:
        unknown_controls(controls, (), f"'{self.name}' (it translates the held-out images)")
        if batch is None:
            raise ConfigError(f"algorithm '{self.name}' translates images: its samples come from data (the held-out "
                              "batch), not from noise")
        inputs = {"image": batch["image"][:n].to(device)}
        if "target" in batch:
            inputs["target"] = batch["target"][:n].to(device)
        return inputs

    def generate(self, inputs: Mapping[str, torch.Tensor], nets: Mapping[str, nn.Module] | None = None) -> torch.Tensor:
        return (nets or self.nets)["G_AB"](inputs["image"])

    def grid_panels(self, inputs: Mapping[str, torch.Tensor],
                    nets: Mapping[str, nn.Module]) -> dict[str, torch.Tensor] | None:
        """input a | G_AB(a) | G_BA(G_AB(a)) | the true counterpart (when the held-out source has one)."""
        out = nets["G_AB"](inputs["image"])
        panels = {"input": inputs["image"], "output": out, "reconstruction": nets["G_BA"](out)}
        if "target" in inputs:
            panels["target"] = inputs["target"]
        return panels

    def output_shape(self) -> tuple[int, ...]:
        """Samples are G_AB's translations: domain B's images (another channel count than A's is fine)."""
        return domain_shapes(self.data)[1]

    def translation_input_shape(self, direction: str = "AtoB", **controls: Any) -> tuple[int, ...]:
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        shape_a, shape_b = domain_shapes(self.data)
        return shape_a if check_direction(direction) == "AtoB" else shape_b

    def translate(self, inputs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
                  direction: str = "AtoB", **controls: Any) -> torch.Tensor:
        """A -> B with G_AB (``direction`` AtoB, the default) or B -> A with G_BA (BtoA)."""
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        key = "G_AB" if check_direction(direction) == "AtoB" else "G_BA"
        return (nets or self.nets)[key](inputs)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be AtoB (domain A -> B, G_AB) or BtoA (B -> A, G_BA), got {direction!r}")
    return direction


def domain_shapes(data: DataInfo) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """C x H x W of domain A (the main data) and of domain B (stream ``b``; the main data's when the description
    has no streams, as a recipe checked without its data is). Both must have one image size: one line otherwise."""
    b = data.streams.get("b")
    shape_a, shape_b = tuple(data.sample_shape), tuple(b.sample_shape if b is not None else data.sample_shape)
    if shape_a[1:] != shape_b[1:]:
        raise DataError(f"algorithm 'cyclegan' translates between images of one size, but domain A (data.source) "
                        f"is {'x'.join(map(str, shape_a[1:]))} and domain B (data.streams.b) "
                        f"{'x'.join(map(str, shape_b[1:]))}; set data.image_size to give both one size")
    return shape_a, shape_b
