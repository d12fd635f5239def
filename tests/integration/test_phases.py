"""train.phases: a schedule (resolution, fade-in alpha, batch size) the algorithm reads from ctx.phase, for ProGAN.

A probe family (test_streams' 1x1-conv translator on 8x8 test pairs) trains at the phase's resolution (its batch
average-pooled to ``phase.image_size``), weights its loss by the fade-in ``alpha``, and records what each step saw.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.algorithms.base import Algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.phases import phase_at

from conftest import assert_same_checkpoint
from test_streams import register_toy

SEEN: list[tuple[int, int, float, int, int]] = []      # (step, phase index, alpha, batch rows, resolution)
ENTERED: list[tuple[int, float]] = []                  # (phase index, alpha) each time enter_phase is called


class PhaseProbe(Algorithm):
    name = "test-phase-probe"
    roles = {"G": "test-translator"}
    optimizer_groups = {"G": ("G",)}
    ema_networks = ("G",)
    needs_keys = ("target",)

    def enter_phase(self, phase):
        super().enter_phase(phase)
        ENTERED.append((phase.index, phase.alpha))

    def train_step(self, ctx):
        batch, phase = ctx.real_batch(), ctx.phase
        size = phase.image_size or batch["image"].shape[-1]
        factor = batch["image"].shape[-1] // size
        x, y = F.avg_pool2d(batch["image"], factor), F.avg_pool2d(batch["target"], factor)
        loss = phase.alpha * (self.nets["G"](x) - y).abs().mean()
        ctx.update("G", loss)
        SEEN.append((ctx.step, phase.index, phase.alpha, len(x), x.shape[-1]))
        return {"g_loss": loss.detach()}

    def sample_inputs(self, n, generator, device, **controls):
        return {"image": torch.zeros(n, 1, 8, 8, device=device)}

    def generate(self, inputs, nets=None):
        return (nets or self.nets)["G"](inputs["image"])


PHASES = [{"name": "4px", "steps": 3, "image_size": 4, "batch_size": 2},
          {"name": "8px-fade", "steps": 4, "image_size": 8, "batch_size": 6, "fade_steps": 4},
          {"name": "8px", "image_size": 8}]


@pytest.fixture
def probe(monkeypatch, tmp_path):
    register_toy(monkeypatch, PhaseProbe)
    SEEN.clear()
    ENTERED.clear()
    recipe = tmp_path / "probe.yaml"
    recipe.write_text(json.dumps({"name": "probe", "algorithm": {"name": "test-phase-probe"},
                                  "networks": {"G": {"arch": "conv1"}}, "optim": {"G": {"lr": 1e-2}}}))
    torch.set_num_threads(1)
    return str(recipe), {"data.source": "test-pairs:1", "train.batch_size": 4, "train.phases": PHASES,
                         "train.log_every": 1, "train.sample_every": 5, "train.checkpoint_every": 100,
                         "train.threads": 1}


def test_each_step_sees_its_phase_resolution_alpha_and_batch_size(probe, tmp_path):
    recipe, over = probe
    run = ganforge.train(recipe, steps=10, out=tmp_path / "r", progress=False, overrides=over)
    assert [s[0] for s in SEEN] == list(range(10))
    assert [s[1] for s in SEEN] == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert [s[2] for s in SEEN] == [1, 1, 1, 0.25, 0.5, 0.75, 1, 1, 1, 1]      # linear fade-in over 4 steps
    assert [s[3] for s in SEEN] == [2, 2, 2, 6, 6, 6, 6, 4, 4, 4]              # the last phase: train.batch_size
    assert [s[4] for s in SEEN] == [4, 4, 4, 8, 8, 8, 8, 8, 8, 8]
    # the algorithm is told each change once (the step-0 grid, each phase, each fade-in step); the step-5 grid is
    # made in the phase that trained it
    assert ENTERED == [(0, 1.0), (1, 0.25), (1, 0.5), (1, 0.75), (1, 1.0), (2, 1.0)]
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    assert [(r["step"], r["phase"], r["alpha"]) for r in train][2:5] == [(3, 0, 1.0), (4, 1, 0.25), (5, 1, 0.5)]
    # a loaded run knows the phase it last trained in
    assert ganforge.load(run.run_dir).algorithm.phase.name == "8px"


def test_the_batch_size_schedule_draws_the_one_sampler_stream(probe, tmp_path):
    """Varying batch sizes take consecutive stretches of the same shuffled order: nothing skipped or repeated in
    an epoch, so resuming replays it."""
    from ganforge.build import build
    from ganforge.train.trainer import Trainer
    recipe, over = probe
    t = Trainer(build(load_config(recipe, over)), tmp_path / "r", progress=False)
    drawn = []
    for step in range(4):
        t.step = step
        drawn.append(t.next_batch())
    sizes = [len(b.x) for b in drawn]
    assert sizes == [2, 2, 2, 6]
    # 12 rows of a 16-row epoch: all distinct rows of the data
    rows = torch.cat([b.x for b in drawn]).flatten(1)
    assert len({tuple(r.tolist()) for r in rows}) == 12


@pytest.mark.parametrize("stop", [2, 5, 8])     # inside the first phase, mid fade-in, in the last phase
def test_resume_mid_phase_is_bit_exact(probe, tmp_path, stop):
    recipe, over = probe
    straight = ganforge.train(recipe, steps=10, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train(recipe, steps=stop, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=10, progress=False)
    assert_same_checkpoint(read_checkpoint(latest_checkpoint(straight.run_dir)),
                           read_checkpoint(latest_checkpoint(resumed.run_dir)))


@pytest.mark.parametrize("phases, message", [
    ([{"steps": 3}, {"name": "b", "steps": 0}], r"train.phases\[1\].steps must be >= 1"),
    ([{"image_size": 4}, {"image_size": 8}], r"train.phases\[0\].steps is missing: every phase but the last"),
    ([{"steps": 3, "fade_steps": 4}, {}], r"train.phases\[0\].fade_steps must be between 0 and the phase's steps"),
    ([{"name": "a", "steps": 3}, {"name": "a"}], r"train.phases\[1\].name 'a' is used by an earlier phase"),
    ([{"steps": 3, "batch_size": 0}, {}], r"train.phases\[0\].batch_size must be >= 1"),
    ([{"steps": 3, "stepz": 1}], r"unknown config key 'train.phases\[0\].stepz' \(did you mean 'steps'\?\)"),
])
def test_a_schedule_that_cannot_run_is_one_line(phases, message):
    with pytest.raises(ConfigError, match=message):
        load_config("gan-toy", {"train.phases": phases})


def test_accumulation_must_fit_every_phase_batch():
    with pytest.raises(ConfigError, match=r"train.accumulate=4 splits the batch of 2 of train.phases\[0\]"):
        load_config("gan-toy", {"train.accumulate": 4, "train.phases": [{"steps": 2, "batch_size": 2}, {}]})


def test_phase_at_without_phases_and_past_the_last_phase_length():
    assert phase_at([], 5) is None
    cfg = load_config("gan-toy", {"train.phases": [{"steps": 2}, {"steps": 3, "fade_steps": 2}]})
    late = phase_at(cfg.train.phases, 50)
    assert (late.index, late.step_in_phase, late.alpha, late.name) == (1, 48, 1.0, "phase 1")
