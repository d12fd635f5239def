"""The linear lr decay keeps its recorded horizon across ``--resume --steps N``: no jump, monotone, 0 at the end.

The rule (``train/trainer.py: lr_factor``): a group whose decay had not begun gets the schedule of a run started with
the new total (bit-identical to one); a group whose decay had begun falls linearly from the factor of its last
update to 0 at the new total. A resume that keeps the total changes nothing (bit-exact).
"""
from __future__ import annotations

import json

import pytest
import torch

import ganforge
from ganforge.config import OptimConfig
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer, TrainingInterrupted, lr_factor

LR = 1e-3
TOY = {"networks.G.hidden": [16], "networks.D.hidden": [16], "train.batch_size": 16, "train.grid_size": 4,
       "train.log_every": 2, "train.sample_every": 100, "train.checkpoint_every": 100,
       "optim.D.schedule": "linear", "optim.D.decay_steps": 6, "optim.G.schedule": "linear", "optim.G.decay_steps": 2}


def test_lr_factor_by_hand():
    c = OptimConfig(lr=1.0, schedule="linear", decay_steps=4)
    # 10 steps: 1 until the last 4 steps, then 4/4 ... 1/4, and 0 at the horizon
    assert [lr_factor(c, 0, s, 10) for s in range(11)] == [1, 1, 1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25, 0.0]
    # continued from factor 0.5 at step 8 towards a horizon of 12: 0.5 * (12 - s) / 4
    assert [lr_factor(c, 0, s, 12, anchor=(8, 0.5)) for s in range(8, 13)] == [0.5, 0.375, 0.25, 0.125, 0.0]
    assert lr_factor(OptimConfig(schedule="inverse_time", decay=0.5), 2, 7, 10) == 0.5
    assert lr_factor(OptimConfig(), 5, 5, 10) == 1.0


def _lrs(trainer, seen):
    # after each step: the lr the last update of each group used, keyed by step
    seen[trainer.step] = {g: o.param_groups[0]["lr"] for g, o in trainer.optimizers.items()}


def _interrupt_at(step, seen):
    def hook(trainer):
        _lrs(trainer, seen)
        if trainer.step == step:
            trainer._on_signal(2, None)
    return hook


def _weights(run_dir):
    return read_checkpoint(latest_checkpoint(run_dir), with_training=False)[0]


def test_same_horizon_resume_is_bit_exact(tmp_path, one_thread):
    straight = ganforge.train("gan-toy", steps=8, out=tmp_path / "a", progress=False, overrides=TOY)
    with pytest.raises(TrainingInterrupted):
        ganforge.train("gan-toy", steps=8, out=tmp_path / "b", progress=False, overrides=TOY,
                       on_step=_interrupt_at(5, {}))     # inside D's decay (steps 2..7)
    ganforge.train(resume=tmp_path / "b", progress=False)
    a, b = _weights(straight.run_dir), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = json.loads((latest_checkpoint(tmp_path / "b") / "state.json").read_text())["state"]
    assert state["lr_schedule"] == {"horizon": 8, "anchors": {}}


@pytest.mark.parametrize("legacy", [False, True], ids=["recorded", "checkpoint-without-horizon"])
def test_longer_horizon_has_no_jump_and_ends_at_zero(tmp_path, one_thread, legacy, monkeypatch):
    seen: dict[int, dict[str, float]] = {}
    if legacy:   # checkpoints written before the horizon was recorded: the run's previous train.steps stands in
        recorded = Trainer.json_state
        monkeypatch.setattr(Trainer, "json_state",
                            lambda self: {k: v for k, v in recorded(self).items() if k != "lr_schedule"})
    with pytest.raises(TrainingInterrupted):
        ganforge.train("gan-toy", steps=8, out=tmp_path / "r", progress=False, overrides=TOY,
                       on_step=_interrupt_at(5, seen))
    state = json.loads((latest_checkpoint(tmp_path / "r") / "state.json").read_text())["state"]
    assert ("lr_schedule" in state) != legacy
    monkeypatch.undo()
    finals = []
    ganforge.train(resume=tmp_path / "r", steps=20, progress=False,
                   on_step=lambda t: (_lrs(t, seen), finals.append(t.lr_factor("D", 20)) if t.step == 20 else None))
    d = [seen[s]["D"] for s in range(1, 21)]
    # before the resume: constant, then D's decay of 6 steps over an 8-step horizon (steps 2, 3, 4 of 0..7)
    assert d[:5] == pytest.approx([LR, LR, LR * 6 / 6, LR * 5 / 6, LR * 4 / 6])
    step_decrement = LR / 6
    assert 0 < d[4] - d[5] <= step_decrement * (1 + 1e-9)          # no jump at the resume (old code: back to LR)
    assert all(later <= earlier for earlier, later in zip(d, d[1:]))  # monotone
    assert finals == [0.0] and d[-1] == pytest.approx(d[4] / 16)   # linear to 0 at step 20 from step 4's factor
    # G's decay (2 steps) had not begun at step 5: it moves to the new end, as in a run started with 20 steps
    g = [seen[s]["G"] for s in range(1, 21)]
    assert g[:18] == [LR] * 18 and g[18:] == pytest.approx([LR, LR / 2])


def test_longer_horizon_before_any_decay_equals_a_run_started_with_it(tmp_path, one_thread):
    straight = ganforge.train("gan-toy", steps=12, out=tmp_path / "a", progress=False, overrides=TOY)
    with pytest.raises(TrainingInterrupted):
        ganforge.train("gan-toy", steps=8, out=tmp_path / "b", progress=False, overrides=TOY,
                       on_step=_interrupt_at(2, {}))     # both decays still ahead
    ganforge.train(resume=tmp_path / "b", steps=12, progress=False)
    a, b = _weights(straight.run_dir), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
