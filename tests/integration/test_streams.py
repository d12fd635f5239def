"""Several named data streams (data.streams), the held-out stream for grids, and input | output | target grids.

A toy translation family defined here (a 1x1-conv "translator" learning target = 255 - image on a registered test
source with image and target fields) draws from the main stream and from stream ``b``, and samples from data.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import ganforge
from ganforge.algorithms.base import ALGORITHMS, Algorithm
from ganforge.build import build
from ganforge.config import load_config
from ganforge.data import base as data_base
from ganforge.data.base import Dataset, to_model_range, to_uint8
from ganforge.errors import ConfigError, DataError
from ganforge.models.registry import role_registry
from ganforge.report.grid import panel_rows
from ganforge.data.sampler import BatchSampler
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer, stream_seed

from conftest import assert_same_checkpoint


def _pairs(arg: str, seed: int) -> Dataset:
    """``test-pairs:K``: 16 random 1 x 8 x 8 images (generator seed K) and their negatives as targets."""
    g = torch.Generator().manual_seed(int(arg or 0))
    x = torch.randint(0, 256, (16, 1, 8, 8), generator=g, dtype=torch.uint8)
    return Dataset(x=x, y=None, name=f"test-pairs:{arg}", fields={"target": 255 - x})


class Translator(nn.Module):
    value_range = (-1.0, 1.0)

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


class ToyTranslation(Algorithm):
    name = "test-translate"
    roles = {"G": "test-translator"}
    optimizer_groups = {"G": ("G",)}
    ema_networks = ("G",)
    needs_keys = ("target",)
    streams = ("b",)
    stream_needs_keys = {"b": ("target",)}
    samples_from_data = True

    def train_step(self, ctx):
        a, b = ctx.real_batch(), ctx.real_batch("b")
        g = self.nets["G"]
        loss = (g(a["image"]) - a["target"]).abs().mean() + (g(b["image"]) - b["target"]).abs().mean()
        ctx.update("G", loss)
        return {"g_loss": loss.detach()}

    def sample_inputs(self, n, generator, device, batch=None, **controls):
        if batch is None:
            raise ValueError("test-translate samples from data: give batch=")
        return {"image": batch["image"][:n].to(device), "target": batch["target"][:n].to(device)}

    def generate(self, inputs, nets=None):
        return (nets or self.nets)["G"](inputs["image"])

    def grid_panels(self, inputs, nets):
        return {"input": inputs["image"], "output": self.generate(inputs, nets), "target": inputs["target"]}


def register_toy(mp: pytest.MonkeyPatch, algorithm: type[Algorithm] = ToyTranslation) -> None:
    """Register the test source ``test-pairs:K``, the ``conv1`` translator and ``algorithm`` under its name, until
    ``mp`` is undone (other test files register their own toy families with it)."""
    mp.setitem(data_base.SOURCES._entries, "test-pairs", (_pairs, "test pairs"))
    mp.setitem(data_base.SOURCE_KEYS, "test-pairs", ("image", "target"))
    mp.setitem(data_base.SOURCE_ARGUMENT, "test-pairs", True)
    mp.setitem(role_registry("test-translator")._entries, "conv1", (Translator, "test"))
    mp.setitem(ALGORITHMS._entries, algorithm.name, (algorithm, "test"))


@pytest.fixture
def toy(monkeypatch):
    """The test source, network and algorithm, registered for one test only."""
    register_toy(monkeypatch)


RECIPE = {"name": "toy-translate", "algorithm": {"name": "test-translate"},
          "networks": {"G": {"arch": "conv1"}}, "optim": {"G": {"lr": 1e-2}}}


def _config(tmp_path, **overrides):
    path = tmp_path / "toy.yaml"
    path.write_text(json.dumps(RECIPE))
    over = {"data.source": "test-pairs:1", "data.streams.b.source": "test-pairs:2", "data.streams.b.batch_size": 3,
            "data.streams.b.sampling": "replacement", "data.held_out": "test-pairs:3", "train.batch_size": 4,
            "train.grid_size": 5, "train.log_every": 2, "train.sample_every": 100, "train.checkpoint_every": 100,
            "train.threads": 1, **overrides}
    return str(path), {k: v for k, v in over.items() if v is not None}


def test_a_missing_or_unfit_stream_is_one_line_naming_the_fix(toy, tmp_path):
    recipe, over = _config(tmp_path)
    del over["data.streams.b.source"], over["data.streams.b.batch_size"], over["data.streams.b.sampling"]
    with pytest.raises(DataError, match=r"draws from data stream 'b', which the config lacks; add it with "
                                        r"--set data.streams.b.source=SOURCE \(a source yielding target: "):
        build(load_config(recipe, over))
    over["data.streams.b.source"] = "mnist5k"
    with pytest.raises(DataError, match="needs batches with target from data stream 'b', but mnist5k yields "
                                        "image, label"):
        build(load_config(recipe, over))
    with pytest.raises(ConfigError, match="data.streams.main: the main stream is data.source"):
        load_config(recipe, {**over, "data.streams.main.source": "mnist5k"})
    with pytest.raises(ConfigError, match="data.streams.c.source is missing"):
        load_config(recipe, {**over, "data.streams.c.batch_size": 4})
    with pytest.raises(ConfigError, match="data.held_out and data.streams.held_out are both set"):
        load_config(recipe, {**over, "data.streams.held_out.source": "test-pairs:4"})


def test_each_stream_has_its_own_seeded_sampler_and_batch_size(toy, tmp_path):
    recipe, over = _config(tmp_path)
    t = Trainer(build(load_config(recipe, over)), tmp_path / "r", progress=False)
    a, b = t.next_batch(), t.next_batch("b")
    assert a.x.shape == (4, 1, 8, 8) and b.x.shape == (3, 1, 8, 8)
    # stream b's rows are stream b's data (test-pairs:2), in the model's range, target still the negative
    b_data = to_model_range(_pairs("2", 0).x, (-1.0, 1.0))
    assert all(any(torch.equal(row, d) for d in b_data) for row in b.x)
    torch.testing.assert_close(b["target"], -b["image"])
    # its order comes from a generator seeded by the run seed and its name; the main order is the one a run
    # without streams has
    assert stream_seed(0, "b") == stream_seed(0, "b") != stream_seed(0, "a") != stream_seed(1, "b")
    g = torch.Generator().manual_seed(stream_seed(0, "b"))
    assert torch.equal(b.x, b_data[torch.randint(16, (3,), generator=g)])
    plain_sampler = BatchSampler(16, 4, "shuffle", seed=0)
    assert torch.equal(a.x, to_model_range(_pairs("1", 0).x, (-1.0, 1.0))[plain_sampler.next()])
    # the held-out stream is never sampled for training
    with pytest.raises(KeyError, match="not trained on"):
        t.next_batch("held_out")


def test_resume_with_two_streams_is_bit_identical(toy, tmp_path):
    torch.set_num_threads(1)
    recipe, over = _config(tmp_path)
    straight = ganforge.train(recipe, steps=6, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train(recipe, steps=3, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert "b" in a[1]["streams"]          # stream b's data order is in the checkpoint ...
    assert_same_checkpoint(a, b)           # ... and restored: weights, optimizer moments, both data orders
    assert a[1]["streams"]["b"]["generator"].equal(b[1]["streams"]["b"]["generator"])
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["data"]["streams"]["b"]["keys"] == ["image", "target"]
    # the run's model loads for sampling with its streams' description
    model = ganforge.load(straight.run_dir)
    assert set(model.algorithm.data.streams) == {"b", "held_out"}


def test_held_out_grid_shows_input_output_target_of_a_fixed_batch(toy, tmp_path):
    recipe, over = _config(tmp_path)
    cfg = load_config(recipe, over)
    t = Trainer(build(cfg), tmp_path / "r", progress=False)
    held = _pairs("3", 0).x
    # train.grid_size rows of the held-out data, chosen deterministically (the same for every trainer of the run)
    rows = t.held_out_batch["image"]
    again = Trainer(build(cfg), tmp_path / "r2", progress=False).held_out_batch["image"]
    assert rows.shape == (5, 1, 8, 8) and torch.equal(rows, again)
    as_uint8 = to_uint8(rows, (-1.0, 1.0))
    assert all(any(torch.equal(r, h) for h in held) for r in as_uint8)
    train_rows = _pairs("1", 0).x
    assert not any(torch.equal(r, h) for r in as_uint8 for h in train_rows)
    (tmp_path / "r").mkdir()
    path = t.write_samples()
    img = Image.open(path)
    assert img.text["columns"] == "input | output | target"
    scale = 64 // 8
    arr = np.asarray(img)[::scale, ::scale]      # undo the nearest-neighbour enlargement
    assert arr.shape == (5 * 10 + 2, 3 * 10 + 2)  # 5 rows (samples) x 3 columns, 8 px cells, 2 px padding

    def cell(r: int, c: int) -> torch.Tensor:
        return torch.from_numpy(arr[2 + r * 10:2 + r * 10 + 8, 2 + c * 10:2 + c * 10 + 8].copy())

    with torch.no_grad():
        out = to_uint8(t.algorithm.generate({"image": rows}, t.sampling_nets()), (-1.0, 1.0))
    for r in range(5):
        assert torch.equal(cell(r, 0), as_uint8[r, 0])          # input
        assert torch.equal(cell(r, 1), out[r, 0])               # output of the sampling (EMA) network
        assert torch.equal(cell(r, 2), 255 - as_uint8[r, 0])    # target


def test_without_a_held_out_stream_the_grid_comes_from_the_main_data(toy, tmp_path):
    recipe, over = _config(tmp_path, **{"data.held_out": None})
    t = Trainer(build(load_config(recipe, over)), tmp_path / "r", progress=False)
    main = _pairs("1", 0).x
    assert all(any(torch.equal(r, h) for h in main) for r in to_uint8(t.held_out_batch["image"], (-1.0, 1.0)))


def test_panel_rows_line_up_panels_of_other_sizes_and_channels():
    small = torch.arange(2 * 1 * 2 * 2, dtype=torch.uint8).view(2, 1, 2, 2)
    big = torch.full((2, 3, 4, 4), 200, dtype=torch.uint8)
    out = panel_rows({"lowres": small, "output": big})
    assert out.shape == (4, 3, 4, 4)
    # row i is sample i of each panel, in order; the small grey one nearest-upscaled and repeated to RGB
    assert torch.equal(out[1], big[0]) and torch.equal(out[2][0, ::2, ::2], small[1, 0])
    assert torch.equal(out[0][0], out[0][2])
    with pytest.raises(ValueError, match="has 1 images"):
        panel_rows({"a": small, "b": big[:1]})


def test_a_stream_of_another_kind_than_the_main_data_is_refused(toy, tmp_path):
    recipe, over = _config(tmp_path, **{"data.streams.b.source": "toy:ring8"})
    with pytest.raises(DataError, match="data.streams.b: data source toy:ring8 holds vectors but the main data "
                                        "test-pairs:1 images"):
        build(load_config(recipe, over))


def test_a_configured_stream_the_algorithm_never_draws_is_one_warning(toy, tmp_path, caplog):
    recipe, over = _config(tmp_path)
    over["data.streams.extra.source"] = "test-pairs:4"          # the toy translator draws main and b only
    with caplog.at_level("WARNING", logger="ganforge.train.trainer"):
        ganforge.train(recipe, steps=50, out=tmp_path / "r", progress=False, overrides=over)
    warned = [r.getMessage() for r in caplog.records if "never drew" in r.getMessage()]
    assert warned == ["ganforge: warning: data.streams.extra is configured but algorithm 'test-translate' "
                      "never drew from it in 50 steps (it drew from main, b); remove it, or check the stream's name"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="ganforge.train.trainer"):   # every configured stream drawn: silent
        ganforge.train(recipe, steps=50, out=tmp_path / "r2", progress=False, overrides=_config(tmp_path)[1])
    assert not [r for r in caplog.records if "never drew" in r.getMessage()]
