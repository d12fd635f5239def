"""A corpus of hostile input: every case is refused with one line on stderr, exit status 2, no traceback, no hang,
and nothing written (no --out directory, no file next to the input, a damaged run directory left byte-identical).

The cases are those a hostile-user review found failing (a traceback with exit 1, a hang, or silent acceptance):
malformed and malicious YAML, wrong types and ranges, damaged IDX files, run directories edited by hand, absurd
`sample` arguments, too few points for a metric, and a torch warning printed before the error line. Most run the CLI
in-process; the cases that would hang, or whose failure is a warning printed by torch, run it as a subprocess with a
time limit (pytest's own warning capture would hide the warning in-process).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli

ERROR = "ganforge: error: "


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file (and empty folder) under ``root`` with its bytes: equal snapshots mean nothing was written."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(root.rglob("*"))}


def assert_refused(code: int, err: str, fragment: str) -> None:
    assert "Traceback" not in err, err
    assert code == 2, err
    assert err.startswith(ERROR) and err.count("\n") == 1, err      # the one line is all of stderr
    assert fragment in err, err


def run_subprocess(args: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ganforge {' '.join(map(str, args))} ran longer than {timeout} s (a hang)")
    return proc.returncode, proc.stderr


# ----------------------------------------------------------------------------------------------- recipes
def _idx(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def _billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# name -> (file contents, fragment of the expected message)
RECIPE_FILES = {
    "non_utf8": (b"name: t\ndescription: \"\xff\xfe\"\n", "line 2 is not UTF-8"),
    "deep_nesting": (b"name: t\ndata: " + b"[" * 3000 + b"]" * 3000 + b"\n", "nests more than"),
    "duplicate_top_key": (b"name: t\ntrain: {steps: 1}\ntrain: {steps: 2}\n", "repeats the key 'train'"),
    "duplicate_nested_key": (b"name: t\ntrain:\n  steps: 1\n  batch_size: 8\n  steps: 2\n",
                             "line 5 repeats the key 'steps' (first on line 3)"),
    "unclosed_quote": (b"name: \"t\ndescription: x\n", "is not valid YAML"),
    "huge": (b"name: t\n" + b"# padding\n" * 120_000, "bytes; ganforge reads YAML files of at most 1,048,576"),
    "top_level_list": (b"- data\n- train\n", "is a YAML list"),
    "top_level_scalar": (b"just words\n", "is a YAML scalar"),
    "empty": (b"", "is empty"),
}


@pytest.mark.parametrize("case", sorted(RECIPE_FILES))
def test_bad_recipe_file(case, tmp_path, capsys):
    text, fragment = RECIPE_FILES[case]
    recipe = tmp_path / f"{case}.yaml"
    recipe.write_bytes(text)
    before = snapshot(tmp_path)
    code, _, err = run_cli(["train", recipe, "--out", tmp_path / "out"], capsys)
    assert_refused(code, err, fragment)
    assert snapshot(tmp_path) == before


def test_alias_bomb_is_refused_fast(tmp_path):
    """Without a limit, the 9-level alias bomb expands to 9^9 nodes: PyYAML ran for minutes."""
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(_billion_laughs())
    code, err = run_subprocess(["train", recipe, "--out", tmp_path / "out"], tmp_path, timeout=60)
    assert_refused(code, err, "uses the YAML alias *a")
    assert not (tmp_path / "out").exists()


# --set overrides -> expected fragment. All fail before any data is loaded or any network built, except the last
# group, which the networks or the data preparation refuse (still before a run directory exists).
SET_CASES = [
    ("train.batch_size=abc", "train.batch_size must be int"),
    ('train.batch_size="64"', "got the string '64'"),        # a YAML string is not an int
    ("train.steps=2.5", "train.steps must be int, got 2.5"),
    ("train.threads=-1", "train.threads must be >= 0"),
    ("train.time_limit_clock=sun", "train.time_limit_clock must be one of 'wall', 'cpu'"),
    ("train.seed=1e30", "train.seed must be < 2**63"),
    ("optim.D.lr=inf", "optim.D.lr must be a finite number"),
    ("optim.D.lr=nan", "optim.D.lr must be a finite number"),
    ("optim.D.lr=.inf", "optim.D.lr is inf"),
    ("networks.D.extra=.nan", "networks.D.extra is nan"),     # non-finite anywhere, even in an undeclared key
    ('name="abc', "is not valid YAML"),                       # an unclosed quote is not taken as raw text
    ("train.eval_metrics=[fid, *x]", "alias"),
    ("networks.G.hidden=[-5]", "networks.G: hidden must be layer widths >= 1"),
    ("networks.D.hidden=[0]", "networks.D: hidden must be layer widths >= 1"),
    ("train.nonfinite=maybe", "train.nonfinite must be one of"),
    ("train.threads=2.5", "train.threads must be int"),
    ("starts_from=srresnet-digit", "starts_from names the recipe whose run this one starts from, got "
                                   "'srresnet-digit' (did you mean 'srresnet-digits'?)"),
]


@pytest.mark.parametrize("override, fragment", SET_CASES)
def test_bad_override(override, fragment, tmp_path, capsys):
    code, _, err = run_cli(["train", "gan-toy", "--no-progress", "--set", override, "--out", tmp_path / "out"], capsys)
    assert_refused(code, err, fragment)
    assert not (tmp_path / "out").exists()


# The second half's input paths: data paths and streams, and each new source given a path that is not there or a
# name it does not know. Refused before any run directory exists.
DATA_CASES = [
    (["--set", "data.path=bogus"], "data.path must be one of"),
    (["--set", "data.workers=-1"], "data.workers"),
    (["--set", "data.stream_threshold_mb=0"], "data.stream_threshold_mb"),
    (["--set", "data.path=stream"], "stream"),                        # toy points cannot be streamed
    (["--set", "data.streams.main.source=toy:ring8"], "main"),
    (["--set", "data.streams.b.batch_size=4"], "source"),
    (["--data", "aligned:{tmp}/no-facades"], "no-facades"),
    (["--data", "unaligned:{tmp}/no-horse2zebra"], "no-horse2zebra"),
    (["--data", "paired:{tmp}/a,{tmp}/b"], "{tmp}/a"),
    (["--data", "celeba:{tmp}/no-celeba"], "no-celeba"),
    (["--data", "captions:{tmp}/no-birds"], "no-birds"),
    (["--data", "sr:{tmp}/no-div2k"], "no-div2k"),
    (["--data", "glyphs:NoSuchFont"], "NoSuchFont"),
    (["--data", "mnist5k?domain=purple"], "purple"),
    (["--data", "photos?split=bogus"], "bogus"),
    # session 5's inputs: held-out characters, multi-domain and super-resolution digits, phase schedules  (args are str.format-ed: braces doubled)
    (["--data", "glyphs:DejaVuSans,DejaVuSerif?split=bogus"], "unknown split 'bogus'"),
    (["--data", "mnist5k?domains=plain,bogus"], "name two or more different domains"),
    (["--data", "mnist5k?domains=plain,edges&domain=negative"], "does not combine with ?domain="),
    (["--data", "mnist5k?sr=5"], "K must divide 28"),
    (["--set", "train.phases=[{{steps: 0}}]"], "train.phases[0].steps must be >= 1"),
    (["--set", "train.phases=[{{image_size: 4}}, {{image_size: 8}}]"], "train.phases[0].steps is missing"),
    (["--set", "train.phases=[{{steps: 2, fade_steps: 3}}, {{}}]"], "fade_steps must be between 0"),
    # session 8's captioned data
    (["--data", "digit-captions?split=bogus"], "unknown split 'bogus' in 'digit-captions?split=bogus'"),
    (["--data", "digit-captions?captions=9"], "give a number of phrasings per digit from 1 to 6"),
    (["--set", "train.precision=fp8"], "train.precision"),
]


@pytest.mark.parametrize("args, fragment", DATA_CASES)
def test_bad_data_inputs_of_the_second_half(args, fragment, tmp_path, capsys):
    args = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run_cli(["train", "gan-toy", "--steps", "1", *args, "--out", tmp_path / "out"], capsys)
    assert_refused(code, err, fragment.format(tmp=tmp_path))
    assert not (tmp_path / "out").exists()


@pytest.fixture
def ram_limit(monkeypatch):
    """The in-memory limit is half the machine's RAM; fixed at 16 GiB here so the cases mean the same anywhere."""
    from ganforge.data import base
    monkeypatch.setattr(base, "memory_limit_bytes", lambda: 16 << 30)


