"""Benchmark: text to image on the colour emoji, held-out captions: GAN-INT-CLS and StackGAN (issue 14's acceptance).

Trains (or reads with ``--run-text2image`` / ``--run-stackgan``) ``text2image-emoji`` (Reed et al. 2016's GAN-INT-CLS)
and ``stackgan-emoji``, both on ``emoji?size=32&split=train`` (their recipes' data, set again here), one after the other, each on the 1,225 train emoji only; the 136 held-out emoji of ``emoji?size=32&
split=test`` (a fixed 90 / 10 split, ``data/emoji.py``) give the held-out captions, names no run trained on. For each:

* ``MODEL_held_out.png``: a row per held-out caption (``--rows``), the real emoji in the first column, then
  ``--per-caption`` samples from different noise (StackGAN: stage II, 32 px); ``MODEL_held_out.txt`` lists the
  rows' captions in order. ``MODEL_train.png`` / ``.txt``: the same for train captions.
* R-precision (AttnGAN, ``metrics/text_retrieval.py``): one image per caption (fixed noise), its own caption ranked
  first among it and 99 other captions of the same split, held-out and train. The judge is a text / image encoder
  pair (``models/text_encoder.py``) pretrained on the train split only, like the runs' own conditioning encoders
  but with another seed (``--judge-seed``, default 1; the runs' encoders use seed 0), so the encoder a G was
  conditioned on does not also score it. Beside each: the real emoji with their captions (the ceiling) and the
  untrained G (the weights training started from: the floor); StackGAN's stage I (16 px, enlarged to 32) as well.
  The emoji names share few words (95 of the 319 words of the held-out captions are in no train name), so the judge
  hardly reads held-out names: its ceiling, the real held-out emoji, is low (0.06 measured), and held-out figures
  are to be read against that ceiling, not against 1.

Writes ``bench.json`` and the grids into ``--out``. Not a test; run it by hand, one thread, one run at a time
(``--steps-text2image`` / ``--steps-stackgan`` override ``train.steps``). Measured on a shared 2-core machine:
text2image-emoji's 3,000 steps would take about 23 minutes there, so it ran 1,500 (512 s); stackgan-emoji's 5,000
took 355 s:

    .venv/bin/python bench/text2image_emoji.py --threads 1 --steps-text2image 1500 --out runs/bench-text2image-emoji
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import ganforge
from ganforge.build import build_algorithm
from ganforge.config import parse_set
from ganforge.data import load_source, to_uint8
from ganforge.metrics.text_retrieval import r_precision
from ganforge.models.text_encoder import pretrained_text_encoder
from ganforge.report import save_grid

from stackgan_digits import stage_images
from text2image_digits import caption_embeddings, generate

TRAIN = "emoji?size=32&split=train"
HELD_OUT = "emoji?size=32&split=test"
RECIPES = {"text2image": "text2image-emoji", "stackgan": "stackgan-emoji"}


def images_for(model: Any, G: torch.nn.Module, captions: list[str], seed: int) -> dict[str, torch.Tensor]:
    """uint8 images, one per caption (read by the run's own text encoder), from fixed noise: GAN-INT-CLS's one
    output, or each StackGAN stage's (stage I enlarged to the final size)."""
    algo = model.algorithm
    if algo.name != "stackgan":
        return {"G": generate(algo, G, caption_embeddings(algo, captions), seed=seed)}
    nets = {**model.nets, "G": G}
    stages = stage_images(type("Model", (), {"algorithm": algo, "nets": nets})(), captions, seed=seed)
    size = algo.sizes[-1]
    return {name: F.interpolate(to_uint8(x, model.value_range).float(), size=size, mode="nearest").to(torch.uint8)
            for name, x in stages.items()}


def caption_grid(model: Any, data: Any, rows: int, per_caption: int, path: Path) -> None:
    """A row per caption: the real emoji, then ``per_caption`` samples (the last stage), each from other noise."""
    captions = list(data.meta["captions"][:rows])
    repeated = [c for c in captions for _ in range(per_caption)]
    fake = list(images_for(model, model.nets["G"], repeated, seed=11).values())[-1]
    fake = fake.view(rows, per_caption, *fake.shape[1:])
    real = data.x[:rows, None]
    save_grid(torch.cat([real, fake], 1).flatten(0, 1), path.with_suffix(".png"), nrow=per_caption + 1, scale=2)
    path.with_suffix(".txt").write_text(
        f"# {path.name}.png: a row per caption, in this order; column 1 the real emoji, then {per_caption} samples\n"
        + "\n".join(captions) + "\n")


def measure(model: Any, initial_G: torch.nn.Module, pair: Any, splits: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split, data in splits.items():
        captions = list(data.meta["captions"])
        tokens = pair.text.tokenize(captions)[0]

        def rp(images: torch.Tensor) -> float:
            return round(r_precision(pair, images, tokens, candidates=100, seed=0), 4)
        out[f"{split}: real emoji (ceiling)"] = rp(data.x)
        for name, images in images_for(model, initial_G, captions, seed=1).items():
            out[f"{split}: untrained G, {name} (floor)"] = rp(images)
        for name, images in images_for(model, model.nets["G"], captions, seed=1).items():
            out[f"{split}: trained, {name}"] = rp(images)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("text2image", "stackgan", "both"), default="both")
    ap.add_argument("--run-text2image", default=None, help="measure this finished text2image-emoji run")
    ap.add_argument("--run-stackgan", default=None, help="measure this finished stackgan-emoji run")
    ap.add_argument("--steps-text2image", type=int, default=None, help="train.steps of text2image-emoji (default: "
                    "the recipe's 3,000)")
    ap.add_argument("--steps-stackgan", type=int, default=None, help="train.steps of stackgan-emoji (default: the "
                    "recipe's 5,000; stage I keeps its 2,500)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--rows", type=int, default=24, help="captions (rows) in each grid")
    ap.add_argument("--per-caption", type=int, default=7, help="samples per caption in the grids")
    ap.add_argument("--judge-seed", type=int, default=1, help="seed of the R-precision encoder pair")
    ap.add_argument("--out", default="runs/bench-text2image-emoji")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="overrides for both recipes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"held-out": load_source(HELD_OUT), "train": load_source(TRAIN)}
    result: dict[str, Any] = {"threads": args.threads, "held_out": HELD_OUT, "train": TRAIN,
                              "held_out_captions": len(splits["held-out"]), "train_captions": len(splits["train"])}
    judge = None
    families = ("text2image", "stackgan") if args.only == "both" else (args.only,)
    for family in families:
        given = getattr(args, f"run_{family}")
        entry: dict[str, Any] = {"recipe": RECIPES[family]}
        if given is None:
            overrides = {"train.threads": args.threads, "data.source": TRAIN, **parse_set(args.set)}
            steps = getattr(args, f"steps_{family}")
            if steps:
                overrides["train.steps"] = steps
            t0 = time.time()
            run = ganforge.train(RECIPES[family], out=out / RECIPES[family], force=True, progress=False,
                                 overrides=overrides, command="bench/text2image_emoji.py")
            entry["train_wall_s"] = round(time.time() - t0, 1)
            run_dir = run.run_dir
        else:
            run_dir = Path(given)
        model = ganforge.load(run_dir)
        if model.config.data.source != TRAIN:
            raise SystemExit(f"{run_dir} trained on {model.config.data.source!r}, not {TRAIN!r}: its held-out "
                             "captions would not be held out")
        entry.update({"run_dir": str(run_dir), "steps": model.step})
        if judge is None:
            T = model.nets["T"]
            judge = pretrained_text_encoder(TRAIN, vocab_size=T.vocab_size, embed_dim=T.embed_dim, word_dim=T.word_dim,
                                            value_range=tuple(model.value_range), seed=args.judge_seed, epochs=12)
            result["judge"] = {"pretrained_on": TRAIN, "seed": args.judge_seed, "epochs": 12, **judge.facts}
        initial_G = build_algorithm(model.config, model.info).nets["G"]      # the weights training started from
        entry["r_precision"] = measure(model, initial_G, judge, splits)
        for split, data in splits.items():
            caption_grid(model, data, args.rows, args.per_caption, out / f"{family}_{split.replace('-', '_')}")
        result[family] = entry
        (out / "bench.json").write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))
    assert all(math.isfinite(v) for f in families for v in result[f]["r_precision"].values())


if __name__ == "__main__":
    main()
