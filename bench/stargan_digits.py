"""Benchmark: StarGAN between digit domains: does G(x, c) reach the target domain, and keep the digit?

Trains ``stargan-digits`` (three domains, plain / negative / edges, mixed in ``mnist5k?split=train&domains=...``; each
digit shown in one domain, so no pair is ever seen), or ``--recipe stargan-digits-two-sets`` (two datasets with
different label sets and the mask vector), then translates each of the 1,000 held-out digits (the recipe's
``data.held_out``: the first dataset's domains) to every domain the model knows. The true version of every held-out
digit in every domain is known (``derive`` of the original digit; never used for training), so, independent of the
trained D:

* target-domain accuracy, two ways: (a) the paper's protocol (Choi et al. 2018 section 4.5 trains a classifier on
  real images and classifies the translations): a LeNet (``metrics/domain.py``) trained here on the 4,000 real
  training digits of all the model's domains with the domain as the label; (b) stricter, with no classifier to
  fool: an output counts as in the target domain when, among the digit's true versions in all the model's domains,
  the target's is the nearest in mean absolute difference. Per target domain and overall;
* content preservation: the digit classifier of the target domain (a LeNet trained on real digits of that domain,
  ``metrics/content.py``, cached) reads the translation, against the input's label; per target and overall; the
  brief's headline figure is the plain classifier on translations to plain (inputs from every domain);
* baselines through the same figures: "copy the input" (outputs = inputs: right only when the target is the input's
  own domain) and the untrained generator (the run's initial weights, rebuilt from its seed); the classifiers'
  ceiling on the true versions;
* a grid ``grid.png``: input | the input translated to each domain | the true versions, 20 digits over the classes.

Not a test; run it by hand, e.g. (one thread, about 10 minutes; ``--run DIR`` evaluates a finished run instead):

    .venv/bin/python bench/stargan_digits.py --threads 1 --out runs/bench-stargan
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.data import Dataset, load_source, to_model_range, to_uint8
from ganforge.data.mnist5k import derive
from ganforge.metrics.content import content_classifier, content_preservation
from ganforge.metrics.domain import LeNet, to_unit, train_classifier
from ganforge.report import save_panels

from translation_common import trained_or_given_run, translation_bench_arguments

Translator = Callable[[torch.Tensor, str], torch.Tensor]     # uint8 inputs, target domain -> uint8 outputs


def true_versions(digits: torch.Tensor, domains: list[str]) -> torch.Tensor:
    """uint8 D x N x 1 x 28 x 28: each plain digit in each domain."""
    return torch.stack([digits if d == "plain" else derive(digits, d) for d in domains])


def domain_classifier(domains: list[str]) -> tuple[LeNet, float]:
    """A LeNet that tells the domains apart, trained on the 4,000 real training digits, each shown in one of
    ``domains`` (``mnist5k?split=train&domains=...``), the domain as the label; and its held-out accuracy."""
    train = load_source(f"mnist5k?split=train&domains={','.join(domains)}", seed=0)
    ds = Dataset(x=train.x, y=train.fields["domain"], name="digit domains", class_names=list(domains))
    net, accuracy, _, _ = train_classifier(ds, seed=0, epochs=3)
    return net.eval(), accuracy


def figures(translate: Translator, inputs: torch.Tensor, digits: torch.Tensor, labels: torch.Tensor,
            domains: list[str], classifier: LeNet) -> dict[str, float]:
    """Target-domain accuracy (domain classifier; nearest true version) and content preservation of ``translate``
    to each of ``domains``, and overall."""
    versions = true_versions(digits, domains).float()
    out: dict[str, float] = {}
    said, hits, reads = [], [], []
    for k, name in enumerate(domains):
        y = translate(inputs, name)
        with torch.no_grad():
            said.append((classifier(to_unit(y)).argmax(1) == k).float().mean())
        nearest = (y.float().unsqueeze(0) - versions).abs().flatten(2).mean(2).argmin(0)
        hits.append((nearest == k).float().mean())
        source = "mnist5k" if name == "plain" else f"mnist5k?domain={name}"
        reads.append(content_preservation(content_classifier(source), y, labels)["content_accuracy"])
        out[f"to {name}: domain acc (classifier)"] = round(float(said[-1]), 4)
        out[f"to {name}: domain acc (nearest version)"] = round(float(hits[-1]), 4)
        out[f"to {name}: content"] = round(float(reads[-1]), 4)
    out["domain acc, classifier (all targets)"] = round(float(torch.stack(said).mean()), 4)
    out["domain acc, nearest version (all targets)"] = round(float(torch.stack(hits).mean()), 4)
    out["content (all targets)"] = round(sum(reads) / len(reads), 4)
    return out


def generator_translator(algorithm: Any, G: torch.nn.Module, value_range: tuple[float, float]) -> Translator:
    @torch.no_grad()
    def run(images: torch.Tensor, to: str) -> torch.Tensor:
        with eval_mode(G):
            outs = [algorithm.translate(to_model_range(images[i:i + 250], value_range), {"G": G}, to=to)
                    for i in range(0, len(images), 250)]
        return to_uint8(torch.cat(outs).float(), value_range)
    return run


def main() -> None:
    args = translation_bench_arguments(__doc__, "stargan-digits", "runs/bench-stargan").parse_args()
    run_dir, out, wall = trained_or_given_run(args, "bench/stargan_digits.py")
    model = ganforge.load(run_dir)
    algo, vr = model.algorithm, model.value_range
    domains = [algo.qualified(s, k) for s in algo.sets if not s.multi_label for k in range(s.size)]
    held = load_source(model.config.data.held_out, seed=0)
    plain = load_source("mnist5k?split=test", seed=0)          # the same 1,000 digits, in the same order
    assert torch.equal(held.y, plain.y)
    inputs, digits, labels = held.x, plain.x, plain.y

    trained = generator_translator(algo, model.nets["G"], vr)
    initial = build_algorithm(model.config, model.info).nets["G"]   # the weights training started from (its seed)
    untrained = generator_translator(algo, initial, vr)
    classifier, classifier_accuracy = domain_classifier(domains)
    result_rows: dict[str, dict[str, float]] = {
        "trained G": figures(trained, inputs, digits, labels, domains, classifier),
        "copy the input": figures(lambda x, to: x, inputs, digits, labels, domains, classifier),
        "untrained G": figures(untrained, inputs, digits, labels, domains, classifier),
    }
    ceiling = {f"to {d}: content": round(content_preservation(content_classifier(
        "mnist5k" if d == "plain" else f"mnist5k?domain={d}"), v, labels)["content_accuracy"], 4)
        for d, v in zip(domains, true_versions(digits, domains))}
    ceiling["domain acc, classifier (all targets)"] = round(classifier_accuracy, 4)   # on held-out real digits

    pick = torch.linspace(0, len(labels) - 1, args.rows).round().long()     # the held-out digits are sorted by class
    panels = {"input": inputs[pick]}
    panels.update({f"to {d}": trained(inputs[pick], d) for d in domains})
    panels.update({f"true {d}": v[pick] for d, v in zip(domains, true_versions(digits, domains))})
    out.mkdir(parents=True, exist_ok=True)
    grid = save_panels(panels, out / "grid.png", scale=3)

    steps = model.step
    result = {"recipe": model.config.name, "domains": domains, "steps": steps,
              "batch_size": model.config.train.batch_size, "threads": args.threads,
              "train_wall_s": round(wall, 1) if args.run is None else None, "heldout": len(labels),
              "figures": result_rows, "ceiling (true versions)": ceiling, "grid": str(grid), "run_dir": str(run_dir),
              "overrides": args.set}
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    done = f"{steps} steps in {wall:.0f} s at {args.threads} thread(s)" if args.run is None else f"{steps} steps"
    print(f"\n{model.config.name}, domains {', '.join(domains)}; {done}; {len(labels)} held-out digits "
          f"({model.config.data.held_out})")
    keys = list(result_rows["trained G"])
    print("\n| figure | trained G | copy the input | untrained G | true versions |\n|---|---|---|---|---|")
    for k in keys:
        print(f"| {k} | " + " | ".join(str(result_rows[r][k]) for r in result_rows) + f" | {ceiling.get(k, '')} |")
    print(f"\ngrid: {grid}")


if __name__ == "__main__":
    main()
