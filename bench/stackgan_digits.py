"""Benchmark: StackGAN on captioned digits, stage II's output against stage I's: domain FID, label accuracy for the
digit the caption names, and caption retrieval (R-precision).

Trains ``stackgan-digits`` (the 4,000 training digits of ``digit-captions``, 3 captions each, at 32 px: stage I at 16
px for the first phase, then stage II at 32 px with stage I fixed, one run), then for the 1,000 held-out digits'
captions (``digit-captions?split=test&captions=1``: one caption each, never trained on) draws one sample per
caption from fixed noise and CA draws, and measures each stage's images:

* domain FID with ganforge's digit classifier (the LeNet trained on the 4,000 mnist5k training digits, 28 px: each
  image resized to 28 px by its reader) against the 4,000 training digits; beside it two floors: the 1,000 held-out
  real digits, and the same digits taken down to 16 px (what stage I's resolution alone costs);
* label accuracy: the share of samples the classifier reads as the digit the caption names ("a thick seven" -> 7);
* R-precision: a text encoder and its image encoder (``models/text_encoder.py``, the pair pretrained like the run's
  on the training pairs, at 28 px) rank the sample's own caption first among 100 different captions of the held-out set
  (``metrics/text_retrieval.py``); the real held-out digits give the ceiling.

Writes ``stages.png`` (``--rows`` held-out captions, a column per stage, stage I enlarged to 32 px),
``captions.txt`` (those rows' captions) and ``bench.json`` into the run directory. Not a test; one thread, about 6
minutes (``--family stackgan2`` runs ``stackgan2-digits``, about 3, and measures its three scales the same way):

    .venv/bin/python bench/stackgan_digits.py --out runs/bench-stackgan
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.config import parse_set
from ganforge.data import load_source, to_uint8
from ganforge.metrics.domain import domain_classifier
from ganforge.metrics.evaluate import classifier_source
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.text_retrieval import r_precision
from ganforge.models.text_encoder import pretrained_text_encoder
from baseline_common import write_result
from ganforge.report import save_panels

REF = "mnist5k?split=train"
HELD_OUT_CAPTIONS = "digit-captions?split=test&captions=1"
SIZE = 28


@torch.no_grad()
def stage_images(model: Any, captions: list[str], seed: int) -> dict[str, torch.Tensor]:
    """Each stage's (or scale's) images, in the model's range, one per caption (read by the run's own text encoder
    and vocabulary), from fixed noise and CA draws."""
    algo, n = model.algorithm, len(captions)
    g = torch.Generator().manual_seed(seed)
    inputs = {"z": algo.noise(n, torch.device("cpu"), g), "text_emb": algo.embed(algo.caption_tokens(captions))}
    for key in ("eps", "eps_2"):
        inputs[key] = torch.randn(n, model.nets["G"].ca.cond_dim, generator=g)
    with eval_mode(*model.nets.values()):
        if algo.name == "stackgan":
            images = algo.stages_of(inputs, model.nets, stage=2)
            names = [f"stage I ({s} px)" for s in algo.sizes[:1]] + [f"stage II ({algo.sizes[1]} px)"]
        else:
            images = algo.scales_of(inputs, model.nets)
            names = [f"scale {i} ({s} px)" for i, s in enumerate(algo.sizes)]
    return dict(zip(names, images))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=("stackgan", "stackgan2"), default="stackgan")
    ap.add_argument("--steps", type=int, default=None, help="train.steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--rows", type=int, default=16, help="held-out captions in the grid")
    ap.add_argument("--run", default=None, help="measure this finished run instead of training one")
    ap.add_argument("--out", default="runs/bench-stackgan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = f"{args.family}-digits"

    result: dict[str, Any] = {"recipe": recipe}
    if args.run is None:
        overrides = {"train.threads": args.threads, "train.checkpoint_every": 100000, **parse_set(args.set)}
        t0 = time.time()
        run = ganforge.train(recipe, out=args.out, force=True, progress=False, steps=args.steps, overrides=overrides,
                             command=f"bench/stackgan_digits.py --family {args.family}")
        wall = time.time() - t0
        run_dir = run.run_dir
        result.update({"train_wall_s": round(wall, 1), "steps": run.steps, "steps_per_s": round(run.steps / wall, 3)})
    else:
        run_dir = Path(args.run)
    model = ganforge.load(run_dir)
    algo = model.algorithm
    held = load_source(HELD_OUT_CAPTIONS)
    tokens, labels = held.fields["text"], held.y

    clf = domain_classifier(classifier_source(REF), SIZE, 1)
    result["classifier_test_accuracy"] = clf.test_accuracy
    reference = load_source(REF).x
    ref_feats = clf.predict(reference)[1]

    def fid(images: torch.Tensor) -> float:
        return round(fid_from_features(clf.predict(images)[1], ref_feats), 3)

    def accuracy(images: torch.Tensor) -> float:
        return round(float((clf.predict(images)[0].argmax(1) == labels).float().mean()), 4)

    # The judge of retrieval: a text / image encoder pair trained like the run's, on the training pairs at the digits'
    # own 28 px (the run's own pair saw them at 32 px), every image resized to 28 px as the classifier reads them.
    T = model.nets["T"]
    pair = pretrained_text_encoder("digit-captions?split=train", vocab_size=T.vocab_size, embed_dim=T.embed_dim,
                                   word_dim=T.word_dim, value_range=tuple(model.value_range), seed=0, epochs=8)

    def retrieval(images_u8: torch.Tensor) -> float:
        x = F.interpolate(images_u8.float(), size=SIZE, mode="bilinear", antialias=True)
        return round(r_precision(pair, x.round().clamp(0, 255).to(torch.uint8), tokens, candidates=100, seed=0), 4)

    low = F.avg_pool2d(held.x.float(), 2).round().to(torch.uint8)
    result["floor: held-out real digits, FID"] = fid(held.x)
    result["floor: held-out real digits at 14 px, FID"] = fid(low)
    result["ceiling: held-out real digits, label accuracy"] = accuracy(held.x)
    result["ceiling: held-out real digits, R-precision"] = retrieval(held.x)

    stages = stage_images(model, list(held.meta["captions"]), seed=123)
    grid = {}
    for name, images in stages.items():
        u8 = to_uint8(images, model.value_range)
        result[f"{name} FID"] = fid(u8)
        result[f"{name} label accuracy"] = accuracy(u8)
        result[f"{name} R-precision"] = retrieval(u8)
        grid[name] = F.interpolate(u8[:args.rows].float(), size=algo.data.sample_shape[-1],
                                   mode="nearest").to(torch.uint8)
    save_panels(grid, run_dir / "stages.png", scale=3)
    (run_dir / "captions.txt").write_text("\n".join(held.meta["captions"][:args.rows]) + "\n")
    write_result(result, run_dir)


if __name__ == "__main__":
    main()
