"""Steps/s of one training run at each torch thread count, on an idle machine and beside a competing job.

Why: torch's default is one OpenMP thread per core, and with another job on the same cores those threads wait on
each other. This bench measures it so ``train.threads=0`` (auto: the idle cores, ``train/threads.py``) rests on a
figure. The competitor is a second ganforge training process of the same recipe with 1 thread.

    .venv/bin/python bench/threads.py --recipe dcgan-mnist-quick --steps 150
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys, time, torch, ganforge
t = {}
def probe(tr):
    if tr.step == 10: t['start'], t['threads'] = time.perf_counter(), torch.get_num_threads()
over = {'train.threads': int(sys.argv[2]), 'train.log_every': 10**6, 'train.sample_every': 10**6,
        'train.checkpoint_every': 10**6, 'train.grid_size': 4}
ganforge.train(sys.argv[1], steps=int(sys.argv[3]), out=sys.argv[4], progress=False, overrides=over, on_step=probe)
print(t['threads'], (int(sys.argv[3]) - 10) / (time.perf_counter() - t['start']))
"""


def run(recipe: str, threads: int, steps: int, out: str) -> tuple[int, float]:
    """(threads used, steps/s) of one run; threads 0 is ganforge's auto."""
    res = subprocess.run([sys.executable, "-c", CHILD, recipe, str(threads), str(steps), out], capture_output=True,
                         text=True, check=True)
    used, rate = res.stdout.strip().splitlines()[-1].split()
    return int(used), float(rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="dcgan-mnist-quick")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", default="1,2,0", help="thread counts to measure (0: ganforge's auto), e.g. 1,2,0")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shared in (False, True):
            for t in [int(v) for v in args.threads.split(",")]:
                rival = None
                if shared:   # a competing job for the whole measurement, started first
                    rival = subprocess.Popen([sys.executable, "-c", CHILD, args.recipe, "1", str(args.steps * 20),
                                              os.path.join(tmp, f"rival-{t}")], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
                    time.sleep(8)    # past its imports and data loading: training at full speed
                try:
                    used, rate = run(args.recipe, t, args.steps, os.path.join(tmp, f"run-{shared}-{t}"))
                finally:
                    if rival is not None:
                        rival.kill()
                        rival.wait()
                label = f"auto ({used})" if t == 0 else str(used)
                rows.append({"machine": "shared" if shared else "idle", "threads": label, "steps_per_s": round(rate, 3)})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.recipe}, {os.cpu_count()} cores")
    print("| machine | threads | steps/s |\n|---|---|---|")
    for r in rows:
        print(f"| {r['machine']} | {r['threads']} | {r['steps_per_s']} |")


if __name__ == "__main__":
    main()
