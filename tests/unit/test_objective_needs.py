"""Every algorithm with every registered objective: it is built and one training step applies what the objective
needs (weight clipping, a gradient penalty, a state update after the D step, real scores in the G loss, a joint D
loss, an auto-encoder D), or it is refused at build time with one line naming the objective and the algorithm."""
from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch

from ganforge.algorithms import Batch, DataInfo
from ganforge.algorithms.needs import check_needs, objectives_within
from ganforge.build import algorithm_params, build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range
from ganforge.errors import ConfigError
from ganforge.objectives import Need, objective_class, objective_names
from ganforge.objectives.classic import NonSaturating

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

DIGITS = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10)
TOY = DataInfo(kind="vector", sample_shape=(2,), num_classes=0)
B = 8

TOY_NETS = {"networks.G.hidden": [16], "networks.D.hidden": [16]}
CONV = {"networks.G.filters": [16, 8, 4], "networks.D.filters": [4, 8, 8, 16], "algorithm.latent_dim": 8}
# family -> (recipe, tiny overrides, critics: the network keys a WGAN clips)
FAMILIES: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "adversarial": ("gan-toy", TOY_NETS, ("D",)),
    "conditional": ("cgan-mnist", CONV, ("D",)),
    "projection": ("cgan-projection-mnist", CONV, ("D",)),
    "acgan": ("acgan-mnist", CONV, ("D",)),
    "infogan": ("infogan-mnist", {**CONV, "networks.D.filters": [4, 8, 16, 16], "algorithm.latent_dim": 6}, ("D",)),
    "stackedgan": ("stackedgan-mnist", {"networks.G0.filters": [16, 8, 4], "networks.D0.filters": [4, 8, 16, 16],
                                        "networks.E0.filters": 8, "networks.G1.hidden": [16],
                                        "networks.D1.hidden": [16], "algorithm.latent_dim": 5,
                                        "algorithm.feature_dim": 12}, ("D1", "D0")),
    "triplegan": ("triplegan-mnist", {"networks.G.hidden": [16], "networks.D.hidden": [16, 8],
                                      "networks.C.filters": [4, 4, 4, 8, 8], "algorithm.labelled": 20,
                                      "algorithm.latent_dim": 8}, ("D",)),
}
ENERGY = ("ebgan", "began")


def refused(family: str, objective: str) -> bool:
    """The needs matrix: auto-encoder objectives only with the adversarial family (its D can be an auto-encoder);
    TripleGAN's losses are its own per-pair BCE terms, so it takes minimax and nonsaturating only."""
    if family == "triplegan":
        return objective not in ("minimax", "nonsaturating")
    return family != "adversarial" and objective in ENERGY


def config(family: str, objective: str, **extra: Any):
    recipe, tiny, _ = FAMILIES[family]
    if family == "adversarial" and objective in ENERGY:
        # the energy objectives' own toy recipes: an MLP auto-encoder D
        recipe, tiny = f"{objective}-toy", {"networks.G.hidden": [16], "networks.D.hidden": [8],
                                            "networks.D.embedding_dim": 4}
    return load_config(recipe, {**tiny, "objective.name": objective, **extra})


def build(family: str, objective: str, **extra: Any):
    torch.manual_seed(0)
    return build_algorithm(config(family, objective, **extra), TOY if family == "adversarial" else DIGITS)


@pytest.fixture(scope="module")
def data():
    digits, toy = load_source("mnist5k"), load_source("toy:ring8")
    pick = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:B]
    return {"digits": digits, "images": digits.x[pick], "labels": digits.y[pick], "points": toy.x[:B].float()}


class Stepping:
    """A StepContext over one fixed real batch: every update is a plain SGD step of its group, and the group's
    gradients are kept (in update order)."""

    def __init__(self, algo, batch: Batch, lr: float = 0.05):
        self.step, self.batch = 0, batch
        self.params = {g: [p for k in keys for p in algo.nets[k].parameters()]
                       for g, keys in algo.optimizer_groups.items()}
        self.optimizers = {g: torch.optim.SGD(ps, lr=lr) for g, ps in self.params.items()}
        self.grads: list[tuple[str, list[torch.Tensor]]] = []

    def real_batch(self) -> Batch:
        return self.batch

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.optimizers[group].zero_grad(set_to_none=True)
        loss.backward()
        self.grads.append((group, [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                                   for p in self.params[group]]))
        self.optimizers[group].step()


