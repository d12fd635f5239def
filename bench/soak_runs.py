"""Crash-safety soak (issue 16): kill, signal and race training processes on one run at random moments.

Each trial starts (or resumes) `ganforge train gan-toy` into one run directory, waits a random time, then does one
of: SIGKILL, SIGINT, SIGTERM, or starts a second `--resume` of the same run while the first is training (a race).
After every trial it checks that the latest checkpoint verifies (sha256 of every file), that a racing second writer
was refused (exit 2, one line) and that metrics.jsonl never mixes two writers (steps strictly increasing after the
resume truncation, one config). Finally the run is resumed to its end and compared with a straight run of the same
length: every tensor of the final checkpoints must be bit-identical.

    .venv/bin/python bench/soak_runs.py --trials 30 --steps 12000 --out runs/soak

Prints a table of the outcomes. Not a test: it takes minutes and starts dozens of processes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GANFORGE = [sys.executable, "-m", "ganforge"]
ACTIONS = ("kill", "sigint", "sigterm", "race")


def train_cmd(run: Path, steps: int, resume: bool) -> list[str]:
    common = ["--steps", str(steps), "--no-progress"]
    if resume:
        return GANFORGE + ["train", "--resume", str(run)] + common
    return GANFORGE + ["train", "gan-toy", "--out", str(run), "--set", "train.threads=1", "--set",
                       "train.checkpoint_every=50", "--set", "train.log_every=25", "--set",
                       "train.sample_every=1000"] + common


def has_checkpoint(run: Path) -> bool:
    return (run / "checkpoints" / "latest").is_file()


def check_run(run: Path) -> list[str]:
    """Problems found in the run directory (empty: consistent)."""
    from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
    problems = []
    ckpt = latest_checkpoint(run)
    if ckpt is not None:
        try:
            read_checkpoint(ckpt)           # verifies every file's sha256 and the state
        except Exception as e:              # noqa: BLE001 (a bench reports, it does not stop)
            problems.append(f"latest checkpoint {ckpt.name} does not verify: {e}")
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        steps = [json.loads(l)["step"] for l in metrics.read_text().splitlines() if l.strip()]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            problems.append(f"metrics.jsonl steps not increasing: {steps[-8:]}")
    if list(run.parent.glob(run.name + ".replaced-*")):
        problems.append("a run directory was moved aside")
    return problems


def tensors_equal(x: object, y: object) -> bool:
    """Nested training states (dicts, lists, tensors, numbers) equal bit for bit."""
    import torch
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(tensors_equal(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(tensors_equal(a, b) for a, b in zip(x, y))
    if torch.is_tensor(x) and torch.is_tensor(y):
        return x.dtype == y.dtype and x.shape == y.shape and bool(x.equal(y))
    return x == y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-wait", type=float, default=6.0, help="longest random wait before acting (s)")
    ap.add_argument("--out", default="runs/soak")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run, straight = out / "run", out / "straight"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    counts = {a: 0 for a in ACTIONS}
    outcomes: dict[str, int] = {}
    problems: list[str] = []
    t0 = time.time()
    for trial in range(args.trials):
        action = rng.choice(ACTIONS)
        counts[action] += 1
        resume = has_checkpoint(run)
        if not resume and run.exists():
            shutil.rmtree(run)     # never reached a checkpoint (killed in set-up): start it again
        proc = subprocess.Popen(train_cmd(run, args.steps, resume), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(rng.uniform(0.2, args.max_wait))
        if action == "race":
            second = subprocess.run(train_cmd(run, args.steps, True), capture_output=True, text=True, env=env)
            still = proc.poll() is None
            lines = second.stderr.strip().splitlines()
            if still and not (second.returncode == 2 and len(lines) == 1 and "is being trained by" in lines[0]):
                if not (second.returncode == 2 and "no checkpoint" in second.stderr):   # the first had none yet
                    problems.append(f"trial {trial}: racing resume was not refused: rc {second.returncode} "
                                    f"{second.stderr.strip()[-200:]}")
            proc.send_signal(signal.SIGINT)
        elif proc.poll() is None:
            proc.send_signal({"kill": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}[action])
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:     # a process that does not stop is a finding, not the end of the soak
            stack = Path(f"/proc/{proc.pid}/wchan")
            where = stack.read_text() if stack.exists() else "?"
            proc.kill()
            _, err = proc.communicate()
            problems.append(f"trial {trial} ({action}): still running 120 s after the signal (wchan {where}); "
                            f"killed. stderr: {err.strip()[-300:]}")
        early = proc.returncode == -15 and not err.strip()    # before Python reached ganforge's handlers
        key = f"{action}: rc {proc.returncode}" + (" (at start-up, nothing written)" if early else "")
        outcomes[key] = outcomes.get(key, 0) + 1
        if proc.returncode not in (0, 130, -9, 2) and not early:
            problems.append(f"trial {trial} ({action}): rc {proc.returncode}: {err.strip()[-300:]}")
        problems += [f"trial {trial} ({action}): {p}" for p in check_run(run)]
        if "Traceback" in err:
            problems.append(f"trial {trial} ({action}): traceback on stderr")
    # finish the run, then the straight one, and compare
    for _ in range(3):
        done = subprocess.run(train_cmd(run, args.steps, has_checkpoint(run)), capture_output=True, text=True,
                              env=env)
        if done.returncode == 0:
            break
    subprocess.run(train_cmd(straight, args.steps, False), check=True, capture_output=True, env=env)
    from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
    a = read_checkpoint(latest_checkpoint(run))
    b = read_checkpoint(latest_checkpoint(straight))
    same = a[0].keys() == b[0].keys() and all(a[0][k].equal(b[0][k]) for k in a[0])
    same_opt = tensors_equal(a[1], b[1])
    print(f"\nsoak: {args.trials} trials on gan-toy, {args.steps} steps, 1 thread, {time.time() - t0:.0f} s")
    print("| action | trials |\n|---|---|")
    for k, v in counts.items():
        print(f"| {k} | {v} |")
    print("\n| outcome | count |\n|---|---|")
    for k, v in sorted(outcomes.items()):
        print(f"| {k} | {v} |")
    print(f"\nfinal step {a[2]['step']} vs straight {b[2]['step']}: weights bit-identical: {same}; "
          f"optimizer, RNG and data-order state bit-identical: {same_opt}")
    print(f"problems: {len(problems)}")
    for p in problems:
        print("  -", p)
    return 0 if same and same_opt and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
