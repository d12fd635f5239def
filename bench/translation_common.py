"""Shared piece of the digit-domain translation benches (``bench/stargan_digits.py``, ``bench/shared_latent_digits.py``):
their common command line and the run they score, trained here or given with ``--run``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import ganforge
from ganforge.config import parse_set


def translation_bench_arguments(description: str, recipe: str, out: str | None) -> argparse.ArgumentParser:
    """--recipe, --steps, --threads, --rows, --run, --out (default ``out``, or runs/bench-RECIPE), --set."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=recipe)
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--rows", type=int, default=20, help="digits in the grids (spread over the classes)")
    ap.add_argument("--run", default=None, help="evaluate this finished run instead of training one")
    ap.add_argument("--out", default=out, help="default runs/bench-RECIPE" if out is None else None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return ap


def trained_or_given_run(args: argparse.Namespace, bench: str) -> tuple[Path, Path, float]:
    """(run dir, bench output dir, training wall seconds): ``args.recipe`` trained into OUT/run at ``args.threads``
    threads with ``--steps`` / ``--set``, or the finished ``--run`` (0 s)."""
    out = Path(args.out or f"runs/bench-{args.recipe}")
    torch.set_num_threads(args.threads)
    overrides = {"train.threads": args.threads, **parse_set(args.set)}
    if args.steps:
        overrides["train.steps"] = args.steps
    if args.run is not None:
        return Path(args.run), out, 0.0
    t0 = time.time()
    command = f"{bench} --recipe {args.recipe} " + " ".join(f"--set {s}" for s in args.set)
    run = ganforge.train(args.recipe, out=out / "run", force=True, progress=False, overrides=overrides,
                         command=command)
    return run.run_dir, out, time.time() - t0
