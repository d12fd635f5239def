"""Shared fixtures. Every test runs with a private cache directory and without a progress bar.

The cache is private to the test session (so the domain classifier is trained once per session, from its seed).
Developers re-running tests may set ``GANFORGE_TEST_CACHE`` to a directory to keep that cache between sessions.
"""
from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    cache = os.environ.get("GANFORGE_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("GANFORGE_CACHE", cache)
    # train.precision: auto would pick bf16 on a CPU with AMX and fp32 on one without: pinned to fp32 so that every
    # margin in the suite means the same on both (tests/unit/test_precision.py unpins it to test the choice).
    monkeypatch.setenv("GANFORGE_AUTO_PRECISION", "fp32")
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread: tiny networks only lose time to thread hand-offs, and CI has 2 shared cores."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def run_cli(args, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    from ganforge.cli import main
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------------------- learning margins
# Every learning test states its effect through ``learned``: the assertion message names the figure with observed
# value and bound, and with GANFORGE_MARGIN_LOG=FILE each check appends a JSON line (test, figure, observed, bound,
# margin) so the margins can be tabulated on each CPU kind (AVX2 EPYC, AVX-512/AMX Xeon). GANFORGE_TEST_SEED=S reruns
# every recipe with train.seed=S, to see a margin over several seeds; unset, the recipes' own seeds are used.
def learned(figure: str, observed: float, bound: float, higher: bool = True, chance: float | None = None) -> None:
    """Assert ``observed`` beats ``bound`` (above it, or below it with ``higher=False``), naming both on failure.

    The margin logged is how far beyond the bound the effect is: with ``chance`` (what no learning gives: 0.1 for a
    10-class accuracy, 1.0 for a trained/untrained ratio) the effect over chance divided by the effect the bound
    demands; without it the plain ratio observed/bound (bound/observed for ``higher=False``)."""
    import json
    ok = observed > bound if higher else observed < bound
    if chance is not None:
        margin = (observed - chance) / (bound - chance) if bound != chance else float("inf")
    else:
        margin = (observed / bound if higher else bound / observed) if bound and observed else float("inf")
    log = os.environ.get("GANFORGE_MARGIN_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(log, "a") as fh:
            fh.write(json.dumps({"test": test, "figure": figure, "observed": observed, "bound": bound,
                                 "higher": higher, "chance": chance, "margin": margin,
                                 "seed": os.environ.get("GANFORGE_TEST_SEED")}) + "\n")
    assert ok, f"{figure}: observed {observed:.4g}, bound {'>' if higher else '<'} {bound:.4g}"


@pytest.fixture(autouse=True)
def _test_seed(monkeypatch):
    seed = os.environ.get("GANFORGE_TEST_SEED")
    if seed is None:
        yield
        return
    import ganforge.config as config
    original = config.build_config

    def with_seed(raw):
        raw = dict(raw)
        raw["train"] = {**(raw.get("train") or {}), "seed": int(seed)}
        return original(raw)

    monkeypatch.setattr(config, "build_config", with_seed)
    yield


# ------------------------------------------------------------------------------------------- shared assertions
def expect_data_error(call, *fragments: str) -> str:
    """Run ``call``; it must raise a one-line DataError (exit code 2) containing every fragment."""
    from ganforge.errors import DataError, GanforgeError
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    assert isinstance(info.value, GanforgeError) and info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def assert_same_checkpoint(a: tuple, b: tuple, rng_key: str = "torch") -> None:
    """Two checkpoints, as ``read_checkpoint`` returns them, hold bit-identical training: step and update counts,
    every weight, every optimizer state tensor and the RNG state (``rng_key``: ``torch_ranks`` under torchrun)."""
    (wa, ta, sa), (wb, tb, sb) = a, b
    assert sa["step"] == sb["step"] and sa["updates"] == sb["updates"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for g in ta["optimizers"]:
        for i, st in ta["optimizers"][g]["state"].items():
            for name, v in st.items():
                assert torch.equal(v, tb["optimizers"][g]["state"][i][name]), (g, i, name)
    assert torch.equal(ta["rng"][rng_key], tb["rng"][rng_key])


def straight_and_resumed(recipe: str, tmp_path, overrides: dict, steps: int = 4, first: int = 2) -> tuple[tuple, tuple]:
    """Checkpoints of ``recipe`` trained ``steps`` steps straight (``tmp_path/a``) and ``first`` steps, then resumed
    to ``steps`` (``tmp_path/b``), as ``read_checkpoint`` returns them: ``assert_same_checkpoint`` them."""
    import ganforge
    from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
    straight = ganforge.train(recipe, steps=steps, out=tmp_path / "a", progress=False, overrides=overrides)
    ganforge.train(recipe, steps=first, out=tmp_path / "b", progress=False, overrides=overrides)
    resumed = ganforge.train(resume=tmp_path / "b", steps=steps, progress=False)
    return read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))


class RecordingContext:
    """A StepContext that hands out one fixed real batch (whatever stream is asked for) and records each update's
    loss (detached, float64) instead of stepping: the weights stay as they were, so unit tests can recompute the
    losses directly and compare."""

    def __init__(self, batch):
        self.batch, self.step, self.accumulate, self.phase, self.updates = batch, 0, 1, None, []

    def real_batch(self, stream: str = "main"):
        return self.batch

    def autocast(self):
        import contextlib
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.updates.append((group, loss.detach().double()))


class TwoDomainSGDContext:
    """A StepContext over fixed batches of streams main (A) and b (B) that applies plain SGD updates and records
    each loss and a copy of the networks as they were when it was computed (two-domain families: CycleGAN, CoGAN).
    ``d_grads_in_g_step``: the gradients the G step left on the networks of optimizer group D (None when frozen)."""

    def __init__(self, algo, a: torch.Tensor, b: torch.Tensor, lr: float = 0.05):
        from ganforge.algorithms.base import Batch
        self.algo, self.batches, self.step, self.lr = algo, {"main": Batch(a, None), "b": Batch(b, None)}, 0, lr
        self.losses, self.nets, self.d_grads_in_g_step = {}, {}, None

    def real_batch(self, stream: str = "main"):
        return self.batches[stream]

    def autocast(self):
        import contextlib
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        import copy
        self.nets[group] = copy.deepcopy(dict(self.algo.nets))
        params = [p for k in self.algo.optimizer_groups[group] for p in self.algo.nets[k].parameters()]
        for p in self.algo.parameters():
            p.grad = None
        loss.backward()
        if group == "G":   # D's weights are frozen during the G step: no gradient reaches them
            self.d_grads_in_g_step = [p.grad for k in self.algo.optimizer_groups["D"]
                                      for p in self.algo.nets[k].parameters()]
        self.losses[group] = loss.detach().clone()
        with torch.no_grad():
            for p in params:
                p -= self.lr * p.grad
