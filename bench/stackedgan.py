"""Benchmark: train ``stackedgan-mnist`` for a step budget on the bundled digits, then measure it.

Figures:
- the encoder (Encoder1(Encoder0(x))) held-out accuracy from its pretraining in ``setup`` (4000 train / 1000
  held-out digits), its pretraining time, and the same accuracy recomputed from the trained run's checkpoint (it
  must not have moved: the encoder is frozen during GAN training);
- label accuracy through both stages: 1000 samples, 100 per label, label -> G1(label, z1) -> G0(feature, z0),
  classified by ganforge's own digit classifier (``domain_classifier("mnist5k")``), and the classes present;
  also the book's ``enc1_acc`` (Encoder1 on G1's features) and the encoder's accuracy on the generated images;
- within-class variety: for 100 samples of each digit, the mean pairwise pixel distance and the spread of the stroke
  properties (``within_class_spread``), with both codes drawn, with only z0 and with only z1 drawn, against the
  100 held-out real digits of each class (the ratio to real: near 1 real-like variety, near 0 one image per digit);
- what z0 and z1 control: the book's traversals (figures 10.17 / 10.18: z0 a constant vector from -4 to 4 with
  z1 = 0; z1 from -1 to 1 with z0 = 0), measured with the stroke properties of ``disentangle_common``.
Grids (written with ``ganforge sample``): ``labels.png`` (``--labels 0-9``, figure 10.16), ``stage-z0.png`` and
``stage-z1.png`` (``--labels 0-9 --stage z0|z1``: a row per digit, only that code varies along the row),
``z0-sweep.png`` and ``z1-sweep.png`` (the book's constant-vector sweeps). Not a test; run it by hand, e.g.

    .venv/bin/python bench/stackedgan.py --steps 1000 --out runs/bench-info-stacked/stackedgan
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

import ganforge
from disentangle_common import (announced_classifier, bench_arguments, print_table, sample_grid, setup_facts,
                                trained_run, traversal_effects, within_class_spread)
from ganforge.data import load_source
from ganforge.data.mnist5k import split_train_test


def main() -> None:
    args = bench_arguments(__doc__, "stackedgan-mnist", "runs/bench-info-stacked/stackedgan")
    out = Path(args.out)

    clf = announced_classifier()
    trained = trained_run(args)
    run_dir = trained["run_dir"]
    facts = setup_facts(run_dir)
    model = ganforge.load(run_dir)
    algo = model.algorithm

    # the encoder after GAN training, on the same held-out digits as its pretraining
    _, test = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)
    encoder_after = algo.encoder_accuracy(test.x, test.y)

    # label accuracy through both stages, balanced labels
    k = algo.data.num_classes
    per = max(1, args.samples // k)
    fake, labels = model.sample_with_inputs(per * k, seed=123, labels=list(range(k)), per_row=per)
    probs, _ = clf.predict(fake, model.value_range)
    pred = probs.argmax(1)
    accuracy = float((pred == labels).float().mean())
    per_class = [round(float((pred[labels == c] == c).float().mean()), 3) for c in range(k)]
    present = int((torch.bincount(pred, minlength=10) >= max(1, int(0.02 * len(pred)))).sum())
    with torch.no_grad():
        inputs = algo.sample_inputs(per * k, torch.Generator().manual_seed(123), model.device,
                                    labels=list(range(k)), per_row=per)
        feature = model.nets["G1"](inputs["z1"], F.one_hot(inputs["label"], k).float())
        enc1_acc = float((algo.nets["E1"](feature).argmax(1) == inputs["label"]).float().mean())
    encoder_on_fakes = algo.encoder_accuracy(fake, labels)

    grids = out / "grids"
    sample_grid(run_dir, grids / "labels.png", "--n", "100", "--labels", "0-9")
    for z in ("z0", "z1"):
        sample_grid(run_dir, grids / f"stage-{z}.png", "--n", "100", "--labels", "0-9", "--stage", z)
    effects = {}
    for name, other, lo, hi in (("z0", "z1", -4.0, 4.0), ("z1", "z0", -1.0, 1.0)):
        sample_grid(run_dir, grids / f"{name}-sweep.png", "--n", "100", "--labels", "0-9", "--code",
                    f"{name}={lo}:{hi}", "--fix", f"{other}=0")
        x, _ = model.sample_with_inputs(100, seed=0, labels=list(range(10)), traverse=(name, lo, hi),
                                        fix={other: 0.0})
        effects[name] = traversal_effects(x, torch.linspace(lo, hi, 10).repeat(10), rows=10)

    # within-class variety: 100 samples per digit with both codes drawn, with only z0 drawn (z1 and the label shared
    # along the row) and with only z1 drawn, against 100 held-out real digits of each class
    spread = {"real": within_class_spread(test.x.float() / 255, test.y, k)}
    for name, controls in (("both_codes", {}), ("z0_only", {"stage": "z0"}), ("z1_only", {"stage": "z1"})):
        x, y = model.sample_with_inputs(100 * k, seed=5, labels=list(range(k)), per_row=100, **controls)
        spread[name] = within_class_spread(x, y, k)
    real_l2 = spread["real"]["pairwise_l2"]
    spread_ratio = {name: round(v["pairwise_l2"] / real_l2, 3) for name, v in spread.items() if name != "real"}

    steps = trained["steps"]
    result = {
        "recipe": args.recipe, "precision": args.precision, "threads": args.threads, "steps": steps,
        "train_wall_s": trained["train_wall_s"], "sittings": trained["sittings"],
        "steps_per_s": round(steps / max(trained["train_wall_s"], 1e-9), 3),
        "encoder_test_accuracy_setup": facts.get("encoder_test_accuracy"),
        "encoder_train_accuracy_setup": facts.get("encoder_train_accuracy"),
        "encoder_pretraining_s": facts.get("encoder_seconds"), "encoder_epochs": facts.get("encoder_epochs"),
        "encoder_test_accuracy_after_training": round(encoder_after, 4),
        "classifier_test_accuracy": round(clf.test_accuracy, 4), "samples": len(pred),
        "label_accuracy_both_stages": round(accuracy, 4), "label_accuracy_per_class": per_class,
        "classes_present_2pct": present, "enc1_acc_on_G1_features": round(enc1_acc, 4),
        "encoder_accuracy_on_generated_images": round(encoder_on_fakes, 4),
        "z0_sweep_effects": effects["z0"], "z1_sweep_effects": effects["z1"],
        "within_class_pairwise_l2_ratio_to_real": spread_ratio, "within_class_spread": spread,
        "grids": {p.stem: str(p) for p in sorted(grids.glob("*.png"))}, "run_dir": str(run_dir),
        "settings": args.set,
    }
    (run_dir / "bench.json").write_text(json.dumps(result, indent=1))
    print_table(result)


if __name__ == "__main__":
    main()
