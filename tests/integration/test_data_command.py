"""`ganforge data SOURCE`: what a source yields, without training (counts, keys, shapes, classes, splits, a grid)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import Dataset, register_source
from tests.conftest import run_cli

PAIRS = "test-pairs"


def pairs(n: int = 6) -> Dataset:
    """Paired 1 x 16 x 16 images with a 3 x 16 x 16 target, an 8 x 8 lowres input, domains and a vocabulary:
    every kind of field ``ganforge data`` reports, with values the test can check pixel by pixel."""
    image = (torch.arange(n, dtype=torch.uint8) * 10 + 5).view(n, 1, 1, 1).expand(n, 1, 16, 16).contiguous()
    target = torch.zeros(n, 3, 16, 16, dtype=torch.uint8)
    target[:, 0] = 200                                      # red targets
    lowres = torch.full((n, 1, 8, 8), 90, dtype=torch.uint8)
    lowres[:, :, :4] = 250                                  # top half bright: upscaled, the top 8 rows
    domain = torch.tensor([0, 1, 1, 0, 1, 1][:n])
    return Dataset(x=image, y=torch.arange(n) % 2, name=PAIRS, class_names=["odd", "even"],
                   meta={"domains": ["serif", "sans"], "vocab": ["<pad>", "<unk>", "a", "b", "c"]},
                   fields={"target": target, "lowres": lowres, "domain": domain})


@pytest.fixture
def pairs_source():
    from ganforge.data import base
    register_source(PAIRS, "paired test images: test-pairs[?split=train|test]",
                    keys=("image", "label", "target", "lowres", "domain"))(lambda arg, seed: pairs())
    yield PAIRS
    base.SOURCES._entries.pop(PAIRS, None)
    base.SOURCE_KEYS.pop(PAIRS, None)


def data_json(capsys, *args) -> dict:
    code, out, err = run_cli(["data", *args, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def grid_size(n: int, cell_h: int, cell_w: int, scale: int) -> tuple[int, int]:
    """(width, height) of report.tile's grid: ceil(sqrt(n)) cells a row, 2 pixels around each, then scaled."""
    nrow = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / nrow))
    return ((nrow * (cell_w + 2) + 2) * scale, (rows * (cell_h + 2) + 2) * scale)


