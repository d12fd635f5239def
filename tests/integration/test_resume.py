"""Stop and resume: N straight steps == M steps + resume + (N - M) steps, bit for bit, on CPU.

Covers optimizer moments, Keras inverse-time lr decay, BN running statistics, dropout RNG, EMA, the data
order (shuffle and with-replacement) and an interruption by signal in the middle of a run.
"""
from __future__ import annotations

import pytest
import torch

import ganforge
from ganforge.train.trainer import TrainingInterrupted
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint

SMALL = {"train.batch_size": 8, "train.log_every": 2, "train.sample_every": 4, "train.checkpoint_every": 100,
         "train.grid_size": 4}


def _final(run_dir):
    weights, training, state = read_checkpoint(latest_checkpoint(run_dir))
    return weights, training, state


_assert_identical = assert_same_checkpoint


@pytest.mark.parametrize("recipe, extra", [
    # BN + dropout in D, separate real/fake updates, Adam, replacement sampling, EMA on
    ("dcgan-fashion", {"networks.G.filters": [16, 8], "networks.D.filters": [8, 8, 8, 8], "train.ema.enabled": True,
                       "train.ema.decay": 0.9}),
    # Keras RMSprop with inverse-time decay, combined batch, BN in eval mode for fakes, shuffle sampling
    ("gan-mlp-mnist", {"networks.G.hidden": [32], "networks.D.hidden": [16], "data.sampling": "shuffle",
                       "algorithm.fake_bn": "eval", "optim.D.name": "rmsprop", "optim.D.schedule": "inverse_time",
                       "optim.D.decay": 0.01}),
])
def test_resume_is_bit_identical(tmp_path, recipe, extra):
    torch.set_num_threads(1)
    over = {**SMALL, **extra}
    straight = ganforge.train(recipe, steps=7, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train(recipe, steps=3, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=7, progress=False)
    assert resumed.steps == straight.steps == 7
    _assert_identical(_final(straight.run_dir), _final(resumed.run_dir))
    # metrics were continued: strictly increasing steps, no line repeated after the resume
    import json
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 7


def test_interrupt_then_resume_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    over = {**SMALL, "networks.G.hidden": [32], "networks.D.hidden": [16]}
    straight = ganforge.train("gan-mlp-mnist", steps=6, out=tmp_path / "a", progress=False, overrides=over)

    def interrupt_at_4(trainer):
        if trainer.step == 4:
            trainer._on_signal(2, None)   # what SIGINT does: finish this step, checkpoint, stop

    with pytest.raises(TrainingInterrupted) as e:
        ganforge.train("gan-mlp-mnist", steps=6, out=tmp_path / "b", progress=False, overrides=over,
                       on_step=interrupt_at_4)
    assert e.value.step == 4 and e.value.checkpoint.name == "step-00000004"
    ganforge.train(resume=tmp_path / "b", progress=False)
    _assert_identical(_final(straight.run_dir), _final(tmp_path / "b"))
