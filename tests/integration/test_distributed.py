"""Two CPU processes on gloo under torchrun, against a one-process run of the same recipe and seed.

One 2-process run is launched and checked: it finishes, rank 0 alone wrote the run, both ranks ended with the same
weights, its first sample grid is the one-process grid, and its loss curve follows the one-process curve. Then the
run is "killed" after its mid-run checkpoint (the newer checkpoint is removed) and resumed under torchrun: it must end
bit-identical to the uninterrupted 2-process run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.build import build_algorithm
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.rundir import read_run

from conftest import assert_same_checkpoint

STEPS = 40
# A small MLP GAN on the bundled digits (BatchNorm in G: per-rank running statistics, averaged each step): cheap
# steps, so the launch (importing torch in three processes) dominates.
OVERRIDES = {"networks.G.hidden": [64], "networks.G.norm": "batch", "networks.D.hidden": [32], "train.batch_size": 32,
             "train.log_every": 5, "train.sample_every": 20, "train.checkpoint_every": 20, "train.grid_size": 16,
             "train.threads": 1, "data.sampling": "shuffle"}


def _torchrun(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANFORGE_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganforge", "train", *args, "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _sets(overrides: dict) -> list[str]:
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={json.dumps(v)}")]


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_train_like_one_and_resume_exactly(tmp_path):
    torch.set_num_threads(1)
    single = ganforge.train("gan-mlp-mnist", steps=STEPS, out=tmp_path / "single", progress=False,
                            overrides=OVERRIDES).run_dir
    two = tmp_path / "two"
    proc = _torchrun(["gan-mlp-mnist", "--steps", str(STEPS), "--out", str(two), *_sets(OVERRIDES)], tmp_path)

    # -- it finished, and rank 0 alone wrote: one summary, one README entry, each metrics step once -----------------
    assert proc.stdout.count("trained gan-mlp-mnist for 40 steps") == 1, proc.stdout
    assert (two / "README.md").read_text().count("Launched") == 1
    rows = [r for r in _rows(two) if r["kind"] == "train"]
    assert [r["step"] for r in rows] == list(range(5, STEPS + 1, 5))
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["latest", "step-00000020", "step-00000040"]
    assert sorted(p.name for p in (two / "samples").iterdir()) == [f"step-{s:08d}.png" for s in (0, 20, 40)]

    # -- both ranks held the same weights at every checkpoint ----------------------------------------------------------
    for step in (20, 40):
        doc = json.loads((two / "checkpoints" / f"step-{step:08d}" / "state.json").read_text())
        ranks = doc["state"]["distributed"]
        assert ranks["world_size"] == 2 and len(ranks["weights_sha256"]) == 2
        assert ranks["weights_sha256"][0] == ranks["weights_sha256"][1]

    # -- same init and fixed noise as one process: the step-0 grid is byte-identical --------------------------------
    first = "samples/step-00000000.png"
    assert (two / first).read_bytes() == (single / first).read_bytes()

    # -- the loss curve follows the one-process curve (same global batches; only rank 1's noise differs) -------------
    one_rows = [r for r in _rows(single) if r["kind"] == "train"]
    for key in ("d_loss", "g_loss"):
        a = torch.tensor([r[key] for r in one_rows])
        b = torch.tensor([r[key] for r in rows])
        assert torch.all(a > 0) and torch.all(b > 0)
        assert (a - b).abs().max() < 0.1 * a.abs().mean(), (key, a.tolist(), b.tolist())   # seen: <= 0.03x

    # -- and the weights moved the same way: the 2-process result is nearer the 1-process one than the start is ----
    cfg, info, _ = read_run(single)
    start = {f"nets.{k}": v for k, v in build_algorithm(cfg, info).nets.state_dict().items()}
    w1, _, _ = read_checkpoint(latest_checkpoint(single))
    w2, _, _ = read_checkpoint(latest_checkpoint(two))
    params = [k for k in w1 if w1[k].is_floating_point()]
    gap = sum(float((w1[k] - w2[k]).square().sum()) for k in params) ** 0.5
    travelled = sum(float((w1[k] - start[k]).square().sum()) for k in params) ** 0.5
    assert 0 < gap < 0.35 * travelled, (gap, travelled)   # seen: 0.08-0.14x; > 0: rank 1 draws its own noise

    # -- "killed" after the step-20 checkpoint, resumed under torchrun: bit-identical to the uninterrupted run ---------
    resumed = tmp_path / "resumed"
    shutil.copytree(two, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-00000040")
    (resumed / "checkpoints" / "latest").write_text("step-00000020\n")
    _torchrun(["--resume", str(resumed)], tmp_path)
    a, b = read_checkpoint(latest_checkpoint(two)), read_checkpoint(latest_checkpoint(resumed))
    assert a[2]["step"] == STEPS
    assert_same_checkpoint(a, b, rng_key="torch_ranks")
    resumed_rows = [r for r in _rows(resumed) if r["kind"] == "train"]
    assert [r["step"] for r in resumed_rows] == [r["step"] for r in rows]
    for r1, r2 in zip(rows, resumed_rows):
        for key in ("d_loss", "g_loss"):
            assert r1[key] == pytest.approx(r2[key], rel=1e-9), (r1["step"], key)