def test_mnist5k_and_its_test_split(capsys, tmp_path):
    code, out, err = run_cli(["data", "mnist5k"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "mnist5k: 5000 samples, image data"
    assert "image, label" in out and "uint8 (1, 28, 28), values 0..255" in out and "int64 scalar, values 0..9" in out
    assert "10: 0 500, 1 500, 2 500" in out and "train, test" in out
    facts = data_json(capsys, "mnist5k?split=test", "--grid", tmp_path / "g.png", "--n", "10")
    assert facts["count"] == 1000 and facts["keys"] == ["image", "label"]
    assert facts["fields"]["image"] == {"shape": [1, 28, 28], "dtype": "uint8", "min": 0, "max": 255}
    assert facts["fields"]["label"] == {"shape": [], "dtype": "int64", "min": 0, "max": 9}
    assert facts["classes"]["counts"] == [100] * 10 and facts["classes"]["names"] == [str(i) for i in range(10)]
    assert facts["splits"] == ["train", "test"] and facts["grid_shows"] == "10 samples: image"
    # 10 digits: 4 a row, 3 rows of 28 + 2 pixels, shown at 2x (64 // 28) as `ganforge sample` does
    assert Image.open(tmp_path / "g.png").size == grid_size(10, 28, 28, 2) == (244, 184)


def test_toy_ring8(capsys, tmp_path):
    facts = data_json(capsys, "toy:ring8", "--grid", tmp_path / "ring.png")
    assert facts["count"] == 100000 and facts["kind"] == "vector" and facts["keys"] == ["vector", "label"]
    f = facts["fields"]["vector"]
    assert f["shape"] == [2] and f["dtype"] == "float32" and 1.9 < f["max"] < 2.2 and -2.2 < f["min"] < -1.9
    assert facts["classes"]["count"] == 8 and sum(facts["classes"]["counts"]) == 100000
    assert facts["splits"] == [] and facts["grid_shows"] == "100000 points over the mode centres"
    assert Image.open(tmp_path / "ring.png").size == (400, 400)


def test_npz_given_as_a_bare_path(capsys, tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(3, 251, size=(12, 20, 20, 3), dtype=np.uint8)     # NHWC, as `ganforge sample` writes
    labels = np.array([0, 1, 2] * 4)
    np.savez(tmp_path / "mine.npz", arr_0=arr, labels=labels)
    code, out, err = run_cli(["data", tmp_path / "mine.npz", "--grid", tmp_path / "mine.png", "--n", "5"], capsys)
    assert code == 0, err
    assert f"(npz:{tmp_path / 'mine.npz'}): 12 samples, image data" in out
    assert f"uint8 (3, 20, 20), values {arr.min()}..{arr.max()}" in out
    facts = data_json(capsys, tmp_path / "mine.npz")
    assert facts["resolved"] == f"npz:{tmp_path / 'mine.npz'}" and facts["classes"]["counts"] == [4, 4, 4]
    assert (facts["fields"]["image"]["min"], facts["fields"]["image"]["max"]) == (int(arr.min()), int(arr.max()))
    # 5 images of 20 x 20: 3 a row, 2 rows, at 3x (64 // 20)
    assert Image.open(tmp_path / "mine.png").size == grid_size(5, 20, 20, 3) == (204, 138)


def test_a_paired_source_shows_every_field_and_its_grid(pairs_source, capsys, tmp_path):
    facts = data_json(capsys, pairs_source, "--grid", tmp_path / "pairs.png", "--n", "4")
    assert facts["count"] == 6 and facts["keys"] == ["image", "label", "target", "lowres", "domain"]
    assert facts["fields"]["image"] == {"shape": [1, 16, 16], "dtype": "uint8", "min": 5, "max": 55}
    assert facts["fields"]["target"] == {"shape": [3, 16, 16], "dtype": "uint8", "min": 0, "max": 200}
    assert facts["fields"]["lowres"] == {"shape": [1, 8, 8], "dtype": "uint8", "min": 90, "max": 250}
    assert facts["classes"] == {"count": 2, "names": ["odd", "even"], "counts": [3, 3]}
    assert facts["domains"] == {"count": 2, "names": ["serif", "sans"], "counts": [2, 4]}
    assert facts["vocab_size"] == 5 and facts["splits"] == ["train", "test"]
    assert facts["grid_shows"] == "4 samples: lowres | image | target"
    # each cell: lowres upscaled to 16 x 16 | image | target, 48 x 16; 2 a row, 2 rows; at 4x (64 // 16)
    grid = np.asarray(Image.open(tmp_path / "pairs.png").convert("RGB"))
    assert grid.shape[1::-1] == grid_size(4, 16, 48, 4) == (408, 152)
    cell = grid[2 * 4:18 * 4, 2 * 4:50 * 4]                  # the first sample, without the padding
    low, img, tgt = cell[:, :64], cell[:, 64:128], cell[:, 128:]
    assert (low[:32] == 250).all() and (low[32:] == 90).all()        # nearest upscaling: 4 rows -> 8 -> 32 px
    assert (img == 5).all()                                          # gray image 0 repeated to RGB
    assert (tgt[..., 0] == 200).all() and (tgt[..., 1:] == 0).all()
    second = grid[2 * 4:18 * 4, 52 * 4:100 * 4]
    assert (second[:, 64:128] == 15).all()                           # sample 1's image, next in the row
    code, out, err = run_cli(["data", pairs_source], capsys)
    assert code == 0, err
    words = " ".join(out.split())                              # the columns' widths aside
    assert "domains 2: serif 2, sans 4" in words and "vocab 5 tokens" in words
    assert "target uint8 (3, 16, 16), values 0..200" in words and "lowres uint8 (1, 8, 8), values 90..250" in words


def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path):
    for args in (["data", "bogus-source"], ["data", tmp_path / "missing.npz"], ["data", "mnist5k?split=nope"],
                 ["data", "mnist5k", "--grid", tmp_path / "g.jpg"], ["data", "mnist5k", "--grid",
                 tmp_path / "g.png", "--n", "0"], ["data", "mnist5k", "--n", "8"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("ganforge: error: ")
    assert not (tmp_path / "g.png").exists()