def context(algo, family: str, data) -> Stepping:
    if family == "adversarial":
        return Stepping(algo, Batch(data["points"], None))
    if family == "triplegan":
        algo.setup(data["digits"], torch.device("cpu"))     # chooses the labelled subset
    return Stepping(algo, Batch(to_model_range(data["images"], algo.value_range), data["labels"]))


def largest(*nets: torch.nn.Module) -> float:
    return max(float(p.detach().abs().max()) for net in nets for p in net.parameters())


def record_g_loss(objective) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Wrap the objective's g_loss (on the instance) to record the (fake, real) scores of every call."""
    calls, original = [], objective.g_loss

    def g_loss(fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        calls.append((fake_out.detach(), None if real_out is None else real_out.detach()))
        return original(fake_out, real_out)

    objective.g_loss = g_loss
    return calls


# ------------------------------------------------------------------------------------------------ the matrix
@pytest.mark.parametrize("objective", objective_names())
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_algorithm_applies_or_refuses_every_objective(family: str, objective: str, data) -> None:
    algorithm = config(family, objective).algorithm.name
    if refused(family, objective):
        with pytest.raises(ConfigError) as e:
            build(family, objective)
        message = str(e.value)
        assert "\n" not in message and f"'{objective}'" in message and f"'{algorithm}'" in message, message
        assert "use objective.name=" in message, message
        return
    algo = build(family, objective)
    needs = algo.objective.needs()
    critics = [algo.nets[k] for k in FAMILIES[family][2]]
    ctx = context(algo, family, data)
    if Need.WEIGHT_CLIP in needs:
        with torch.no_grad():
            for p in (p for net in critics for p in net.parameters()):
                p.mul_(10.0)                           # far outside [-c, c]
        assert largest(*critics) > 0.01
    calls = record_g_loss(algo.objective)
    if Need.AFTER_D_STEP in needs:
        algo.objective.k = 0.5                         # BEGAN's k_t away from its clip at 0, so any update shows
    torch.manual_seed(1)
    logs = algo.train_step(ctx)

    assert logs and all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values()), logs
    assert {g for g, _ in ctx.grads} == set(algo.optimizer_groups)          # every network was updated
    if Need.WEIGHT_CLIP in needs:
        assert largest(*critics) <= float(torch.tensor(algo.objective.clip_value))
    penalties = [k for k in logs if k.endswith("gp")]
    assert bool(penalties) == (Need.GRADIENT_PENALTY in needs), logs.keys()
    assert all(float(logs[k]) > 0 for k in penalties)
    if Need.AFTER_D_STEP in needs:
        assert algo.objective.k != 0.5 and "M" in logs
        assert float(logs["k_t"]) == pytest.approx(algo.objective.k)   # logged in float32
    if Need.PULLAWAY_TERM in needs:
        assert float(logs["g_pt"]) > 0
    if family != "triplegan":                          # TripleGAN's G loss is its own BCE term
        assert calls, "the objective's g_loss was not used"
        for fake_out, real_out in calls:
            if Need.REAL_SCORES_IN_G in needs:
                assert real_out is not None and real_out.shape == fake_out.shape
                assert not torch.equal(real_out, fake_out)
            else:
                assert real_out is None                # no extra pass through D for objectives that do not need it


@pytest.mark.parametrize("family", [f for f in FAMILIES if not refused(f, "wgan-gp")])
def test_the_gradient_penalty_changes_the_first_critic_gradient(family: str, data) -> None:
    """The same step from the same weights and random state, with and without WGAN-GP's penalty: the first critic
    update's gradient differs, and only the penalised run logs a penalty."""
    grads = {}
    for weight in (10.0, 0.0):
        algo = build(family, "wgan-gp", **{"objective.gp_weight": weight})
        ctx = context(algo, family, data)
        torch.manual_seed(1)
        logs = algo.train_step(ctx)
        assert any(k.endswith("gp") for k in logs) == (weight > 0)
        group, grads[weight] = ctx.grads[0]
        assert group == FAMILIES[family][2][0]
    assert any(not torch.allclose(a, b) for a, b in zip(grads[10.0], grads[0.0]))


