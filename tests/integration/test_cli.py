"""The command line end to end: train -> sample -> info, and every bad input is one line, exit 2, nothing lost."""
from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

FAST = ["--no-progress", "--set", "train.batch_size=8", "--set", "train.log_every=2", "--set", "train.sample_every=2",
        "--set", "train.grid_size=4", "--set", "networks.G.hidden=[16]", "--set", "networks.D.hidden=[16]"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from unittest import mock
    from ganforge.cli import main
    out = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", "gan-mlp-mnist", "--steps", "4", "--out", str(out), *FAST]
    # The run's README records the command line from sys.argv; in-process that would be pytest's own.
    with mock.patch.object(sys, "argv", ["ganforge", *args]):
        assert main(args) == 0
    return out


def test_train_writes_a_complete_run_directory(trained):
    for name in ("config.yaml", "run.json", "README.md", "metrics.jsonl", "report.html", "checkpoints/latest",
                 "samples/step-00000000.png", "samples/step-00000004.png"):
        assert (trained / name).exists(), name
    readme = (trained / "README.md").read_text()
    assert f"ganforge train gan-mlp-mnist --steps 4 --out {trained}" in readme, readme   # how it was launched
    assert "<svg" in (trained / "report.html").read_text()


def test_sample_png_and_npz(trained, tmp_path, capsys):
    code, out, _ = run_cli(["sample", trained, "--n", "10", "--out", tmp_path / "g.png"], capsys)
    assert code == 0 and Image.open(tmp_path / "g.png").size[0] > 28
    code, _, _ = run_cli(["sample", trained, "--n", "10", "--seed", "3", "--out", tmp_path / "s.npz"], capsys)
    arr = np.load(tmp_path / "s.npz")["arr_0"]
    assert code == 0 and arr.shape == (10, 28, 28, 1) and arr.dtype == np.uint8
    run_cli(["sample", trained, "--n", "10", "--seed", "3", "--out", tmp_path / "t.npz"], capsys)
    assert np.array_equal(arr, np.load(tmp_path / "t.npz")["arr_0"])          # same seed, same samples


def test_python_api_load_sample(trained):
    import ganforge
    model = ganforge.load(trained)
    x = model.sample(5, seed=1)
    assert x.shape == (5, 1, 28, 28) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert model.images(3).shape == (3, 28, 28, 1)


def test_info(trained, capsys):
    code, out, _ = run_cli(["info", trained], capsys)
    assert code == 0 and "step 4 of 4" in out and "gan-mlp-mnist" in out


def _one_line_error(code, err, fragment):
    assert code == 2, err
    assert err.startswith("ganforge: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert fragment in err, err


@pytest.mark.parametrize("args, fragment", [
    (["train", "dcgan-mnst"], "unknown recipe"),
    (["train", "dcgan-mnist", "--set", "train.bogus=1"], "unknown config key 'train.bogus'"),
    (["train", "dcgan-mnist", "--set", "train.batch_size=abc"], "train.batch_size must be int"),
    (["train", "dcgan-mnist", "--set", "train.batch_size=-4"], "train.batch_size must be >= 1"),
    (["train", "dcgan-mnist", "--data", "idx:/nonexistent/dir"], "/nonexistent/dir"),
    (["train", "dcgan-mnist", "--data", "bogus:xyz"], "unknown data source"),
    (["train", "dcgan-mnist", "--set", "data.image_size=30"], "divisible by 4"),
    (["train"], "give a recipe"),
    (["sample", "/nonexistent/run", "--out", "x.png"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(args, fragment, capsys, tmp_path):
    code, _, err = run_cli([*args, "--out", tmp_path / "o"] if args[0] == "train" else args, capsys)
    _one_line_error(code, err, fragment)


def test_corrupt_idx_file(tmp_path, capsys):
    d = tmp_path / "mnist"
    d.mkdir()
    header = (0x00000803).to_bytes(4, "big") + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + b"\0" * 500)                     # far fewer bytes than 100 images need
    code, _, err = run_cli(["train", "dcgan-mnist", "--data", f"idx:{d}", "--out", tmp_path / "o"], capsys)
    _one_line_error(code, err, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "o").exists()                    # nothing created for a run that cannot start


def test_corrupt_image_in_folder(tmp_path, capsys):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(d / "a.png")
    (d / "b.png").write_bytes(b"\x89PNG not really")
    code, _, err = run_cli(["train", "dcgan-mnist", "--data", f"folder:{d}", "--out", tmp_path / "o"], capsys)
    _one_line_error(code, err, "b.png")


def test_existing_output_dir_is_not_touched(trained, tmp_path, capsys):
    before = {p: p.read_bytes() for p in trained.rglob("*") if p.is_file()}
    code, _, err = run_cli(["train", "gan-mlp-mnist", "--steps", "2", "--out", trained, *FAST], capsys)
    _one_line_error(code, err, "--resume")
    after = {p: p.read_bytes() for p in trained.rglob("*") if p.is_file()}
    assert before == after


def test_force_moves_the_old_run_aside(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "gan-mlp-mnist", "--steps", "2", "--out", out, *FAST], capsys)[0] == 0
    assert run_cli(["train", "gan-mlp-mnist", "--steps", "2", "--out", out, "--force", *FAST], capsys)[0] == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "latest").is_file()


def test_truncated_checkpoint_on_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", "gan-mlp-mnist", "--steps", "2", "--out", out, *FAST], capsys)[0] == 0
    w = out / "checkpoints" / "step-00000002" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    code, _, err = run_cli(["train", "--resume", out, "--steps", "4", "--no-progress"], capsys)
    _one_line_error(code, err, "truncated or corrupt")
    code, _, err = run_cli(["sample", out, "--out", tmp_path / "x.png"], capsys)
    _one_line_error(code, err, "truncated or corrupt")


def test_resume_refuses_model_changes(trained, capsys):
    code, _, err = run_cli(["train", "--resume", trained, "--set", "optim.D.lr=0.1"], capsys)
    _one_line_error(code, err, "cannot change optim.D.lr")


def test_sample_bad_extension(trained, capsys, tmp_path):
    code, _, err = run_cli(["sample", trained, "--out", tmp_path / "x.jpg"], capsys)
    _one_line_error(code, err, ".png")


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ganforge", "train", "nope", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_help_lists_every_command(capsys):
    from ganforge.cli import main
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("list", "train", "sample", "info"):
        assert cmd in out


def test_list_gives_each_recipe_its_citation_and_long_gives_the_whole_source(capsys):
    from ganforge.config import read_recipe, recipe_names
    from ganforge.report.citations import name_sources
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    cites = [line for line in out.splitlines() if "cites: " in line]
    assert len(cites) == len(recipe_names())
    flat = " ".join(out.split())                 # citations wrap at 100 columns
    assert "cites: Atienza, Advanced Deep Learning with TensorFlow 2 and Keras, ch. 5; Radford et al." in flat
    code, out, _ = run_cli(["list", "--long"], capsys)
    began = name_sources(read_recipe("began-mnist")["source"])
    assert code == 0 and " ".join(began.split()) in " ".join(out.split())
