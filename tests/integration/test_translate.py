"""``ganforge translate``: users' images (a file, a folder, an npz) through a translation model, in the same order.

The family is test_streams' toy translator (a 1x1 conv learning target = 255 - image on 8x8 grey images) with a
``translate`` that takes a direction: AtoB is the trained network, BtoA its input unchanged, so that which way ran
can be read off the outputs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.controls import unknown_controls

from conftest import run_cli
from test_streams import RECIPE, ToyTranslation, register_toy


class TwoWayToy(ToyTranslation):
    name = "test-translate-two-way"
    translate_controls = ("direction",)

    def translate(self, inputs, nets=None, direction=None, **controls):
        unknown_controls(controls, self.translate_controls, f"'{self.name}'")
        return self.generate({"image": inputs}, nets) if direction in (None, "AtoB") else inputs


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A toy translation run trained to near-negation (registered only while it trains and in each test)."""
    mp = pytest.MonkeyPatch()
    register_toy(mp, TwoWayToy)
    tmp = tmp_path_factory.mktemp("translate")
    recipe = tmp / "toy.yaml"
    recipe.write_text(json.dumps({**RECIPE, "algorithm": {"name": "test-translate-two-way"}}))
    torch.set_num_threads(1)
    over = {"data.source": "test-pairs:1", "data.streams.b.source": "test-pairs:2", "data.held_out": "test-pairs:3",
            "train.batch_size": 8, "train.grid_size": 4, "train.threads": 1, "optim.G.lr": 0.05}
    run = ganforge.train(str(recipe), steps=150, out=tmp / "run", progress=False, overrides=over)
    mp.undo()
    return run.run_dir


@pytest.fixture
def registered(monkeypatch, run_dir):
    register_toy(monkeypatch, TwoWayToy)
    return run_dir


def _images(n: int, seed: int, size: int = 8, channels: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed)
    return g.integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def test_an_npz_comes_back_translated_in_the_same_order(registered, tmp_path, capsys):
    x = _images(20, 0)
    np.savez(tmp_path / "in.npz", arr_0=x)
    code, out, err = run_cli(["translate", registered, "--input", tmp_path / "in.npz", "--out",
                              tmp_path / "out.npz", "--batch-size", 7], capsys)
    assert code == 0, err
    assert "translated 20 images" in out and "resized" not in out
    y = np.load(tmp_path / "out.npz")["arr_0"]
    assert y.shape == x.shape and y.dtype == np.uint8
    # the toy learned the negative: each output is its own input's negative (not a neighbour's), to a few levels
    err_own = np.abs(y.astype(int) - (255 - x.astype(int))).mean()
    err_shifted = np.abs(y.astype(int) - (255 - np.roll(x, 1, axis=0).astype(int))).mean()
    assert err_own < 12 and err_shifted > 4 * err_own
    # the same as the API's Model.translate, batched differently
    model = ganforge.load(registered)
    api = model.translate(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(api, y)
    # BtoA (here the identity) is a different, recognisable mapping
    code, out, err = run_cli(["translate", registered, "--input", tmp_path / "in.npz", "--out",
                              tmp_path / "back.npz", "--direction", "BtoA"], capsys)
    assert code == 0 and np.array_equal(np.load(tmp_path / "back.npz")["arr_0"], x)


def test_a_folder_comes_back_as_same_named_pngs_resized_and_converted(registered, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    grey = _images(2, 1)
    Image.fromarray(grey[0, :, :, 0]).save(src / "a.png")
    Image.fromarray(np.repeat(grey[0], 3, axis=-1)).save(src / "b.png")            # RGB of the same grey image
    Image.fromarray(_images(1, 2, size=16)[0, :, :, 0]).save(src / "c.png")       # another size
    (src / "notes.txt").write_text("not an image")
    code, out, err = run_cli(["translate", registered, "--input", src, "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    assert "converted 1 of 3 images to the model's 1 channel(s)" in out
    assert "resized 1 of 3 images to the model's 8x8 input" in out
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a.png", "b.png", "c.png"]
    a, b = (np.asarray(Image.open(tmp_path / "out" / n)) for n in ("a.png", "b.png"))
    assert a.shape == (8, 8) and np.array_equal(a, b)       # RGB of a grey image = that grey image (luma)
    assert np.asarray(Image.open(tmp_path / "out" / "c.png")).shape == (16, 16)   # back to its own size
    assert np.abs(a.astype(int) - (255 - grey[0, :, :, 0].astype(int))).mean() < 12


def test_one_file_to_one_png(registered, tmp_path, capsys):
    x = _images(1, 3)[0, :, :, 0]
    Image.fromarray(x).save(tmp_path / "one.png")
    code, out, err = run_cli(["translate", registered, "--input", tmp_path / "one.png", "--out",
                              tmp_path / "res" / "one-out.png"], capsys)
    assert code == 0, err
    y = np.asarray(Image.open(tmp_path / "res" / "one-out.png"))
    assert y.shape == (8, 8) and np.abs(y.astype(int) - (255 - x.astype(int))).mean() < 12


@pytest.mark.parametrize("args, message", [
    (["--input", "{tmp}/missing.npz", "--out", "{tmp}/o.npz"], "does not exist"),
    (["--input", "{tmp}/float.npz", "--out", "{tmp}/o.npz"], "arr_0 is float32 of shape [2, 8, 8, 1]"),
    (["--input", "{tmp}/noarr.npz", "--out", "{tmp}/o.npz"], "has no arr_0 (it has images)"),
    (["--input", "{tmp}/bad.png", "--out", "{tmp}/o.png"], "not a readable image"),
    (["--input", "{tmp}/in.npz", "--out", "{tmp}/o.png"], "is one image file but --input has 3 images"),
    (["--input", "{tmp}/in.npz", "--out", "{tmp}/o.jpg"], "translations are written as PNG"),
    (["--input", "{tmp}/in.npz", "--out", "{tmp}/o.npz", "--to", "cats"], "does not take sampling control(s) to"),
    (["--input", "{tmp}/in.npz", "--out", "{tmp}/o.npz", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["--input", "{tmp}/mixed", "--out", "{tmp}/o.npz"], "different sizes"),
])
def test_bad_input_is_one_line_and_exit_2(registered, tmp_path, capsys, args, message):
    np.savez(tmp_path / "in.npz", arr_0=_images(3, 4))
    np.savez(tmp_path / "float.npz", arr_0=np.zeros((2, 8, 8, 1), np.float32))
    np.savez(tmp_path / "noarr.npz", images=_images(2, 4))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(_images(1, 5)[0, :, :, 0]).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(_images(1, 5, size=12)[0, :, :, 0]).save(tmp_path / "mixed" / "b.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli(["translate", registered, *[a.format(tmp=tmp_path) for a in args]], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before     # nothing written


def test_a_model_that_samples_from_noise_does_not_translate(tmp_path, capsys):
    torch.set_num_threads(1)
    run = ganforge.train("gan-toy", steps=2, out=tmp_path / "toy", progress=False, overrides={"train.threads": 1})
    np.savez(tmp_path / "in.npz", arr_0=_images(2, 0))
    code, out, err = run_cli(["translate", run.run_dir, "--input", tmp_path / "in.npz", "--out",
                              tmp_path / "o.npz"], capsys)
    assert code == 2 and "generates from noise; it does not translate images" in err
    assert not (tmp_path / "o.npz").exists()
