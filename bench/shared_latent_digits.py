"""Benchmark: the shared-latent translators (UNIT, ComboGAN, XGAN) between digit domains, trained unpaired.

Trains a ``*-digits`` recipe (default ``unit-digits``: plain digits and their edges; ``xgan-digits`` the same pair;
``combogan-digits`` three domains: plain, negative, edges), each domain a stream of the same 4,000 training digits
drawn in its own order, so no pair is ever seen. Then, on the 1,000 held-out digits (``mnist5k?split=test``), whose
true version in every domain is known (``derive``) but was never used, for every ordered pair of domains src -> dst:

* content preservation: the outputs read by a domain classifier trained on *real* dst digits (``mnist5k`` or
  ``mnist5k?domain=dst``, its 4,000 training digits; a cached LeNet), against the labels of the digits they came
  from; beside it the same classifier on the true dst versions (the ceiling) and on the untrained networks' outputs;
* L1 to the true dst version (mean absolute difference, 0..1 of the data range), against the baselines "copy the
  input", "blank" (every pixel the dst background) and the untrained networks (the run's initial weights, rebuilt from
  its seed);
* a grid per pair ``grid-SRC-DST.png``: input | output | true dst version.

As ``bench/cyclegan_digits.py`` does for CycleGAN (the reference: 0.965 / 0.952 content, L1 0.058 / 0.033 against
copy 0.254 in 1,500 steps). Not a test; run by hand, one at a time (one thread, about 10 minutes), e.g.

    .venv/bin/python bench/shared_latent_digits.py --recipe unit-digits --threads 1 --out runs/bench-unit
    .venv/bin/python bench/shared_latent_digits.py --recipe combogan-digits --out runs/bench-combogan

``--run DIR`` evaluates a finished run instead of training one.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.data.mnist5k import derive
from ganforge.metrics.content import content_classifier, content_preservation
from ganforge.metrics.paired import l1
from ganforge.report import save_panels

from translation_common import trained_or_given_run, translation_bench_arguments


def query(spec: str, key: str) -> str | None:
    for option in spec.partition("?")[2].split("&"):
        k, _, v = option.partition("=")
        if k == key:
            return v
    return None


def digit_domains(config: Any) -> list[str]:
    """The mnist5k domain of each of the run's domains (data.source, then its streams): ``domain=`` or plain."""
    sources = [config.data.source] + [s.source for n, s in config.data.streams.items() if n != "held_out"]
    out = []
    for spec in sources:
        if not spec.startswith("mnist5k"):
            raise SystemExit(f"this benchmark measures digit-domain runs; {spec} is not an mnist5k source")
        out.append(query(spec, "domain") or "plain")
    return out


@torch.no_grad()
def translate(algo: Any, nets: Any, images: torch.Tensor, src: int, dst: int, batch_size: int = 250) -> torch.Tensor:
    """uint8 images of domain ``src`` -> uint8 translations into ``dst``, the networks in inference mode."""
    vr = algo.value_range
    with eval_mode(*nets.values()):
        outs = [algo.translate_with(to_model_range(images[i:i + batch_size], vr), src, dst, nets)
                for i in range(0, len(images), batch_size)]
    return to_uint8(torch.cat(outs).float(), vr)


def main() -> None:
    args = translation_bench_arguments(__doc__, "unit-digits", None).parse_args()
    run_dir, out, wall = trained_or_given_run(args, "bench/shared_latent_digits.py")
    model = ganforge.load(run_dir)
    algo, nets = model.algorithm, model.nets
    initial = build_algorithm(model.config, model.info).nets           # the weights training started from
    domains = digit_domains(model.config)

    test = load_source("mnist5k?split=test")
    y = test.y
    versions = [test.x if d == "plain" else derive(test.x, d) for d in domains]
    classifiers = [content_classifier("mnist5k" if d == "plain" else f"mnist5k?domain={d}") for d in domains]

    def acc(k: int, images: torch.Tensor) -> float:
        return round(content_preservation(classifiers[k], images, y)["content_accuracy"], 4)

    def l1_of(x: torch.Tensor, target: torch.Tensor) -> float:
        return round(float(l1(x, target).mean()), 4)

    pick = torch.linspace(0, len(y) - 1, args.rows).round().long()     # the held-out digits are sorted by class
    out.mkdir(parents=True, exist_ok=True)
    rows, summary, grids = [], {}, []
    for src, dst in itertools.permutations(range(len(domains)), 2):
        a, b = versions[src], versions[dst]
        fake = translate(algo, nets, a, src, dst)
        init = translate(algo, initial, a, src, dst)
        blank = torch.full_like(b, int(b.flatten().mode().values))
        pair = f"{domains[src]}->{domains[dst]}"
        figures = {"content": acc(dst, fake), "ceiling (true dst)": acc(dst, b), "untrained": acc(dst, init),
                   "L1": l1_of(fake, b), "L1 copy input": l1_of(a, b), "L1 blank": l1_of(blank, b),
                   "L1 untrained": l1_of(init, b)}
        summary[pair] = figures
        rows += [(f"{pair} {k}", v) for k, v in figures.items()]
        grids.append(str(save_panels({f"input {domains[src]}": a[pick], "output": fake[pick],
                                      f"true {domains[dst]}": b[pick]},
                                     out / f"grid-{domains[src]}-{domains[dst]}.png", scale=3)))
    contents = [f["content"] for f in summary.values()]
    beats = sum(f["L1"] < f["L1 copy input"] for f in summary.values())

    steps = model.step
    result = {"recipe": model.config.name, "domains": domains, "steps": steps,
              "batch_size": model.config.train.batch_size, "threads": args.threads,
              "train_wall_s": round(wall, 1) if args.run is None else None, "heldout": len(y), "pairs": summary,
              "min_content": min(contents), "pairs_beating_copy_L1": f"{beats}/{len(summary)}", "grids": grids,
              "run_dir": str(run_dir), "overrides": args.set}
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    trained = f"{steps} steps in {wall:.0f} s at {args.threads} thread(s)" if args.run is None else f"{steps} steps"
    print(f"\n{model.config.name}, domains {', '.join(domains)}; {trained}; {len(y)} held-out digits")
    print("\n| figure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\nmin content over pairs {min(contents)}; L1 below copy-the-input in {beats}/{len(summary)} pairs")
    print(f"grids: {', '.join(grids)}")


if __name__ == "__main__":
    main()
