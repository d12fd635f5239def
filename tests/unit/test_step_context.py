"""The StepContext's update in pieces (``ctx.backward`` with a gain, ``ctx.optimizer_step``), gradient accumulation,
per-parameter-group learning rates and lazy R1, each against a direct computation on tiny networks."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import torch

from ganforge.algorithms import Batch
from ganforge.algorithms.base import micro_batches
from ganforge.build import build
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.regularizers import r1_penalty
from ganforge.train.trainer import Trainer, TrainingDiverged

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

# gan-toy with small MLPs: no batch-dependent layer, so micro-batches must reproduce the whole batch's gradient.
TOY = {"networks.G.hidden": [16, 16], "networks.D.hidden": [16, 16], "train.batch_size": 16, "train.threads": 1,
       "train.log_every": 1000, "train.sample_every": 1000, "train.checkpoint_every": 1000, "train.grid_size": 4}


def trainer(tmp_path: Path, name: str = "run", recipe: str = "gan-toy", **over: Any) -> Trainer:
    run = tmp_path / name
    run.mkdir()
    return Trainer(build(load_config(recipe, {**TOY, **over})), run, progress=False)


def group_loss(t: Trainer, group: str = "D", scale: float = 1.0) -> torch.Tensor:
    """A loss of ``group``'s network on a fixed input (its graph is fresh on every call)."""
    x = torch.linspace(-1, 1, 16).reshape(8, 2)
    return scale * t.algorithm.nets[group](x).square().mean()


def grads(t: Trainer, group: str = "D") -> list[torch.Tensor]:
    return [p.grad.clone() for p in t.groups[group]]


def record_step_grads(t: Trainer) -> dict[str, list[list[torch.Tensor]]]:
    """Wrap every optimizer's step so it records the gradients it applies."""
    seen: dict[str, list[list[torch.Tensor]]] = {g: [] for g in t.optimizers}
    for g, opt in t.optimizers.items():
        def step(*args: Any, _g: str = g, _step: Any = opt.step, **kw: Any) -> Any:
            seen[_g].append([p.grad.clone() for p in t.groups[_g]])
            return _step(*args, **kw)
        opt.step = step
    return seen


# ---------------------------------------------------------------------------------------------------- micro-batches
def test_micro_batches_cover_the_batch_with_gains_that_sum_to_one() -> None:
    assert micro_batches(16, 1) == [(slice(0, 16), 1.0)]
    parts = micro_batches(10, 3)
    assert [(s.start, s.stop) for s, _ in parts] == [(0, 4), (4, 7), (7, 10)]
    assert [g for _, g in parts] == [0.4, 0.3, 0.3]
    with pytest.raises(ValueError, match="accumulate"):
        micro_batches(4, 5)


# ---------------------------------------------------------------------------------------------------- backward / step
def test_backward_accumulates_gain_times_the_gradient_and_the_step_applies_it(tmp_path: Path) -> None:
    t = trainer(tmp_path)
    D = t.algorithm.nets["D"]
    t.backward("D", group_loss(t))
    once = grads(t)
    t.backward("D", group_loss(t), gain=2.5)         # accumulates onto the first: 1 + 2.5
    for g, g1 in zip(grads(t), once):
        torch.testing.assert_close(g, 3.5 * g1)
    before = [p.detach().clone() for p in D.parameters()]
    t.optimizer_step("D")
    assert t.updates["D"] == 1 and all(p.grad is None for p in D.parameters())   # zero-grad after the step
    assert any(not torch.equal(a, p) for a, p in zip(before, D.parameters()))


def test_update_is_backward_then_step_and_a_new_update_starts_from_zero(tmp_path: Path) -> None:
    a, b = trainer(tmp_path, "a"), trainer(tmp_path, "b")
    for p in b.groups["D"]:     # gradients left by some other pass: the next update must not count them
        p.grad = torch.full_like(p, 7.0)
    a.apply_update("D", group_loss(a))
    b.backward("D", group_loss(b))
    b.optimizer_step("D")
    for pa, pb in zip(a.groups["D"], b.groups["D"]):
        assert torch.equal(pa, pb)
    assert torch.equal(a.optimizers["D"].state_dict()["state"][0]["exp_avg"],
                       b.optimizers["D"].state_dict()["state"][0]["exp_avg"])


def test_retain_graph_lets_one_graph_feed_two_losses(tmp_path: Path) -> None:
    t = trainer(tmp_path)
    out = t.algorithm.nets["D"](torch.ones(4, 2))
    t.backward("D", out.mean(), retain_graph=True)
    t.backward("D", out.square().mean(), gain=0.5)    # the same graph a second time
    t.optimizer_step("D")
    out = t.algorithm.nets["D"](torch.ones(4, 2))
    t.backward("D", out.mean())
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        t.backward("D", out.square().mean())


