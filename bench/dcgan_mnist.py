"""Benchmark: train ``dcgan-mnist`` on the bundled MNIST digits for a fixed CPU budget, then measure learning.

Prints steps/s and one table from ``ganforge.metrics.evaluate`` with ganforge's own digit classifier (a LeNet
trained on the 4,000-digit train split of ``mnist5k``; its held-out accuracy is printed): domain FID, KID, IS,
precision/recall, density/coverage, modes (classes present), KL of the class histogram to uniform and the share
classified confidently, for 1,000 generated digits and, as the floor, for the 1,000 held-out real digits
(``mnist5k?split=test``), both against the train split. Same sizes on both rows, so the FIDs are comparable.
Not a test; run it by hand:

    .venv/bin/python bench/dcgan_mnist.py --seconds 600 --out runs/bench-dcgan-mnist
    .venv/bin/python bench/dcgan_mnist.py --run runs/demo          # evaluate an existing run only
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ganforge
from ganforge.metrics.evaluate import (evaluate, load_reference, load_target, make_extractor,
                                       samples_from_source)

REF = "mnist5k?split=train"
HELD_OUT = "mnist5k?split=test"
COLUMNS = [("fid", "FID"), ("kid", "KID"), ("is", "IS"), ("precision", "prec"), ("recall", "recall"),
           ("density", "density"), ("coverage", "cover"), ("modes", "modes"), ("kl_uniform", "KL(cls||U)"),
           ("confident_share", "conf")]


def measure(target_samples, reference, extractor) -> dict:
    return evaluate(target_samples, ["fid", "kid", "is", "pr", "dc", "classes"], reference=reference,
                    extractor=extractor)


def table(rows: dict[str, dict]) -> str:
    head = "| samples | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, r in rows.items():
        cells = []
        for key, _ in COLUMNS:
            v = r.get(key)
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="dcgan-mnist")
    ap.add_argument("--seconds", type=float, default=600.0, help="training time budget (default 600 = 10 min)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--samples", type=int, default=1000, help="generated samples to evaluate (default 1000)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--out", default="runs/bench-dcgan-mnist")
    ap.add_argument("--run", help="evaluate this existing run directory instead of training")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    t0 = time.time()
    extractor = make_extractor("domain", REF, image_size=28, channels=1)
    print(f"domain classifier: held-out accuracy {extractor.info['test_accuracy']:.4f} on "
          f"{extractor.info['test_size']} bundled digits ({time.time() - t0:.0f} s incl. training if not cached)")

    result: dict = {}
    if args.run:
        run_dir = Path(args.run)
    else:
        from ganforge.config import parse_set
        overrides = {"train.checkpoint_every": 500, "train.threads": args.threads, **parse_set(args.set)}
        t0 = time.time()
        run = ganforge.train(args.recipe, out=args.out, force=True, time_limit_s=args.seconds,
                             precision=args.precision, overrides=overrides,
                             command=f"bench/dcgan_mnist.py --seconds {args.seconds} --precision {args.precision}")
        train_s = time.time() - t0
        run_dir = run.run_dir
        result.update({"recipe": args.recipe, "precision": args.precision, "budget_s": args.seconds,
                       "train_wall_s": round(train_s, 1), "steps": run.steps,
                       "steps_per_s": round(run.steps / train_s, 3)})

    reference = load_reference(REF)
    generated = measure(load_target(str(run_dir), args.samples, seed=123), reference, extractor)
    real = measure(samples_from_source(HELD_OUT, None, 0), reference, extractor)
    grid = sorted((run_dir / "samples").glob("step-*.png"))[-1]
    result.update({"run_dir": str(run_dir), "grid": str(grid), "classifier_test_accuracy": extractor.info["test_accuracy"],
                   "generated": generated, "real_heldout": real})
    (run_dir / "bench.json").write_text(json.dumps(result, indent=1))
    for k, v in result.items():
        if not isinstance(v, dict):
            print(f"{k}: {v}")
    print(f"\n{args.samples} generated vs {len(reference.images)} real digits of {REF} (domain features):\n")
    print(table({f"{Path(run_dir).name} ({generated['n']})": generated, f"held-out real ({real['n']})": real}))
    print(f"\nclass histogram (generated): {generated['class_histogram']}")


if __name__ == "__main__":
    main()
