"""Benchmark: the two data paths (data/streaming.py) on a folder of small PNGs.

Writes ``--n`` (default 20,000) random 28 x 28 grey PNGs in 10 class folders to a temporary directory, builds
``dcgan-mnist-quick`` on it (``data.source=folder:DIR``) and times drawing ``train.batch_size`` batches through the
trainer's ``next_batch``, in this one process (workers aside):

* ``memory``: ``data.path=memory``, the whole folder one uint8 tensor, a batch one index op;
* ``memory@5c65b42``: the same trainer and data, drawn by ``Trainer.next_batch`` as it was at commit 5c65b42 (its
  source read with ``git show`` and compiled into this process, as this tree's is for ``memory``), so the memory
  path can be seen not to have slowed;
* ``stream/wK``: ``data.path=stream``, a DataLoader with ``data.workers=K`` decoding each batch's PNGs.

img/s is images drawn (batch rows) per second, the median of ``--rounds`` rounds of ``--batches`` batches after a
warm-up (worker start-up excluded); the two memory variants alternate round by round so that load from other
processes on a shared machine falls on both alike. Not a test; run it by hand:

    .venv/bin/python bench/data_paths.py              # ~1 CPU-minute
    .venv/bin/python bench/data_paths.py --n 2000     # a smoke run

Measured (the defaults, on a 2-core AVX2 EPYC shared with other jobs): memory 479k img/s against 482k for the
5c65b42 next_batch (three runs: -1 %, -2 %, +6 %: noise; the only added work is one attribute test); stream 6.9k
img/s with no worker, 10.0k with 2 (one other core free here). A streamed batch costs Pillow's per-file open and
decode (~0.1 ms for a 28 x 28 PNG), which is why small data stays in memory.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ganforge.build import build  # noqa: E402
from ganforge.config import load_config  # noqa: E402
from ganforge.train.trainer import Trainer  # noqa: E402

# By module path: ``ganforge.train`` as an attribute is the train() function, so ``import ... as`` cannot reach it.
trainer_module = importlib.import_module("ganforge.train.trainer")

BASELINE = "5c65b42"


def write_pngs(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"c{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(folder / f"{i:06d}.png")


def baseline_next_batch(rev: str | None) -> Callable:
    """``Trainer.next_batch`` as committed at ``rev`` (None: as in the working tree), compiled in trainer.py's
    namespace (its imports). Both variants are compiled this same way, so the comparison is of their code alone: a
    function compiled here and the one imported from trainer.py differ by several % on their own (code placement)."""
    text = (Path(trainer_module.__file__).read_text() if rev is None else
            subprocess.run(["git", "show", f"{rev}:src/ganforge/train/trainer.py"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout)
    tree = ast.parse(text)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "next_batch")
    source = textwrap.dedent(ast.get_source_segment(text, fn) or "")
    namespace: dict = {}
    exec(compile(source, f"{rev}:trainer.py", "exec"), vars(trainer_module), namespace)   # noqa: S102
    return namespace["next_batch"]


def trainer_for(root: Path, path: str, workers: int, batch: int, run: Path) -> Trainer:
    over = {"data.source": f"folder:{root}", "data.path": path, "data.workers": workers, "train.batch_size": batch,
            "train.threads": 1}
    return Trainer(build(load_config("dcgan-mnist-quick", over)), run, progress=False)


def rate(draw: Callable[[], object], batches: int, batch: int) -> float:
    t0 = time.perf_counter()
    for _ in range(batches):
        draw()
    return batches * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="PNGs to write")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=100, help="batches per timed round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = ap.parse_args()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pngs"
        t0 = time.perf_counter()
        write_pngs(root, args.n)
        print(f"wrote {args.n} PNGs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        t0 = time.perf_counter()
        mem = trainer_for(root, "memory", 0, args.batch_size, Path(tmp) / "m")
        load_s = time.perf_counter() - t0
        old = types.MethodType(baseline_next_batch(BASELINE), mem)
        cur = types.MethodType(baseline_next_batch(None), mem)
        for _ in range(20):
            cur(), old()
        new_r, old_r = [], []
        for i in range(args.rounds):
            # 10x the batches: a memory batch is ~0.1 ms, too short a round for a stable figure otherwise; the order
            # alternates so that neither variant always runs first (warmer caches, a quieter machine)
            pair = [(new_r, cur), (old_r, old)]
            for out, draw in pair if i % 2 == 0 else pair[::-1]:
                out.append(rate(draw, args.batches * 10, args.batch_size))
        rows.append(("memory", statistics.median(new_r), f"next_batch of this tree; load (decode all) {load_s:.1f} s"))
        rows.append((f"memory@{BASELINE}", statistics.median(old_r), "next_batch as committed there, same trainer and data"))
        for w in args.workers:
            t0 = time.perf_counter()
            st = trainer_for(root, "stream", w, args.batch_size, Path(tmp) / f"s{w}")
            scan_s = time.perf_counter() - t0
            for _ in range(5):   # worker start-up and the first prefetch
                st.next_batch()
            r = [rate(st.next_batch, args.batches, args.batch_size) for _ in range(args.rounds)]
            assert st.stream_loader is not None
            st.stream_loader.close()
            rows.append((f"stream/w{w}", statistics.median(r), f"scan (headers only) {scan_s:.1f} s"))
    print(f"{args.n} PNGs 28x28 grey, batch {args.batch_size}, median of {args.rounds} rounds")
    print(f"| path | img/s | note |\n|---|---:|---|")
    for name, value, note in rows:
        print(f"| {name} | {value:,.0f} | {note} |")


if __name__ == "__main__":
    main()
