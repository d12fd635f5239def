"""Benchmark: train ``infogan-mnist`` for a step budget on the bundled digits, then measure disentanglement.

Figures from ganforge's own digit classifier (``domain_classifier("mnist5k")``, held-out accuracy printed):
- purity of the categorical code: 1000 samples, 100 per code value (continuous codes and z random), classified;
  the best one-to-one mapping code value -> digit (Hungarian algorithm) and the share of samples it explains;
  also the plain accuracy (digit == code value: the book's code is supervised by the labels, so the mapping should
  be the identity) and the classes present;
- for each continuous code, a traversal grid (a row per digit, the code swept from -2 to 2 along the row, the other
  code 0 and z fixed along the row: the book's figures 10.6 / 10.7) and the stroke measurements along it
  (``disentangle_common``): which visible property each code changes.
Grids (written with ``ganforge sample``): ``labels.png`` (``--labels 0-9 --fix c1=0 --fix c2=0``, figure 10.5),
``c1.png`` and ``c2.png``. Not a test; run it by hand, e.g.

    .venv/bin/python bench/infogan.py --steps 1000 --out runs/bench-info-stacked/infogan
    .venv/bin/python bench/infogan.py --steps 2000 --resume --out runs/bench-info-stacked/infogan   # 1000 more
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

import ganforge
from disentangle_common import announced_classifier, bench_arguments, trained_run, print_table, sample_grid, traversal_effects
from ganforge.metrics.code_purity import code_purity


def main() -> None:
    args = bench_arguments(__doc__, "infogan-mnist", "runs/bench-info-stacked/infogan")
    out = Path(args.out)

    clf = announced_classifier()
    trained = trained_run(args)
    run_dir = trained["run_dir"]
    model = ganforge.load(run_dir)
    k = model.algorithm.num_categories

    # purity: balanced code values, everything else random
    per = max(1, args.samples // k)
    fake, codes = model.sample_with_inputs(per * k, seed=123, labels=list(range(k)), per_row=per)
    probs, _ = clf.predict(fake, model.value_range)
    pred = probs.argmax(1)
    pur = code_purity(codes, pred, k, len(clf.class_names))
    present = int((torch.bincount(pred, minlength=10) >= max(1, int(0.02 * len(pred)))).sum())

    grids = out / "grids"
    sample_grid(run_dir, grids / "labels.png", "--n", "100", "--labels", "0-9", "--fix", "c1=0", "--fix", "c2=0")
    effects = {}
    for name, other in (("c1", "c2"), ("c2", "c1")):
        sample_grid(run_dir, grids / f"{name}.png", "--n", "100", "--labels", "0-9", "--code", f"{name}=-2:2",
                    "--fix", f"{other}=0")
        x, _ = model.sample_with_inputs(100, seed=0, labels=list(range(10)), traverse=(name, -2.0, 2.0),
                                        fix={other: 0.0})
        effects[name] = traversal_effects(x, torch.linspace(-2, 2, 10).repeat(10), rows=10)

    steps = trained["steps"]
    result = {
        "recipe": args.recipe, "precision": args.precision, "threads": args.threads, "steps": steps,
        "train_wall_s": trained["train_wall_s"], "sittings": trained["sittings"],
        "steps_per_s": round(steps / max(trained["train_wall_s"], 1e-9), 3),
        "classifier_test_accuracy": round(clf.test_accuracy, 4), "samples": len(pred),
        "code_purity": round(pur.purity, 4), "code_mapping": pur.mapping,
        "label_accuracy_identity": round(pur.identity_accuracy, 4), "classes_present_2pct": present,
        "c1_effects": effects["c1"], "c2_effects": effects["c2"],
        "grids": {p.stem: str(p) for p in sorted(grids.glob("*.png"))}, "run_dir": str(run_dir),
        "settings": args.set,
    }
    (run_dir / "bench.json").write_text(json.dumps(result, indent=1))
    print_table(result)


if __name__ == "__main__":
    main()
