"""Never lose or mix a run (issue 16): one writer per run directory, stale temporaries cleaned, runs stopped before
their first step leave nothing behind, the lr of each group logged, and `import ganforge` light."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import ganforge
from ganforge.errors import RunDirError
from ganforge.train import lock as lock_module
from ganforge.train.lock import RunLock

from conftest import run_cli

TINY = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 100, "train.checkpoint_every": 100}

HOLDER = """
import sys, time
from ganforge.train.lock import RunLock
held = RunLock.acquire(sys.argv[1])   # kept: the lock lives as long as its file is open
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def trained(tmp_path):
    torch.set_num_threads(1)
    ganforge.train("gan-toy", steps=4, out=tmp_path / "run", progress=False, overrides=TINY)
    return tmp_path / "run"


def _hold(run_dir):
    """Another process that holds the run's lock (as a live training would) until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_owner_and_a_dead_owner_does_not_count(trained, capsys):
    holder = _hold(trained)
    try:
        metrics = (trained / "metrics.jsonl").read_text()
        code, out, err = run_cli(["train", "--resume", trained, "--steps", "8", "--no-progress"], capsys)
        assert code == 2
        assert len(err.strip().splitlines()) == 1
        assert f"cannot resume {trained}: it is being trained by process {holder.pid} on " in err
        assert (trained / "metrics.jsonl").read_text() == metrics        # nothing written
        # --force over the live run is refused too, and nothing is moved aside
        code, out, err = run_cli(["train", "gan-toy", "--steps", "2", "--out", trained, "--force"], capsys)
        assert code == 2 and f"cannot replace {trained}: it is being trained by process {holder.pid}" in err
        assert not list(trained.parent.glob("run.replaced-*"))
    finally:
        holder.kill()
        holder.wait()
    # kill -9 released the lock with the process: the run resumes
    code, out, err = run_cli(["train", "--resume", trained, "--steps", "8", "--no-progress"], capsys)
    assert code == 0, err
    steps = [json.loads(l)["step"] for l in (trained / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]                                       # no duplicated rows


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock.acquire(tmp_path):
        with pytest.raises(RunDirError, match=f"it is being trained by process {os.getpid()}"):
            RunLock.acquire(tmp_path)
    RunLock.acquire(tmp_path).release()       # released: free again


def test_temporaries_of_dead_writers_are_removed_at_start(trained):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale_ckpt = trained / "checkpoints" / f".tmp-step-00000006-{dead.pid}"
    stale_ckpt.mkdir()
    (stale_ckpt / "weights.safetensors").write_bytes(b"partial")
    stale_files = [trained / f".report.html.tmp-{dead.pid}", trained / "checkpoints" / f".latest.tmp-{dead.pid}",
                   trained / "samples" / f".step-00000006.png.tmp-{dead.pid}"]
    for f in stale_files:
        f.write_text("partial")
    live = trained / f".config.yaml.tmp-{os.getppid()}"        # a live process's: kept
    live.write_text("being written")
    ganforge.train(resume=trained, steps=6, progress=False)
    assert not stale_ckpt.exists() and not any(f.exists() for f in stale_files)
    assert live.exists()
    assert lock_module._temporary_pid("step-00000006") is None and lock_module._temporary_pid(".lock") is None


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_a_run_stopped_before_its_first_step_leaves_no_directory(tmp_path, monkeypatch, how):
    from ganforge import api

    def stop(*args, **kwargs):
        if how == "sigint":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)      # raised as KeyboardInterrupt while the run is set up
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the set-up")

    monkeypatch.setattr(api, "write_run_files", stop)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        ganforge.train("gan-toy", steps=2, out=tmp_path / "r", progress=False, overrides=TINY)
    assert not (tmp_path / "r").exists()
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) is before      # the set-up handler is gone again
    ganforge.train("gan-toy", steps=2, out=tmp_path / "r", progress=False, overrides=TINY)   # same --out: fine
    assert (tmp_path / "r" / "checkpoints" / "latest").is_file()


def test_each_group_s_learning_rate_is_logged(tmp_path):
    torch.set_num_threads(1)
    run = ganforge.train("gan-toy", steps=8, out=tmp_path / "r", progress=False,
                         overrides={**TINY, "optim.G.schedule": "linear", "optim.G.decay_steps": 4})
    rows = [json.loads(l) for l in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    lr = run.config.optim["G"].lr
    # G holds its lr, then falls linearly towards 0 over the last 4 steps: the lr of the update of step index 5 is
    # lr x (8 - 5) / 4, of index 7 lr x 1 / 4 (the schedule reaches 0 at the horizon, after the last update)
    assert [r["lr_G"] for r in rows] == pytest.approx([lr, lr, lr * 3 / 4, lr * 1 / 4])
    assert all(r["lr_D"] == run.config.optim["D"].lr for r in rows)


def test_importing_ganforge_does_not_load_torch():
    code = "import sys, ganforge; print('torch' in sys.modules, callable(ganforge.train))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_a_hand_edited_config_is_refused_on_resume_and_cadence_changes_are_not(trained, capsys):
    text = (trained / "config.yaml").read_text()
    assert "lr: 0.001" in text
    (trained / "config.yaml").write_text(text.replace("lr: 0.001", "lr: 0.01", 1))
    code, out, err = run_cli(["train", "--resume", trained, "--steps", "6", "--no-progress"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "config.yaml sets optim.D.lr=0.01 but step-00000004 was trained with optim.D.lr=0.001" in err
    (trained / "config.yaml").write_text(text.replace("log_every: 2", "log_every: 1"))   # cadence: allowed
    code, out, err = run_cli(["train", "--resume", trained, "--steps", "6", "--no-progress"], capsys)
    assert code == 0, err


def test_sigterm_while_the_command_starts_is_one_line_and_130(tmp_path):
    """SIGTERM while torch still loads (the first shared object of torch mapped into the process): no traceback, no
    directory, exit 130."""
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", "gan-toy", "--steps", "5", "--out",
                             str(tmp_path / "r")], stderr=subprocess.PIPE, text=True)
    maps = f"/proc/{proc.pid}/maps"
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:   # torch is being loaded: the command has begun
        try:
            if "torch" in open(maps).read():
                break
        except OSError:
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130 and err.strip() == "ganforge: interrupted", err
    assert not (tmp_path / "r").exists()


def test_a_checkpoint_with_non_finite_weights_does_not_sample(trained, tmp_path, capsys):
    """ganforge never writes one (the NaN guard); one from elsewhere is refused in one line, naming the tensor."""
    from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
    weights, training, state = read_checkpoint(latest_checkpoint(trained))
    name = next(k for k in weights if k.startswith("nets.G.") and weights[k].is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_checkpoint(trained, 9, weights, training, {**state, "step": 9})
    code, out, err = run_cli(["sample", trained, "--out", tmp_path / "g.png"], capsys)
    assert code == 2 and f"holds non-finite (NaN / Inf) weights ({name})" in err
    assert not (tmp_path / "g.png").exists()
    code, out, err = run_cli(["sample", trained, "--checkpoint", "4", "--out", tmp_path / "g.png"], capsys)
    assert code == 0, err
