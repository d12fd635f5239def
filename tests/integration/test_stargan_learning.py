"""StarGAN on three digit domains mixed in one set: bit-exact resume, the grid's columns, translate through the model
API. (No learning-signal test yet: see the report; bench/stargan_digits.py measures it.)"""
from __future__ import annotations

import pytest
from PIL import Image

import ganforge
from ganforge.data import load_source
from ganforge.errors import ConfigError
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "networks.G.filters": 4, "networks.G.n_blocks": 1, "networks.D.filters": 4, "train.batch_size": 4,
        "algorithm.n_critic": 2, "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}


def test_resume_is_bit_exact_and_the_grid_shows_every_domain(tmp_path):
    straight = ganforge.train("stargan-digits", steps=4, out=tmp_path / "a", progress=False, overrides=TINY)
    ganforge.train("stargan-digits", steps=2, out=tmp_path / "b", progress=False, overrides=TINY)
    resumed = ganforge.train(resume=tmp_path / "b", steps=4, progress=False)
    assert_same_checkpoint(read_checkpoint(latest_checkpoint(straight.run_dir)),
                           read_checkpoint(latest_checkpoint(resumed.run_dir)))
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "input | to plain | to negative | to edges"
    model = ganforge.load(straight.run_dir)
    digits = load_source("mnist5k?split=test", seed=0).x[:3]
    assert model.translate(digits, to="edges").shape == (3, 1, 28, 28)
    with pytest.raises(ConfigError, match="unknown domain"):
        model.translate(digits, to="thick")
