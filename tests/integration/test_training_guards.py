"""What guards a training run and what it shows: the NaN / Inf guard (real divergences), progress output, checkpoint
selection (--checkpoint, load(step=)), warm starts (--init-from), rank-divergence and bf16 checks.

The divergence recipe, measured on gan-toy (its 3 x 128 MLPs, batch 64, seeds 0-4, CPU): plain SGD with lr 100 on D
(``optim.D.name=sgd optim.D.lr=100``) makes D's weights grow so fast that G's loss is NaN in step 3 for every seed,
after two finite steps, so checkpoints exist before the divergence (with 16-unit MLPs: step 12 or 13). Adam does not
diverge on this MLP even at lr 1e8 (its step is bounded by lr; the ReLUs die first); Adam at lr 1e20 on D makes G's
loss NaN in step 1. Weights stayed finite even at lr 1e38 (Adam or SGD, lr 1e39 is refused by torch), but BatchNorm
statistics do not: with ``networks.G.norm=batch`` and G's lr 1e20, G's running variance is Inf from step 2 on (seeds
0-2), which skipping updates cannot undo.
"""
from __future__ import annotations

import io
import json
import re
import time
import warnings

import pytest
import torch

import ganforge
from conftest import run_cli
from ganforge.errors import CheckpointError, ConfigError
from ganforge.train import distributed, trainer as trainer_module
from ganforge.train.checkpoint import latest_checkpoint, list_checkpoints, read_checkpoint
from ganforge.train.trainer import Trainer, TrainingDiverged, all_finite, native_bf16

TINY = {"networks.G.hidden": [16], "networks.D.hidden": [16], "train.batch_size": 64, "train.grid_size": 4,
        "train.sample_every": 100, "train.log_every": 2, "train.checkpoint_every": 100}
SETS = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
DIVERGES_IN_STEP_3 = {"optim.D.name": "sgd", "optim.D.lr": 100.0, "networks.G.hidden": [128, 128, 128],
                      "networks.D.hidden": [128, 128, 128]}


def _finite(weights):
    return all(bool(torch.isfinite(t).all()) for t in weights.values() if t.is_floating_point())


