"""Benchmark: ProGAN against the DCGAN baseline on the same data and CPU budget, by the domain FID.

Trains ``--recipe`` (default ``progan-digits``: the bundled digits at 32 px grown 4 -> 32; ``progan-colour``: 64 px
patches of the bundled photos grown 4 -> 64), measures its training wall time, then trains the baseline ``dcgan-mnist``
(the book's DCGAN, ``dcgan-book`` networks) on the same data at the same size for the same wall time
(``train.time_limit_s``), and evaluates both with ``ganforge.metrics.evaluate`` on ganforge's domain classifier of the
data (a LeNet trained on the reference's labelled training split; its held-out accuracy is printed): domain FID, KID,
precision / recall and the class figures, for ``--samples`` samples of the ProGAN run's EMA generator and of its
generator, and of the baseline's generator (it keeps no EMA copy), against the recipe's training data; and the held-out
real data (``--held-out``) as the floor, resized alike. Also prints where the ProGAN run's report (the phase chart)
and last grids are. Not a test; run it by hand (one thread, about 10 minutes per run, about 25 in all with the
evaluation):

    .venv/bin/python bench/progan_digits.py --threads 1 --out runs/bench-progan-digits
    .venv/bin/python bench/progan_digits.py --threads 1 --recipe progan-colour --out runs/bench-progan-colour
    .venv/bin/python bench/progan_digits.py --run runs/bench-progan-digits/progan
        --baseline-run runs/bench-progan-digits/dcgan        # (one line) evaluate finished runs
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import ganforge
from ganforge.config import load_config, parse_set
from ganforge.data import load_source, prepare
from ganforge.metrics.evaluate import Samples, evaluate, load_reference, load_target, make_extractor

from baseline_common import markdown_table, timed_train

METRICS = ["fid", "kid", "pr", "classes"]
COLUMNS = [("fid", "FID"), ("kid", "KID"), ("precision", "prec"), ("recall", "recall"), ("modes", "modes"),
           ("kl_uniform", "KL(cls||U)"), ("confident_share", "conf")]
HELD_OUT = {"progan-digits": "mnist5k?split=test", "progan-colour": "photos?size=64&patches=500&split=test"}


def table(rows: dict[str, dict[str, Any]]) -> str:
    return markdown_table(rows, COLUMNS)


def train(recipe: str, out: Path, overrides: dict[str, Any]) -> tuple[Path, float, int]:
    return timed_train(recipe, out, overrides, "bench/progan_digits.py")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="progan-digits", help="progan-digits or progan-colour")
    ap.add_argument("--baseline", default="dcgan-mnist", help="the DCGAN recipe run on the same data and budget")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--samples", type=int, default=1000, help="generated samples per run to evaluate")
    ap.add_argument("--held-out", default=None, help="real held-out data for the floor row (default per recipe)")
    ap.add_argument("--run", default=None, help="evaluate this finished ProGAN run instead of training one")
    ap.add_argument("--baseline-run", default=None, help="evaluate this finished baseline run instead of training")
    ap.add_argument("--baseline-seconds", type=float, default=None,
                    help="the baseline's budget (default: the ProGAN run's training wall time)")
    ap.add_argument("--out", default="runs/bench-progan-digits")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for the ProGAN run")
    args = ap.parse_args()

    cfg = load_config(args.recipe, parse_set(args.set))
    source, size = cfg.data.source, cfg.data.image_size
    ref = load_source(source, seed=0)
    channels = int(ref.x.shape[1])
    size = size or int(ref.x.shape[-1])
    out = Path(args.out)
    result: dict[str, Any] = {"recipe": args.recipe, "baseline": args.baseline, "data": source, "image_size": size}

    if args.run:
        progan_dir = Path(args.run)
    else:
        progan_dir, seconds, steps = train(args.recipe, out / "progan",
                                           {"train.threads": args.threads, **parse_set(args.set)})
        result.update(progan_train_s=round(seconds, 1), progan_steps=steps)
        print(f"{args.recipe}: {steps} steps in {seconds:.0f} s")
    budget = args.baseline_seconds or result.get("progan_train_s")
    if args.baseline_run:
        baseline_dir = Path(args.baseline_run)
    else:
        if not budget:
            raise SystemExit("give --baseline-seconds (or --baseline-run) when evaluating an existing ProGAN run")
        # the same data at the same size; the book DCGAN's own optimiser and batch; stopped by the wall-time budget
        baseline_dir, seconds, steps = train(args.baseline, out / "dcgan", {
            "data.source": source, "data.image_size": size, "data.channels": channels, "train.threads": args.threads,
            "train.steps": 1_000_000, "train.time_limit_s": budget, "train.sample_every": 500,
            "train.checkpoint_every": 100_000, "train.grid_size": 64})
        result.update(baseline_train_s=round(seconds, 1), baseline_steps=steps, baseline_budget_s=budget)
        print(f"{args.baseline}: {steps} steps in {seconds:.0f} s (budget {budget:.0f} s)")

    t0 = time.time()
    extractor = make_extractor("domain", source, image_size=size, channels=channels)
    result["classifier_test_accuracy"] = extractor.info.get("test_accuracy")
    print(f"domain classifier of {source}: held-out accuracy {extractor.info.get('test_accuracy')} "
          f"({time.time() - t0:.0f} s incl. training if not cached)")
    reference = load_reference(source, image_size=size, channels=channels)
    rows: dict[str, dict[str, Any]] = {}
    for name, run_dir, ema in ((f"{args.recipe} (EMA G)", progan_dir, True), (f"{args.recipe} (G)", progan_dir, False),
                               (f"{args.baseline} baseline", baseline_dir, True)):
        rows[name] = evaluate(load_target(str(run_dir), args.samples, seed=123, use_ema=ema), METRICS,
                              reference=reference, extractor=extractor)
    held_out = args.held_out or HELD_OUT.get(args.recipe)
    if held_out:
        real = prepare(load_source(held_out, seed=0), size, channels)
        n = min(args.samples, len(real.x))
        rows[f"held-out real ({held_out})"] = evaluate(Samples("image", real.x[:n], None if real.y is None else
                                                               real.y[:n], held_out), METRICS, reference=reference,
                                                       extractor=extractor)
    grids = {name: str(sorted((d / "samples").glob("step-*.png"))[-1]) for name, d in
             (("progan", progan_dir), ("baseline", baseline_dir))}
    result.update(rows=rows, grids=grids, report=str(progan_dir / "report.html"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=1, default=str))
    for k, v in result.items():
        if not isinstance(v, dict):
            print(f"{k}: {v}")
    print(f"\n{args.samples} samples each vs {len(reference.images)} real images of {source} at {size} px "
          "(domain features):\n")
    print(table(rows))
    print(f"\ngrids: {grids}\nreport: {progan_dir / 'report.html'}")


if __name__ == "__main__":
    main()