@pytest.mark.parametrize("override, fragment", [
    ("data.image_size=4", "need data.image_size >= 8"),
    ("networks.G.filters=[-5,1,1]", "networks.G: filters must be layer widths >= 1"),
    ("data.image_size=4096", "78.1 GiB in memory (5000 samples x 16,777,216 bytes)"),   # refused before allocating
])
def test_bad_override_for_the_dcgan(override, fragment, tmp_path, capsys, ram_limit):
    code, _, err = run_cli(["train", "dcgan-mnist", "--no-progress", "--set", override, "--out", tmp_path / "out"],
                           capsys)
    assert_refused(code, err, fragment)
    assert not (tmp_path / "out").exists()


def test_torch_warning_is_not_printed_before_the_error(tmp_path):
    """latent_dim=0 builds a zero-width Linear (torch warns) before the algorithm refuses the value."""
    code, err = run_subprocess(["train", "gan-toy", "--set", "algorithm.latent_dim=0", "--out", tmp_path / "out"],
                               tmp_path)
    assert_refused(code, err, "latent_dim")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------- IDX data
IDX_CASES = {
    # dims whose product overflows int64 (and, for 2^31 x 2^31 x 4, wraps to exactly 0)
    "huge_dims": ({"train-images-idx3-ubyte": _idx(0x803, 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\0" * 100},
                  "is truncated: its header (dims (4294967295, 4294967295, 4294967295))"),
    "dims_wrap_to_zero": ({"train-images-idx3-ubyte": _idx(0x803, 2**31, 2**31, 4)}, "is truncated"),
    "absurd_labels": ({"train-images-idx3-ubyte": _idx(0x803, 10, 28, 28) + b"\0" * 7840,
                       "train-labels-idx1-ubyte": _idx(0x801, 2**32 - 1) + b"\0" * 10},
                      "train-labels-idx1-ubyte is truncated"),
    # gzipped, so no file size to compare with: the 32 GiB the header declares are refused before reading
    "declared_beyond_memory": (
        {"train-images-idx3-ubyte.gz": gzip.compress(_idx(0x803, 2**21, 128, 128) + b"\0" * 64)},
        "declares dims (2097152, 128, 128), 32.0 GiB of data, more than the 16.0 GiB"),
    "truncated": ({"train-images-idx3-ubyte": _idx(0x803, 10, 28, 28) + b"\0" * 5000}, "needs 7856 bytes"),
    "count_mismatch": ({"train-images-idx3-ubyte": _idx(0x803, 10, 28, 28) + b"\0" * 7840,
                        "train-labels-idx1-ubyte": _idx(0x801, 9) + b"\0" * 9}, "has 9 labels but"),
}


@pytest.mark.parametrize("case", sorted(IDX_CASES))
def test_bad_idx_files(case, tmp_path, capsys, ram_limit):
    files, fragment = IDX_CASES[case]
    data = tmp_path / "mnist"
    data.mkdir()
    for name, content in files.items():
        (data / name).write_bytes(content)
    before = snapshot(tmp_path)
    code, _, err = run_cli(["train", "dcgan-mnist", "--data", f"idx:{data}", "--out", tmp_path / "out"], capsys)
    assert_refused(code, err, fragment)
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------------------------- run directories
@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """One real run directory (2 steps of a tiny toy GAN, a checkpoint at each step), copied for every case."""
    import ganforge
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("bad-input") / "run"
        ganforge.train("gan-toy", steps=2, out=out, progress=False, train__log_every=1, train__sample_every=2,
                       train__checkpoint_every=1, train__batch_size=16, networks__G__hidden=[8],
                       networks__D__hidden=[8])
    finally:
        torch.set_num_threads(saved)
    return out


def _edit_state(run: Path, **changes) -> None:
    path = run / "checkpoints" / "step-00000002" / "state.json"
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc, indent=1))