# ------------------------------------------------------------------------------------------------ NaN / Inf guard
def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    sets = [a for k, v in DIVERGES_IN_STEP_3.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    code, _, err = run_cli(["train", "gan-toy", "--steps", "20", "--out", out, "--no-progress", *SETS, *sets,
                            "--set", "train.checkpoint_every=1", "--set", "train.keep_checkpoints=20"], capsys)
    assert code == 3, err
    errors = [line for line in err.splitlines() if line.startswith("ganforge: error:")]
    assert len(errors) == 1 and err.rstrip("\n").endswith(errors[0]), err
    line = errors[0]
    found = re.search(r"training diverged in step (\d+): the loss of optimizer group ([DG]) is (nan|inf|-inf);", line)
    assert found and 2 <= int(found.group(1)) <= 5, line       # measured: step 3, G's loss NaN
    step = int(found.group(1))
    assert f"checkpoints/step-{step - 1:08d} is still the latest checkpoint" in line, line
    assert "optim.D.lr=100" in line and "train.nonfinite=skip" in line, line
    assert [p.name for p in list_checkpoints(out)] == [f"step-{s:08d}" for s in range(1, step)]
    assert latest_checkpoint(out).name == f"step-{step - 1:08d}"
    assert _finite(read_checkpoint(latest_checkpoint(out), with_training=False)[0])
    assert "non-finite loss" not in err     # the old warning line is gone: the error says it


def test_all_finite_is_exact():
    # huge but finite gradients overflow their norm (the fast check) and are still finite
    assert all_finite([torch.ones(3), torch.full((4,), 1e30)]) and all_finite([])
    for bad in (float("nan"), float("inf"), -float("inf")):
        assert not all_finite([torch.ones(3), torch.tensor([0.5, bad])])


def test_skip_leaves_bad_updates_out_and_counts_them(tmp_path, one_thread):
    run = ganforge.train("gan-toy", steps=8, out=tmp_path / "run", progress=False,
                         overrides={**TINY, **DIVERGES_IN_STEP_3, "train.nonfinite": "skip", "train.log_every": 4})
    assert run.steps == 8
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    counts = [r["nonfinite_skipped"] for r in rows if r["kind"] == "train"]
    assert len(counts) == 2 and 0 < counts[0] <= counts[1]
    weights, training, state = read_checkpoint(latest_checkpoint(run.run_dir))
    assert _finite(weights)
    # every update was either taken (counted in updates, and in the optimizer's own step count) or skipped
    assert sum(state["updates"].values()) + state["nonfinite_skipped"] == 2 * 8
    assert state["nonfinite_skipped"] == counts[-1]
    adam_steps = {int(s["step"]) for s in training["optimizers"]["G"]["state"].values()}
    assert adam_steps == {state["updates"]["G"]}


def test_non_finite_state_is_never_checkpointed(tmp_path, one_thread):
    # BatchNorm statistics are updated by forward passes, not by the (skipped) optimizer steps
    with pytest.raises(TrainingDiverged, match=r"weights nets\.G\.\S+running_var are non-finite; no checkpoint was "):
        ganforge.train("gan-toy", steps=4, out=tmp_path / "run", progress=False,
                       overrides={**TINY, "optim.G.lr": 1e20, "networks.G.norm": "batch", "train.nonfinite": "skip"})
    assert latest_checkpoint(tmp_path / "run") is None


# ------------------------------------------------------------------------------------------------------ progress
LINE = re.compile(r"^gan-toy step (\d+)/6  d_loss \S+  g_loss \S+  [\d.e+-]+ steps/s  elapsed \d+:\d\d:\d\d  "
                  r"eta (\d+:\d\d:\d\d|\?)$")


@pytest.mark.parametrize("flag", [["--no-progress"], []], ids=["no-progress", "stderr-not-a-terminal"])
def test_plain_log_lines_when_no_bar(tmp_path, capsys, one_thread, flag):
    code, _, err = run_cli(["train", "gan-toy", "--steps", "6", "--out", tmp_path / "run", *flag, *SETS], capsys)
    assert code == 0, err
    assert "\r" not in err
    steps = [int(m.group(1)) for m in map(LINE.match, err.splitlines()) if m]
    assert steps == [2, 4, 6], err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_counts_towards_the_time_limit(tmp_path, monkeypatch, one_thread):
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    run = ganforge.train("gan-toy", steps=100000, out=tmp_path / "run", time_limit_s=3.5,
                         overrides={**TINY, "train.log_every": 1000, "train.checkpoint_every": 100000},
                         on_step=lambda t: time.sleep(0.02))
    assert 10 < run.steps < 100000
    frames = [re.search(r"(\d+)/(\d+) \[", f) for f in term.getvalue().split("\r")]
    counts = [tuple(map(int, m.groups())) for m in frames if m]
    assert counts[0] == (0, 100000), counts
    # from its second frame on (a second of steps) the bar counts towards the step the time limit ends the run at,
    # re-estimated from the measured rate (never train.steps), and it ends full at the step the run stopped at
    later = [total for n, total in counts if n > 0]
    assert len(later) > 2 and all(total < 100000 and total <= 4 * run.steps for total in later[1:]), counts
    assert counts[-1] == (run.steps, run.steps), counts


def test_time_limit_on_the_cpu_clock_ignores_time_not_spent_computing(tmp_path, one_thread):
    """train.time_limit_clock: cpu counts this process's CPU time: a run that waits (a busy machine, here a sleep in
    every step) is not cut short by the wait; on the wall clock the same limit stops it."""
    def run(clock: str, name: str) -> int:
        return ganforge.train("gan-toy", steps=60, out=tmp_path / name, progress=False, time_limit_s=2.0,
                              overrides={**TINY, "train.time_limit_clock": clock, "train.log_every": 1000,
                                         "train.checkpoint_every": 100000},
                              on_step=lambda t: time.sleep(0.06)).steps
    assert run("cpu", "cpu") == 60                      # 60 tiny steps use well under 2 CPU-seconds
    assert run("wall", "wall") < 45                     # 60 x 0.06 s = 3.6 s of sleep alone


# -------------------------------------------------------------------------------------------- choosing checkpoints
@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("guards") / "toy"
    return ganforge.train("gan-toy", steps=6, out=out, progress=False,
                          overrides={**TINY, "train.checkpoint_every": 2, "train.keep_checkpoints": 10,
                                     "train.ema.enabled": True, "train.ema.decay": 0.5}).run_dir


def test_load_a_chosen_checkpoint(toy_run):
    assert ganforge.load(toy_run).step == 6
    assert ganforge.load(toy_run, step=2).step == 2
    assert ganforge.load(toy_run, step="4").step == 4
    assert ganforge.load(toy_run, step=toy_run / "checkpoints" / "step-00000002").step == 2
    assert ganforge.load(toy_run, step="step-00000004").step == 4
    assert not torch.equal(ganforge.load(toy_run, step=2).sample(8), ganforge.load(toy_run).sample(8))
    with pytest.raises(CheckpointError) as e:
        ganforge.load(toy_run, step=3)
    assert "no checkpoint at step 3" in str(e.value) and "steps 2, 4, 6" in str(e.value)
    assert "\n" not in str(e.value) and "train.keep_checkpoints" in str(e.value)


def test_checkpoint_flag_on_sample_info_eval(toy_run, tmp_path, capsys):
    code, out, err = run_cli(["sample", toy_run, "--n", "16", "--out", tmp_path / "s.npz", "--checkpoint", "2"], capsys)
    assert code == 0 and "(step 2)" in out, err
    code, _, err = run_cli(["sample", toy_run, "--out", tmp_path / "x.png", "--checkpoint", "5"], capsys)
    assert code == 2 and err.count("\n") == 1 and "steps 2, 4, 6" in err, err
    code, out, _ = run_cli(["info", toy_run, "--checkpoint", "4"], capsys)
    assert code == 0 and "step 4 of 6" in out and "step-00000004" in out
    code, out, _ = run_cli(["info", toy_run, "--json", "--checkpoint", "2"], capsys)
    assert json.loads(out)["steps_done"] == 2
    code, out, err = run_cli(["eval", toy_run, "--metrics", "modes", "--n", "200", "--checkpoint", "2",
                              "--json-out", tmp_path / "e.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["step"] == 2


# ------------------------------------------------------------------------------------------------- warm starts
def test_init_from_starts_a_new_run_from_the_weights(toy_run, tmp_path, one_thread):
    src, _, _ = read_checkpoint(toy_run / "checkpoints" / "step-00000004", with_training=False)
    # lr 1e-12: after one step the weights are still the source's (Adam moves each by ~lr); EMA decay ~1: so is EMA
    run = ganforge.train("gan-toy", steps=1, out=tmp_path / "warm", progress=False, init_from=f"{toy_run}:4",
                         overrides={**TINY, "optim.G.lr": 1e-12, "optim.D.lr": 1e-12, "train.ema.enabled": True,
                                    "train.ema.decay": 0.999999})
    weights, training, state = read_checkpoint(latest_checkpoint(run.run_dir))
    assert state["step"] == 1 and state["updates"] == {"D": 1, "G": 1}
    assert all(int(s["step"]) == 1 for g in training["optimizers"].values() for s in g["state"].values())
    assert weights.keys() == src.keys()
    for k in src:
        torch.testing.assert_close(weights[k], src[k], atol=1e-8, rtol=0, msg=k)
    assert not torch.allclose(src["ema.G.net.0.weight"], src["nets.G.net.0.weight"])   # EMA itself was carried over
    meta = json.loads((run.run_dir / "run.json").read_text())
    assert meta["init_from"]["step"] == 4 and meta["init_from"]["ema"] is True
    assert "Initialised from" in (run.run_dir / "README.md").read_text()


def test_init_from_refuses_networks_that_do_not_fit(toy_run, tmp_path, capsys):
    out = tmp_path / "c"
    code, _, err = run_cli(["train", "gan-toy", "--init-from", toy_run, "--out", out, *SETS,
                            "--set", "networks.G.hidden=[8]"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(r"nets\.G\.\S+ is \[\d+(, \d+)*\] in the checkpoint but \[\d+(, \d+)*\] here", err), err
    assert not out.exists()
    with pytest.raises(ConfigError, match="give one of them"):
        ganforge.train(resume=toy_run, init_from=toy_run, progress=False)


# ---------------------------------------------------------------------------------------- distributed agreement
class _TwoRanksThatDisagree(distributed.Distributed):
    """Rank 0 of a pretend 2-process group whose other rank ended with other weights."""

    def __init__(self):
        super().__init__(rank=0, world_size=2)

    def agree(self, *flags):
        return list(flags)

    def mean_values(self, values):
        return values

    def fingerprints(self, tensors):
        return ["a" * 64, "b" * 64]


def test_ranks_with_different_weights_stop_the_run_without_a_checkpoint(tmp_path, one_thread):
    def diverge(trainer):
        if trainer.step == 2:
            trainer.dist = _TwoRanksThatDisagree()

    with pytest.raises(distributed.RanksDiverged, match="weights differ at step 2 .*was not written"):
        ganforge.train("gan-toy", steps=6, out=tmp_path / "run", progress=False,
                       overrides={**TINY, "train.checkpoint_every": 1}, on_step=diverge)
    assert latest_checkpoint(tmp_path / "run").name == "step-00000001"


# ------------------------------------------------------------------------------------------------------- bf16
@pytest.mark.parametrize("query, expected", [(lambda: True, True), (lambda: False, False), ("raise", False)])
def test_native_bf16_reads_the_cpu_query(monkeypatch, query, expected):
    def broken():
        raise RuntimeError("no oneDNN in this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", broken if query == "raise" else query)
    assert native_bf16(torch.device("cpu")) is expected
    assert native_bf16(torch.device("cuda")) is True


@pytest.mark.parametrize("native", [True, False])
def test_bf16_warning_only_on_cpus_that_emulate_it(tmp_path, monkeypatch, native):
    from ganforge.build import build
    from ganforge.config import load_config
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: native)
    built = build(load_config("gan-toy", {**TINY, "train.precision": "bf16", "train.device": "cpu"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(built, tmp_path, progress=False)
    bf16 = [w for w in caught if "without bf16 instructions" in str(w.message)]
    assert len(bf16) == (0 if native else 1)


def test_cli_shows_a_warning_as_one_line(tmp_path, capsys, monkeypatch, one_thread):
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)
    code, _, err = run_cli(["train", "gan-toy", "--steps", "1", "--out", tmp_path / "run", "--precision", "bf16",
                            "--device", "cpu", *SETS], capsys)
    assert code == 0, err
    shown = [line for line in err.splitlines() if "without bf16 instructions" in line]
    assert len(shown) == 1 and shown[0].startswith("ganforge: warning: train.precision=bf16"), err
    assert "UserWarning" not in err and "trainer.py" not in err
