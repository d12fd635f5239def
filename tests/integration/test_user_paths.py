"""What a new user does first, end to end: evaluate a run and see it in its report and in `info`; sample a grid
per class; wait for the first evaluation on new data; print a recipe's config; point --data at a bare folder;
read `ganforge list`. Every run here is tiny (a few steps of small networks)."""
from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest
import yaml
from PIL import Image

import ganforge
from conftest import run_cli

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000}
TOY = {**QUIET, "networks.G.hidden": [16], "networks.D.hidden": [16], "train.batch_size": 16, "train.grid_size": 16}
TINY_IMAGES = {**QUIET, "data.image_size": 16, "networks.G.filters": [16, 8, 4], "networks.D.filters": [4, 4, 4, 8],
               "train.batch_size": 8, "train.grid_size": 4}


def one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2 and err.startswith("ganforge: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


# ----------------------------------------------------------------------------------- 1. eval of a run directory
def test_eval_of_a_run_keeps_a_history_updates_the_report_and_info(tmp_path, capsys, monkeypatch):
    run = ganforge.train("gan-toy", steps=4, out=tmp_path / "toy", progress=False, overrides=TOY).run_dir
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = run_cli(["eval", run, "--n", "300"], capsys)
    assert code == 0, err
    assert re.search(r"^  step\s+4$", out, re.M) and re.search(r"^  n\s+300 samples$", out, re.M), out
    assert re.search(r"^  reference\s+toy:ring8$", out, re.M), out
    first = json.loads((run / "evals" / "step-00000004.json").read_text())
    assert first["step"] == 4 and first["n"] == 300 and "modes_covered" in first
    assert json.loads((run / "eval.json").read_text()) == first
    page = (run / "report.html").read_text()
    assert "<table class='evals'>" in page and "modes covered" in page
    code, out, err = run_cli(["info", run, "--json"], capsys)
    assert code == 0, err
    last = json.loads(out)["last_eval"]
    assert last["step"] == 4 and last["origin"] == "ganforge eval" and last["n"] == 300

    ganforge.train(resume=run, steps=8, progress=False)
    code, _, err = run_cli(["eval", run, "--n", "200"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (run / "evals").iterdir()) == ["step-00000004.json", "step-00000008.json"]
    assert json.loads((run / "eval.json").read_text())["step"] == 8
    table = (run / "report.html").read_text().split("<table class='evals'>")[1].split("</table>")[0]
    assert table.count("<tr>") == 3                                   # header + both evaluations
    assert not (work / "eval.json").exists()                         # nothing dropped into the working directory


def test_eval_of_a_data_source_prints_only_unless_json_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["eval", "toy:ring8", "--ref", "toy:ring8", "--n", "400"], capsys)
    assert code == 0, err
    assert "modes covered" in out and "--json-out" in out and list(tmp_path.iterdir()) == []
    code, out, err = run_cli(["eval", "toy:ring8", "--n", "400", "--json-out", "ring.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "ring.json").read_text())["modes_covered"] == 8


# ----------------------------------------------------------------------------------- 2. sample grids fill rows
@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cgan") / "run"
    return ganforge.train("cgan-mnist", steps=2, out=out, progress=False, overrides=TINY_IMAGES).run_dir


def test_labels_default_n_gives_every_class_a_full_row(cgan_run, tmp_path, capsys):
    code, out, err = run_cli(["sample", cgan_run, "--labels", "0-9", "--out", tmp_path / "x.npz"], capsys)
    assert code == 0, err
    z = np.load(tmp_path / "x.npz")
    assert z["arr_0"].shape[0] == 100 and np.bincount(z["labels"]).tolist() == [10] * 10
    assert (z["labels"].reshape(10, 10) == np.arange(10)[:, None]).all()       # row r is class r
    code, _, err = run_cli(["sample", cgan_run, "--labels", "1,3,7", "--per-row", "4", "--out", tmp_path / "y.png"],
                           capsys)
    assert code == 0 and Image.open(tmp_path / "y.png").size[0] > Image.open(tmp_path / "y.png").size[1], err
    code, _, err = run_cli(["sample", cgan_run, "--labels", "1,3,7", "--per-row", "4", "--n", "24", "--out",
                            tmp_path / "z.npz"], capsys)
    assert code == 0 and np.bincount(np.load(tmp_path / "z.npz")["labels"]).tolist() == [0, 8, 0, 8, 0, 0, 0, 8]


def test_an_n_that_leaves_out_classes_or_cuts_a_row_is_refused(cgan_run, tmp_path, capsys):
    code, _, err = run_cli(["sample", cgan_run, "--labels", "0-9", "--n", "64", "--out", tmp_path / "x.png"], capsys)
    one_line_error(code, err, "--n 64", "--n 100", "10 classes")
    code, _, err = run_cli(["sample", cgan_run, "--labels", "0-9", "--n", "150", "--out", tmp_path / "x.png"], capsys)
    one_line_error(code, err, "--n 100 or --n 200")
    code, _, err = run_cli(["sample", cgan_run, "--code", "c1=-2:2", "--per-row", "5", "--n", "12", "--out",
                            tmp_path / "x.png"], capsys)
    one_line_error(code, err, "--code c1=-2:2", "--n 10 or --n 15")
    assert not (tmp_path / "x.png").exists()


def test_code_traversal_default_n_is_ten_full_rows(tmp_path, capsys):
    over = {**TINY_IMAGES, "algorithm.latent_dim": 8}
    run = ganforge.train("infogan-mnist", steps=2, out=tmp_path / "info", progress=False, overrides=over).run_dir
    code, out, err = run_cli(["sample", run, "--code", "c1=-2:2", "--per-row", "7", "--out", tmp_path / "c.npz"],
                             capsys)
    assert code == 0, err
    assert np.load(tmp_path / "c.npz")["arr_0"].shape[0] == 70 and "wrote 70 samples" in out


# ----------------------------------------------------------------------------------- 3. the first evaluation
def bars(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: a horizontal bar, class 1: a vertical one, at random positions, over noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (n, size, size, 1)).astype(np.uint8)
    y = np.arange(n) % 2
    for i in range(n):
        k = rng.integers(2, size - 4)
        if y[i] == 0:
            x[i, k:k + 3, :, 0] = 255
        else:
            x[i, :, k:k + 3, 0] = 255
    return x, y


def test_first_eval_on_new_data_shows_progress_and_the_classifier_accuracy(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "fresh-cache"))
    x, y = bars(200)
    np.savez(tmp_path / "bars.npz", arr_0=x, labels=y)
    args = ["eval", tmp_path / "bars.npz", "--ref", tmp_path / "bars.npz", "--metrics", "fid,kid,classes"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "training the domain evaluator for" in err and "cached in" in err
    quarters = re.findall(r"^ganforge:   training the .* evaluator: (\d+) %", err, re.M)
    assert quarters == ["25", "50", "75", "100"], err              # stderr is not a terminal here: plain lines
    meta = json.loads(next((tmp_path / "fresh-cache" / "domain").glob("*.json")).read_text())
    acc = f"{100 * meta['test_accuracy']:.3g}"
    assert f"held-out accuracy {100 * meta['test_accuracy']:.1f} %" in err
    assert re.search(rf"^  classifier acc\.\s+{re.escape(acc)} % on {meta['test_size']} held-out images", out, re.M)
    assert meta["test_accuracy"] >= 0.9 and "unreliable" not in out  # bars are easy to tell apart
    for label in ("reference", "features", "n", "KID (x10^3)", "FID"):
        assert re.search(rf"^  {re.escape(label)}\s", out, re.M), (label, out)
    code, out2, err2 = run_cli(args, capsys)                         # cached: no training, the same table
    assert code == 0 and "training the domain evaluator" not in err2 and out2 == out


def test_a_weak_classifier_is_flagged_in_the_table():
    from ganforge.metrics.evaluate import format_table
    text = format_table({"target": "x.npz", "n": 500, "ref": "folder:imgs", "n_ref": 300, "features": "domain",
                         "source": "folder:imgs", "train_size": 240, "test_accuracy": 0.61, "test_size": 60,
                         "fid": 12.3456, "kid": 0.0012345, "kid_std": 0.0001})
    assert "61.0 % on 60 held-out images; below 90 %" in text and "unreliable" in text
    assert re.search(r"^  KID \(x10\^3\)\s+1\.23 ± 0\.100$", text, re.M) and re.search(r"^  FID\s+12\.3$", text, re.M)


def test_progress_on_a_terminal_is_a_bar():
    import io
    from ganforge.metrics.domain import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, log = Tty(), io.StringIO()
    for stream in (tty, log):
        bar = Progress(8, "training", stream=stream)
        for _ in range(8):
            bar.update()
        bar.close()
    assert "\r" in tty.getvalue() and "25 %" not in tty.getvalue()
    assert log.getvalue().count("\n") == 4 and "\r" not in log.getvalue()


# ----------------------------------------------------------------------------------- 4. --print-config
def test_print_config_shows_every_key_and_touches_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["train", "dcgan-mnist", "--print-config", "--steps", "7", "--set",
                              "networks.D.leaky_slope=0.1", "--out", tmp_path / "never"], capsys)
    assert code == 0, err
    assert list(tmp_path.iterdir()) == []                             # no run directory, no runs/
    cfg = yaml.safe_load(out)
    assert cfg["train"]["steps"] == 7 and cfg["networks"]["D"]["leaky_slope"] == 0.1
    # defaults the recipe does not mention are written out too
    assert cfg["networks"]["D"]["filters"] == [32, 64, 128, 256] and cfg["networks"]["G"]["kernel_size"] == 5
    assert "gp_weight" in cfg["algorithm"] and cfg["train"]["ema"]["enabled"] is False
    # and the printed file trains as it is
    (tmp_path / "mine.yaml").write_text(out)
    from ganforge.algorithms import DataInfo
    from ganforge.build import build_algorithm
    from ganforge.config import load_config
    info = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10, class_names=tuple("0123456789"))
    assert build_algorithm(load_config(str(tmp_path / "mine.yaml")), info).nets["D"] is not None
    code, _, err = run_cli(["train", "dcgan-mnist", "--print-config", "--set", "networks.D.dropout=0.3"], capsys)
    one_line_error(code, err, "networks.D.dropout")


def test_the_readme_set_examples_exist_on_the_flagship_recipes(capsys):
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    para = readme[readme.index("`--set` takes any dotted key"):readme.index("Unknown keys")]
    examples = re.findall(r"`--set ([\w.]+=[^`]+)`", para)
    assert len(examples) >= 3 and any(e.startswith("networks.D.") for e in examples), para
    for recipe in ("dcgan-mnist", "dcgan-mnist-quick"):
        for example in examples:
            code, _, err = run_cli(["train", recipe, "--print-config", "--set", example], capsys)
            assert code == 0, (recipe, example, err)


# ----------------------------------------------------------------------------------- 5. bare paths as --data
def write_idx(folder, n=20):
    folder.mkdir()
    images = np.random.default_rng(0).integers(0, 255, (n, 28, 28)).astype(np.uint8)
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write((0x803).to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write((0x801).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(i % 10 for i in range(n)))


def test_bare_paths_are_detected(tmp_path, capsys):
    from ganforge.data import load_source, resolve_source
    from ganforge.errors import DataError
    write_idx(tmp_path / "mnist")
    np.savez(tmp_path / "x.npz", arr_0=np.zeros((5, 28, 28, 1), np.uint8))
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "imgs" / "a.png")
    assert resolve_source(str(tmp_path / "mnist")) == f"idx:{tmp_path / 'mnist'}"
    assert resolve_source(str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz")).startswith("idx:")
    assert resolve_source(str(tmp_path / "x.npz")) == f"npz:{tmp_path / 'x.npz'}"
    assert resolve_source(f"{tmp_path / 'imgs'}?size=8") == f"folder:{tmp_path / 'imgs'}?size=8"
    assert resolve_source("mnist5k?split=test") == "mnist5k?split=test" and resolve_source("toy:ring8") == "toy:ring8"
    assert len(load_source(str(tmp_path / "mnist"))) == 20 and len(load_source(str(tmp_path / "x.npz"))) == 5
    assert load_source(f"{tmp_path / 'imgs'}?size=8").x.shape == (1, 1, 8, 8)
    with pytest.raises(DataError, match="no such file or folder"):
        load_source(str(tmp_path / "nope" / "imgs"))


def test_a_folder_says_what_it_loaded_once(tmp_path, capsys):
    from ganforge.data import load_source
    root = tmp_path / "pets"
    for cls, sizes in (("cat", [(28, 28)] * 3 + [(40, 32)] * 2), ("dog", [(28, 28)] * 2 + [(56, 56)])):
        (root / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            Image.fromarray(np.full((h, w), 100, np.uint8)).save(root / cls / f"{i}.png")
    capsys.readouterr()
    ds = load_source(str(root))
    err = capsys.readouterr().err
    assert ds.name == f"folder:{root}" and len(ds) == 8 and ds.class_names == ["cat", "dog"]
    assert err.count("\n") == 1 and err.startswith(f"ganforge: folder:{root}: 8 images"), err
    for fragment in ("2 classes: cat 5, dog 3", "28x28 (5)", "40x32 (2)", "56x56 (1)", "2 non-square centre-cropped",
                     "3 resized to 28x28", "loaded as 8 x 1 x 28 x 28"):
        assert fragment in err, (fragment, err)
    assert ds.meta["summary"] in err
    load_source(str(root))
    assert capsys.readouterr().err == ""                                     # said once


def test_train_on_a_bare_folder(tmp_path, capsys):
    (tmp_path / "digits").mkdir()
    for i in range(16):
        Image.fromarray(np.full((28, 28), 16 * i, np.uint8)).save(tmp_path / "digits" / f"{i:02d}.png")
    code, _, err = run_cli(["train", "gan-mlp-mnist", "--data", tmp_path / "digits", "--steps", "2", "--no-progress",
                            "--out", tmp_path / "run", "--set", "networks.G.hidden=[16]", "--set",
                            "networks.D.hidden=[16]", "--set", "train.batch_size=8", "--set", "train.grid_size=4"],
                           capsys)
    assert code == 0, err
    assert err.count("16 images, no class subfolders (unlabelled)") == 1, err
    code, _, err = run_cli(["train", "gan-mlp-mnist", "--data", tmp_path / "nope/", "--out", tmp_path / "r2"], capsys)
    one_line_error(code, err, "no such file or folder")


# ----------------------------------------------------------------------------------- 6. ganforge list
@pytest.mark.parametrize("flags", [[], ["--long"], ["--all"]])
def test_list_fits_100_columns_by_family_and_names_the_texts(flags, capsys):
    from ganforge.config import recipe_names
    from ganforge.report.citations import FAMILIES
    code, out, _ = run_cli(["list", *flags], capsys)
    assert code == 0
    too_long = [line for line in out.splitlines() if len(line) > 100]
    assert not too_long, too_long
    assert "seed 00" not in out and "spec 0." not in out and "[R]" not in out
    for _, heading in FAMILIES:
        assert f"\n{heading}\n" in out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert sorted(n for n in listed if n in recipe_names()) == recipe_names()      # each recipe exactly once