def _step_edited(run: Path) -> None:
    """The step counter moved on by hand, consistently in both places it is recorded."""
    path = run / "checkpoints" / "step-00000002" / "state.json"
    doc = json.loads(path.read_text())
    doc["state"]["step"] = 2000
    doc["step"] = 2
    path.write_text(json.dumps(doc, indent=1))


DAMAGE = {
    "empty_run_json": (lambda r: (r / "run.json").write_text(""), "run.json is empty"),
    "list_run_json": (lambda r: (r / "run.json").write_text("[1, 2]"), "run.json has a JSON array"),
    "run_json_without_data": (lambda r: (r / "run.json").write_text('{"created": "x"}'), "no valid 'data' entry"),
    "empty_config": (lambda r: (r / "config.yaml").write_text(""), "config.yaml is empty"),
    "config_list": (lambda r: (r / "config.yaml").write_text("- a\n"), "config.yaml is not a mapping"),
    "metrics_list_line": (lambda r: (r / "metrics.jsonl").open("a").write("[1,2]\n"),
                          "metrics.jsonl line 3 ([1,2]) is not a JSON object"),
    "metrics_number_line": (lambda r: (r / "metrics.jsonl").open("a").write("3\n"),
                            "metrics.jsonl line 3 (3) is not a JSON object"),
    "state_without_keys": (lambda r: (r / "checkpoints" / "step-00000002" / "state.json").write_text('{"format": 2}'),
                           "state.json lacks step, state, training, sha256"),
    "state_step_edited": (_step_edited, "state.json was changed after it was written"),
    "state_top_step_edited": (lambda r: _edit_state(r, step=7), "state.json was changed after it was written"),
}
COMMANDS = {
    "info": lambda run, tmp: ["info", run],
    "info_json": lambda run, tmp: ["info", run, "--json"],
    "sample": lambda run, tmp: ["sample", run, "--n", "8", "--out", tmp / "grid.png"],
    "eval": lambda run, tmp: ["eval", run, "--n", "50"],
    "resume": lambda run, tmp: ["train", "--resume", run, "--steps", "3", "--no-progress"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_run_directory(toy_run, damage, command, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    edit, fragment = DAMAGE[damage]
    edit(run)
    monkeypatch.chdir(tmp_path)            # where eval would write an eval.json it was not told where to put
    before = snapshot(tmp_path)
    code, _, err = run_cli(COMMANDS[command](run, tmp_path), capsys)
    assert_refused(code, err, fragment)
    assert snapshot(tmp_path) == before    # the damaged run byte-identical, no grid, no eval.json


def test_the_undamaged_run_works(toy_run, tmp_path, capsys, one_thread):
    """The control for the cases above: the same commands succeed on an intact copy, so the refusals are the damage's,
    and a checkpoint's state checksum survives a resume (which writes a new checkpoint) and a re-read."""
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    for command in ("info", "info_json", "sample", "resume", "info"):
        code, out, err = run_cli(COMMANDS[command](run, tmp_path), capsys)
        assert code == 0, err
    assert "step 3 of 3" in out


def test_a_checkpoint_written_before_state_checksums_still_loads(toy_run, tmp_path, capsys):
    """Format 1 (no state_sha256) is read as before: runs trained by earlier versions stay usable."""
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    path = run / "checkpoints" / "step-00000002" / "state.json"
    doc = json.loads(path.read_text())
    del doc["state_sha256"]
    path.write_text(json.dumps({**doc, "format": 1}))
    code, out, err = run_cli(["info", run], capsys)
    assert code == 0 and "step 2 of 2" in out, err


# ----------------------------------------------------------------------------------------------- sample
SAMPLE_CASES = [
    (["--out", "{tmp}/file.txt/grid.png"], "is a file, not a folder"),
    (["--out", "{tmp}/folder.png"], "folder.png is a directory"),
    (["--out", "{tmp}/grid.png", "--nrow", "-1"], "--nrow must be between 1 and 1,000"),
    (["--out", "{tmp}/grid.png", "--nrow", "0"], "--nrow must be between 1 and 1,000"),
    (["--out", "{tmp}/grid.png", "--nrow", str(10**9)], "--nrow must be between 1 and 1,000"),
    (["--out", "{tmp}/grid.png", "--per-row", "0"], "--per-row must be between 1 and 1,000"),
    (["--out", "{tmp}/s.npz", "--n", str(10**9)], "--n must be between 1 and 1,000,000 for a .npz file"),
    (["--out", "{tmp}/grid.png", "--n", str(10**6)], "(write a .npz for more)"),
    (["--out", "{tmp}/grid.png", "--checkpoint", "3"], "no checkpoint at step 3"),
    (["--out", "{tmp}/grid.png", "--checkpoint", "{tmp}/file.txt"], "file.txt"),
    # session 7's sampling controls: truncation, latent walks and StyleGAN's W-space flags on a model without one
    (["--out", "{tmp}/grid.png", "--truncation", "0"], "--truncation must be > 0"),
    (["--out", "{tmp}/grid.png", "--truncation", "nan"], "--truncation must be a finite number"),
    (["--out", "{tmp}/grid.png", "--interpolate", "3"], "--interpolate expects two seeds A:B"),
    (["--out", "{tmp}/grid.png", "--mix", "2"], "--mix works on a generator with a W space"),
    (["--out", "{tmp}/grid.png", "--mix-cutoff", "2"], "--mix-cutoff works on a generator with a W space"),
    (["--out", "{tmp}/grid.png", "--noise-seed", "1"], "--noise-seed works on a generator with a W space"),
    (["--out", "{tmp}/grid.png", "--truncation-cutoff", "2"], "--truncation-cutoff works on a generator with a W"),
    # session 8's caption controls: malformed, unreadable, or given to a model that takes no text
    (["--out", "{tmp}/grid.png", "--text", "a thin three"], "does not take sampling control(s) texts"),
    (["--out", "{tmp}/grid.png", "--text-file", "{tmp}/nothere.txt"], "cannot read it"),
    (["--out", "{tmp}/grid.png", "--interpolate-text", "abc"], "--interpolate-text takes two captions as A:B"),
]
if Path("/proc/self").is_dir():   # Linux: /proc takes no new files, even for root
    SAMPLE_CASES.append((["--out", "/proc/x.png"], "cannot write --out /proc/x.png"))


@pytest.mark.parametrize("args, fragment", SAMPLE_CASES)
def test_bad_sample_arguments(toy_run, args, fragment, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("a file, not a folder\n")
    (tmp_path / "folder.png").mkdir()
    before, run_before = snapshot(tmp_path), snapshot(toy_run)
    code, _, err = run_cli(["sample", toy_run, *[a.format(tmp=tmp_path) for a in args]], capsys)
    assert_refused(code, err, fragment)
    assert snapshot(tmp_path) == before and snapshot(toy_run) == run_before   # not even the writability probe


# ----------------------------------------------------------------------------------------------- encode
ENCODE_CASES = [
    (["--input", "{tmp}/file.txt", "--out", "{tmp}/z.npz"], "--input {tmp}/file.txt: use an image file"),
    (["--input", "{tmp}/nothere", "--out", "{tmp}/z.npz"], "does not exist; give an image file"),
    (["--input", "{tmp}/imgs.npz", "--out", "{tmp}/z.png"], "codes are written as a .npz"),
    (["--input", "{tmp}/imgs.npz", "--out", "{tmp}/z.npz"], "has no encoder; ganforge encode takes a run of"),
]


@pytest.mark.parametrize("args, fragment", ENCODE_CASES)
def test_bad_encode_arguments(toy_run, args, fragment, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not an image\n")
    np.savez(tmp_path / "imgs.npz", np.zeros((2, 28, 28, 1), np.uint8))
    before, run_before = snapshot(tmp_path), snapshot(toy_run)
    code, _, err = run_cli(["encode", toy_run, *[a.format(tmp=tmp_path) for a in args]], capsys)
    assert_refused(code, err, fragment.format(tmp=tmp_path))
    assert snapshot(tmp_path) == before and snapshot(toy_run) == run_before


# Session 7's recipe keys and data settings, each refused before a run directory exists.
RECIPE_CASES = [
    ("gan-toy", ["--data", "mnist5k?sr=4", "--set", "data.image_size=30"], "must be a multiple of the low-resolution"),
    ("wgan-gp-toy", ["--set", "objective.drift=-1"], "objective.drift must be >= 0"),
    ("stargan-digits-two-sets", ["--set", "algorithm.datasets=[{{stream: main, domains: [plain, negative]}}]"],
     "algorithm.datasets lists two or more datasets"),
    ("progan-digits", ["--set", "data.image_size=28"], "must be a power of two >= 4, got 28"),
    ("sngan-resnet-digits", ["--set", "data.image_size=28"], "--set data.image_size=24 (or 32)"),
    ("srgan-digits", ["--set", "algorithm.content=vgg54", "--set", "algorithm.vgg_weights={tmp}/file.txt"],
     "cannot read VGG19 weights"),
    # session 8's families: encoders and text
    ("vaegan-digits", ["--set", "algorithm.gamma=-1"], "algorithm.gamma and algorithm.sigma must be > 0"),
    ("stackgan-digits", ["--set", "algorithm.kl_weight=-1"], "algorithm.kl_weight must be >= 0"),
    ("text2image-digits", ["--set", "networks.T.arch=minilm"], "set algorithm.text_dim=384"),
    # session 9: S2GAN / clustering, Triple-GAN's D pairs
    ("s2gan-digits", ["--set", "algorithm.label_fraction=0"], "algorithm.label_fraction must be in (0, 1]"),
    ("s2gan-digits", ["--set", "algorithm.pretrain_widths=[]"], "algorithm.pretrain_widths must be a non-empty"),
    ("biggan-clusters-digits", ["--set", "algorithm.clusters=1"], "set algorithm.clusters (>= 2"),
    ("biggan-digits", ["--set", "algorithm.labels=foo"], "algorithm.labels must be one of 'data', 'pretrained'"),
    ("triplegan-mnist-quick", ["--set", "algorithm.d_labelled_batch=-1"], "d_labelled_batch must be >= 0"),
    ("stylegan-colour", ["--set", "networks.G.out_activation=relu"], "networks.G.out_activation must be one of"),
    # session 10
    ("improved-dcgan-mnist", ["--set", "algorithm.vbn_reference_grad=maybe"], "vbn_reference_grad must be bool"),
]


@pytest.mark.parametrize("recipe, args, fragment", RECIPE_CASES)
def test_bad_settings_of_the_new_families(recipe, args, fragment, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not weights\n")
    code, _, err = run_cli(["train", recipe, "--steps", "1", "--no-progress", *[a.format(tmp=tmp_path) for a in args],
                            "--out", tmp_path / "out"], capsys)
    assert_refused(code, err, fragment)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------- eval
@pytest.mark.parametrize("points", [2, 3, 19])
def test_eval_of_too_few_toy_points(points, tmp_path, capsys, monkeypatch):
    target = tmp_path / "few.npz"
    np.savez(target, arr_0=np.zeros((points, 2), np.float32))
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, _, err = run_cli(["eval", target, "--ref", "toy:ring8"], capsys)
    assert_refused(code, err, f"{points} sample(s) are too few for the modes metric, which needs at least 20")
    assert snapshot(tmp_path) == before


def test_eval_of_too_few_images_for_knn(tmp_path, capsys, monkeypatch):
    target = tmp_path / "few.npz"
    np.savez(target, arr_0=np.zeros((3, 28, 28, 1), np.uint8))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["eval", target, "--ref", f"npz:{target}", "--metrics", "pr"], capsys)
    assert_refused(code, err, "too few for the pr metric, which needs at least 4")
    assert not (tmp_path / "few.eval.json").exists()


def test_inception_weights_as_a_plain_pickle(tmp_path):
    """torch.load warns about a non-zip pickle before it refuses it: the error line must be all of stderr."""
    import pickle
    weights = tmp_path / "weights.pth"
    weights.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    images = tmp_path / "images.npz"
    np.savez(images, arr_0=np.zeros((100, 28, 28, 1), np.uint8))
    code, err = run_subprocess(["eval", images, "--ref", f"npz:{images}", "--metrics", "fid", "--features",
                                "inception", "--inception-weights", weights], tmp_path)
    assert_refused(code, err, "cannot read Inception weights")
    assert not (tmp_path / "images.eval.json").exists()


# ----------------------------------------------------------------------------------------------- warm starts
@pytest.mark.parametrize("source, fragment", [("{tmp}/no-such-run", "no-such-run"), ("{run}:99", "step 99"),
                                              ("{run}:abc", "abc")])
def test_bad_init_from(toy_run, source, fragment, tmp_path, capsys):
    out = tmp_path / "warm"
    code, _, err = run_cli(["train", "gan-toy", "--steps", "1", "--out", out, "--init-from",
                            source.format(tmp=tmp_path, run=toy_run)], capsys)
    assert_refused(code, err, fragment)
    assert not out.exists()


def test_a_bad_auto_precision_pin_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANFORGE_AUTO_PRECISION", "fp8")
    code, _, err = run_cli(["train", "gan-toy", "--steps", "1", "--no-progress", "--out", tmp_path / "out"], capsys)
    assert_refused(code, err, "GANFORGE_AUTO_PRECISION='fp8' is not a precision auto can pin")
    assert not (tmp_path / "out").exists()


def test_eval_of_a_stargan_with_ref_but_no_to_is_one_line(tmp_path, capsys, one_thread):
    """Without --to a StarGAN is evaluated on each domain in turn, each against its own real images: one --ref cannot
    serve them all. Refused before anything is translated or written."""
    import ganforge
    run = ganforge.train("stargan-digits", steps=1, out=tmp_path / "run", progress=False,
                         overrides={"train.batch_size": 4, "train.checkpoint_every": 1, "train.sample_every": 1000,
                                    "train.threads": 1}).run_dir
    code, _, err = run_cli(["eval", run, "--ref", "mnist5k?split=test"], capsys)
    assert_refused(code, err, "give --to DOMAIN with --ref")
    assert not (run / "evals").exists() and not (run / "eval.json").exists()