def test_a_step_without_backward_and_a_backward_without_step_are_refused(tmp_path: Path) -> None:
    t = trainer(tmp_path)
    with pytest.raises(RuntimeError, match="without a ctx.backward"):
        t.optimizer_step("D")

    D = t.algorithm.nets["D"]

    class Forgetful:
        name = "forgetful"

        def train_step(self, ctx: Any) -> dict[str, float]:
            ctx.backward("D", D(torch.ones(2, 2)).mean())
            return {}

    t.algorithm = Forgetful()
    with pytest.raises(RuntimeError, match="without a ctx.optimizer_step"):
        t.train_step()
    assert t.step == 0 and not t._pending


def test_the_nan_guard_sees_every_backward_of_an_update(tmp_path: Path) -> None:
    t = trainer(tmp_path, **{"train.nonfinite": "skip"})
    before = [p.detach().clone() for p in t.groups["D"]]
    t.backward("D", group_loss(t))
    t.backward("D", group_loss(t, scale=float("nan")))     # the second micro-batch's loss is NaN
    t.optimizer_step("D")
    assert t.nonfinite_skipped == 1 and t.updates["D"] == 0
    assert all(torch.equal(a, p) for a, p in zip(before, t.groups["D"]))
    s = trainer(tmp_path, "stop")
    s.backward("D", group_loss(s))
    s.backward("D", group_loss(s, scale=float("inf")), gain=0.5)
    with pytest.raises(TrainingDiverged, match="loss of optimizer group D is inf"):
        s.optimizer_step("D")