class CountingObjective(NonSaturating):
    """The non-saturating loss with a state that counts D steps: ``after_d_step`` is the only difference."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def after_d_step(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> dict[str, float]:
        assert not real_out.requires_grad and not fake_out.requires_grad
        self.seen.append((real_out.numel(), fake_out.numel()))
        return {"d_steps_seen": float(len(self.seen))}


@pytest.mark.parametrize("family", ["adversarial", "conditional", "acgan", "infogan", "stackedgan", "triplegan"])
def test_a_stateful_objective_is_updated_after_every_d_step_or_refused(family: str, data) -> None:
    assert Need.AFTER_D_STEP in CountingObjective().needs()
    built = build(family, "nonsaturating")
    cls, params = algorithm_params(config(family, "nonsaturating"))
    if family in ("adversarial", "conditional"):
        params["n_critic"] = 2
    nets = {k: v for k, v in built.nets.items() if k in cls.roles}
    if family in ("stackedgan", "triplegan"):
        with pytest.raises(ConfigError, match="state update after each D step") as e:
            cls(nets, CountingObjective(), built.data, **params)
        assert "\n" not in str(e.value) and f"'{family}'" in str(e.value)
        return
    objective = CountingObjective()
    algo = cls(nets, objective, built.data, **params)
    logs = algo.train_step(context(algo, family, data))
    d_steps = params.get("n_critic", 1)
    assert objective.seen == [(B, B)] * d_steps              # once per D step, with its real and fake scores
    assert float(logs["d_steps_seen"]) == pytest.approx(sum(range(1, d_steps + 1)) / d_steps)   # mean over steps


# ------------------------------------------------------------------------------------------------ declarations
def test_needs_follow_the_objective_hyperparameters() -> None:
    assert objective_class("wgan")().needs() == {Need.WEIGHT_CLIP}
    assert objective_class("wgan")(clip_value=None).needs() == frozenset()
    assert objective_class("wgan-gp")().needs() == {Need.GRADIENT_PENALTY}
    assert objective_class("wgan-gp")(gp_weight=0.0).needs() == frozenset()
    assert objective_class("wgan-gp")(clip_value=0.01).needs() == {Need.GRADIENT_PENALTY, Need.WEIGHT_CLIP}
    assert objective_class("began")().needs() == {Need.AFTER_D_STEP, Need.ENERGY_D}
    assert objective_class("ebgan")().needs() == {Need.ENERGY_D, Need.PULLAWAY_TERM}
    assert objective_class("ebgan")(pt_weight=0.0).needs() == {Need.ENERGY_D}
    for name in ("rsgan", "rasgan", "ralsgan", "rahinge"):
        assert objective_class(name)().needs() == {Need.REAL_SCORES_IN_G, Need.JOINT_D_LOSS}
    assert objective_class("glsgan-pairwise")().needs() == {Need.JOINT_D_LOSS}
    for name in ("minimax", "nonsaturating", "lsgan", "hinge", "fgan", "glsgan"):
        assert objective_class(name)().needs() == frozenset(), name


def test_check_needs_names_the_unmet_needs_and_the_objectives_that_fit() -> None:
    supported = frozenset({Need.WEIGHT_CLIP, Need.JOINT_D_LOSS})
    assert objectives_within(supported) == ["fgan", "glsgan", "glsgan-pairwise", "hinge", "lsgan", "minimax",
                                            "nonsaturating", "wgan"]
    with pytest.raises(ConfigError) as e:
        check_needs("demo", objective_class("rsgan")(), supported, why={Need.REAL_SCORES_IN_G: "it has no reals"})
    assert str(e.value) == ("objective 'rsgan' needs D's scores on a real batch in the generator loss, which algorithm "
                            "'demo' does not provide (it has no reals); use objective.name=fgan, glsgan, "
                            "glsgan-pairwise, hinge, lsgan, minimax, nonsaturating, wgan")
    needs = check_needs("demo", objective_class("wgan")(clip_value=0.05), supported)
    assert Need.WEIGHT_CLIP in needs and needs.clip_value == 0.05
    assert needs.real_scores(lambda: pytest.fail("D must not score reals for wgan")) is None


@pytest.mark.parametrize("recipe, override", [
    ("gan-toy", {"algorithm.d_update": "separate"}),
    ("cgan-mnist", {"algorithm.d_update": "separate"}),
    ("cgan-mnist", {"algorithm.mismatch_weight": 1.0}),
    ("acgan-mnist", {"algorithm.d_update": "separate"}),
])
def test_a_joint_d_loss_is_refused_where_the_settings_split_the_d_update(recipe: str, override: dict) -> None:
    with pytest.raises(ConfigError, match="does not split") as e:
        build_algorithm(load_config(recipe, {"objective.name": "rsgan", **override}),
                        TOY if recipe == "gan-toy" else DIGITS)
    assert "\n" not in str(e.value) and next(iter(override)).split(".")[1] in str(e.value)
