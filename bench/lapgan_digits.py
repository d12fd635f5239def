"""Benchmark: LapGAN on the bundled digits, the domain FID of every pyramid level, and the DCGAN baseline of the same
data and budget.

Trains ``lapgan-digits`` (the 4,000 training digits of ``mnist5k``, a 3-level pyramid 7 -> 14 -> 28) for a wall-clock
budget, draws ``--n`` samples coarse to fine from fixed noise and measures, with ganforge's digit classifier (a LeNet
trained on the same 4,000 digits; its penultimate features, 28 px input):

* the FID of each level's output I~_k against the real training digits taken down to that level (the same pyramid
  operator, ``algorithm.pyramid``), both enlarged back to 28 px by the same repeated u(.) so the classifier reads them
  alike; beside it the floor, the 1,000 held-out real digits (``mnist5k?split=test``) treated the same way;
* the final FID (level K-1, the samples ``ganforge sample`` gives) against the plain training digits.

``--baseline`` trains ``dcgan-mnist`` (the book's DCGAN on the same digits) for the same budget and measures its final
FID the same way: run the bench twice, once each, with the same ``--seconds``. Writes ``levels.png`` (each level of
``--rows`` samples enlarged to 28 px, a column per level, the last the final sample), ``samples.png`` (the final
samples) and ``bench.json`` into the run directory. Not a test; one thread, about 10 minutes each:

    .venv/bin/python bench/lapgan_digits.py --seconds 480 --out runs/bench-lapgan
    .venv/bin/python bench/lapgan_digits.py --baseline --seconds 480 --out runs/bench-lapgan-dcgan
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.config import parse_set
from ganforge.data import load_source, to_uint8
from ganforge.metrics.evaluate import make_extractor
from ganforge.metrics.fid import fid_from_features
from ganforge.models.lapgan import gaussian_pyramid, upsample_to
from baseline_common import write_result
from ganforge.report import save_grid, save_panels

REF = "mnist5k?split=train"
HELD_OUT = "mnist5k?split=test"
SIZE = 28


def real_levels(source: str, levels: int, kind: str) -> list[torch.Tensor]:
    """uint8 images of ``source`` at each pyramid level, enlarged back to 28 px by u(.)."""
    x = load_source(source).x.float() / 127.5 - 1
    return [to_uint8(upsample_to(level, SIZE, kind), (-1.0, 1.0)) for level in gaussian_pyramid(x, levels, kind)]


@torch.no_grad()
def fake_levels(model: Any, n: int, seed: int) -> list[torch.Tensor]:
    """uint8 samples of each level (drawn coarse to fine from one noise per sample), enlarged to 28 px."""
    algo, outs = model.algorithm, []
    inputs = algo.sample_inputs(n, torch.Generator().manual_seed(seed), torch.device("cpu"))
    with eval_mode(*model.nets.values()):
        levels = algo.levels_of(inputs, model.nets)
    for level in levels:
        outs.append(to_uint8(upsample_to(level, SIZE, algo.pyramid), model.value_range))
    return outs


def fid(extractor: Any, fake: torch.Tensor, real: torch.Tensor) -> float:
    return round(fid_from_features(extractor(fake)[0], extractor(real)[0]), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=None, help="default lapgan-digits (dcgan-mnist with --baseline)")
    ap.add_argument("--baseline", action="store_true", help="train and measure the DCGAN baseline instead")
    ap.add_argument("--seconds", type=float, default=480.0, help="training wall-clock budget (default 480)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--n", type=int, default=1000, help="samples measured (default 1000)")
    ap.add_argument("--rows", type=int, default=16, help="samples in the grids")
    ap.add_argument("--run", default=None, help="measure this finished run instead of training one")
    ap.add_argument("--out", default="runs/bench-lapgan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = args.recipe or ("dcgan-mnist" if args.baseline else "lapgan-digits")

    result: dict[str, Any] = {"recipe": recipe}
    if args.run is None:
        overrides = {"train.threads": args.threads, "train.checkpoint_every": 100000, **parse_set(args.set)}
        t0 = time.time()
        run = ganforge.train(recipe, out=args.out, force=True, progress=False, time_limit_s=args.seconds,
                             overrides=overrides, command=f"bench/lapgan_digits.py --seconds {args.seconds}")
        wall = time.time() - t0
        run_dir = run.run_dir
        result.update({"budget_s": args.seconds, "train_wall_s": round(wall, 1), "steps": run.steps,
                       "steps_per_s": round(run.steps / wall, 3)})
    else:
        run_dir = Path(args.run)
    model = ganforge.load(run_dir)
    extractor = make_extractor("domain", REF, image_size=SIZE, channels=1)
    result["classifier_test_accuracy"] = extractor.info["test_accuracy"]
    reference = load_source(REF).x
    held_out = load_source(HELD_OUT).x
    result["floor: held-out real vs train, final"] = fid(extractor, held_out, reference)

    if model.algorithm.name == "lapgan":
        algo = model.algorithm
        levels = fake_levels(model, args.n, seed=123)
        real = real_levels(REF, len(algo.sizes), algo.pyramid)
        real_held = real_levels(HELD_OUT, len(algo.sizes), algo.pyramid)
        for k, size in enumerate(algo.sizes):
            result[f"level {k} ({size} px) FID"] = fid(extractor, levels[k], real[k])
            result[f"level {k} ({size} px) floor (held-out real)"] = fid(extractor, real_held[k], real[k])
        final = levels[-1]
        rows = {f"level {k} ({s} px)": level[:args.rows].float() / 255 for k, (s, level) in enumerate(zip(algo.sizes,
                                                                                                             levels))}
        save_panels({k: to_uint8(v, (0.0, 1.0)) for k, v in rows.items()}, run_dir / "levels.png", scale=2)
    else:
        final = to_uint8(model.sample(args.n, seed=123), model.value_range)
    result["final FID"] = fid(extractor, final, reference)
    save_grid(final[:64], run_dir / "samples.png", nrow=8, scale=2)
    write_result(result, run_dir)


if __name__ == "__main__":
    main()