# ---------------------------------------------------------------------------------------------------- accumulation
@pytest.mark.parametrize("extra", [
    {},
    {"algorithm.d_update": "combined", "algorithm.r1_gamma": 1.0},
    {"algorithm.d_update": "separate", "algorithm.r1_gamma": 1.0, "algorithm.n_critic": 2},
    {"algorithm.historical_averaging": {"G": 0.5, "D": 0.5}, "algorithm.orthogonal_reg": {"G": 1e-2, "D": 1e-2}},
    {"algorithm.r1_gamma": 1.0, "algorithm.r1_every": 2, "train.batch_size": 15, "train.accumulate": 3},
])
def test_accumulating_micro_batches_gives_the_whole_batch_gradient(tmp_path: Path, extra: dict) -> None:
    parts = extra.get("train.accumulate", 2)
    runs = {n: trainer(tmp_path, f"acc{n}", **{**extra, "train.accumulate": n}) for n in (1, parts)}
    seen = {n: record_step_grads(t) for n, t in runs.items()}
    rng = {}
    for n, t in runs.items():
        torch.manual_seed(123)    # the noise comes from the global stream: the same for both runs
        t.train_step()
        rng[n] = torch.get_rng_state()
    for group in ("D", "G"):
        one, many = seen[1][group], seen[parts][group]
        assert len(one) == len(many) >= 1
        for update_one, update_many in zip(one, many):
            for g1, gn in zip(update_one, update_many):
                torch.testing.assert_close(gn, g1, rtol=1e-5, atol=1e-7)
    # the same noise was drawn (as many numbers, in the same order) and the same updates taken
    assert torch.equal(rng[1], rng[parts]) and runs[1].updates == runs[parts].updates
    # and the micro-batches were real: each of the D update's forward passes saw batch_size / parts samples
    sizes: list[int] = []
    D = runs[parts].algorithm.nets["D"]
    hook = D.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    runs[parts].train_step()
    hook.remove()
    rows = -(-runs[parts].cfg.train.batch_size // parts)
    assert max(sizes) == rows * (2 if extra.get("algorithm.d_update") == "combined" else 1)   # combined: real + fake


def test_accumulation_is_refused_where_it_cannot_be_done() -> None:
    with pytest.raises(ConfigError, match="algorithm 'triplegan' does not split its updates.*adversarial"):
        build(load_config("triplegan-mnist", {"train.accumulate": 2, "algorithm.labelled": 20}))
    with pytest.raises(ConfigError, match="train.accumulate=32 splits a batch of 16"):
        load_config("gan-toy", {**TOY, "train.accumulate": 32})
    with pytest.raises(ConfigError, match="train.accumulate must be >= 1"):
        load_config("gan-toy", {**TOY, "train.accumulate": 0})


# ---------------------------------------------------------------------------------------------------- lr_mult
def test_lr_mult_builds_param_groups_by_name_prefix_at_their_learning_rate(tmp_path: Path) -> None:
    t = trainer(tmp_path, **{"optim.G.lr_mult": {"G.net": 0.5, "G.net.4": 0.01}, "optim.G.lr": 1e-3})
    G = t.algorithm.nets["G"]
    groups = t.optimizers["G"].param_groups
    named = dict(G.named_parameters())
    assert [g.get("lr_mult") for g in groups] == [0.5, 0.01]          # every parameter matched: no plain group
    assert [id(p) for p in groups[1]["params"]] == [id(named["net.4.weight"]), id(named["net.4.bias"])]   # longest
    assert len(groups[0]["params"]) == 4
    t.train_step()
    assert [g["lr"] for g in groups] == [pytest.approx(5e-4), pytest.approx(1e-5)]
    assert len(t.optimizers["D"].param_groups) == 1 and "lr_mult" not in t.optimizers["D"].param_groups[0]
    # the multiplier is the optimizer's: an SGD step moves the 0.01x layer by exactly lr * mult * grad
    s = trainer(tmp_path, "sgd", **{"optim.G.name": "sgd", "optim.G.lr": 0.1, "optim.G.lr_mult": {"G.net.0": 0.01}})
    w = s.algorithm.nets["G"].net[0].weight
    before = w.detach().clone()
    s.backward("G", s.algorithm.nets["G"](torch.ones(3, 16)).square().mean())
    grad = w.grad.clone()
    s.optimizer_step("G")
    torch.testing.assert_close(w.detach(), before - 0.1 * 0.01 * grad)


def test_an_lr_mult_prefix_that_names_no_parameter_is_refused_at_build() -> None:
    with pytest.raises(ConfigError, match="optim.G.lr_mult: no parameter of group G is named 'G.mapping'.*G.net"):
        build(load_config("gan-toy", {**TOY, "optim.G.lr_mult": {"G.mapping": 0.01}}))
    with pytest.raises(ConfigError, match="optim.G.lr_mult"):
        load_config("gan-toy", {**TOY, "optim.G.lr_mult": {"G.net": 0.0}})
    with pytest.raises(ConfigError, match="optim.G.lr_mult"):   # the net prefix without its own dot boundary
        build(load_config("gan-toy", {**TOY, "optim.G.lr_mult": {"G.ne": 0.1}}))


# ---------------------------------------------------------------------------------------------------- lazy R1
class PiecesContext:
    """A StepContext that records each backward (group, loss, gain) and step, applying nothing."""

    def __init__(self, batch: torch.Tensor, step: int = 0):
        self.step, self.batch, self.accumulate = step, batch, 1
        self.calls: list[tuple[str, str, float, float]] = []

    def real_batch(self) -> Batch:
        return Batch(self.batch, None, main="vector")

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.backward(group, loss)
        self.optimizer_step(group)

    def backward(self, group: str, loss: torch.Tensor, gain: float = 1.0, retain_graph: bool = False) -> None:
        self.calls.append(("backward", group, float(loss.detach()), gain))

    def optimizer_step(self, group: str) -> None:
        self.calls.append(("step", group, 0.0, 0.0))


def test_lazy_r1_comes_every_k_critic_iterations_with_gain_k() -> None:
    cfg = load_config("gan-toy", {**TOY, "algorithm.r1_gamma": 10.0, "algorithm.r1_every": 4,
                                  "algorithm.n_critic": 2})
    algo = build(cfg).algorithm
    real = torch.randn(16, 2)
    with_r1 = []
    for step in range(4):     # critic iterations 0..7: R1 in 0 and 4, i.e. in steps 0 and 2
        ctx = PiecesContext(real, step)
        logs = algo.train_step(ctx)
        d_calls = [c for c in ctx.calls if c[1] == "D"]
        gains = [c[3] for c in d_calls if c[0] == "backward"]
        assert [c[0] for c in d_calls].count("step") == 2        # one optimizer step per critic iteration
        with_r1.append(4.0 in gains)
        if 4.0 in gains:
            assert gains == [1.0, 4.0, 1.0]
            r1 = [c[2] for c in d_calls if c[0] == "backward" and c[3] == 4.0][0]
            assert r1 > 0 and float(logs["r1"]) == pytest.approx(4 * r1 / 2, rel=1e-6)   # logged with gain, /n_critic
        else:
            assert gains == [1.0, 1.0] and "r1" not in logs
    assert with_r1 == [True, False, True, False]
    # the R1 term is the penalty itself, on the real batch (the weights did not move: the context applies nothing)
    ctx = PiecesContext(real, 0)
    algo.discriminator_step(ctx, iteration=8)
    r1 = [c[2] for c in ctx.calls if c[0] == "backward" and c[3] == 4.0][0]
    assert r1 == pytest.approx(float(r1_penalty(algo.nets["D"], real, 10.0).detach()), rel=1e-5)


def test_r1_every_1_is_the_one_update_with_r1_added() -> None:
    algo = build(load_config("gan-toy", {**TOY, "algorithm.r1_gamma": 10.0})).algorithm
    ctx = PiecesContext(torch.randn(16, 2))
    algo.train_step(ctx)
    assert [c[3] for c in ctx.calls if c[0] == "backward"] == [1.0, 1.0]     # D (loss + R1) and G: plain updates


def test_r1_every_needs_an_r1_and_a_positive_count() -> None:
    with pytest.raises(ConfigError, match="algorithm.r1_every=16 makes R1 lazy, but there is no R1"):
        build(load_config("gan-toy", {**TOY, "algorithm.r1_every": 16}))
    with pytest.raises(ConfigError, match="algorithm.r1_every must be >= 1"):
        build(load_config("gan-toy", {**TOY, "algorithm.r1_every": 0, "algorithm.r1_gamma": 1.0}))
