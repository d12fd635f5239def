"""Benchmark: GAN-INT-CLS on digit captions: does the image follow the words?

Trains ``text2image-digits`` (Reed et al. 2016's GAN-INT-CLS on the mnist5k digits captioned from their label and
measured attributes, ``data/digit_captions.py``), then generates from captions of the 1,000 held-out digits and from
written captions, and measures, with the very functions the captions were made with:

* label accuracy: the cached mnist5k domain classifier (``metrics/domain.py``) reads the digit the caption names, on
  images generated from the held-out captions (the digit each names is known), beside the same for the untrained G
  (chance, about 0.1) and for the real held-out digits (the ceiling);
* thickness: mean measured stroke width of digits generated from "a thick K" against "a thin K" (K every digit, the
  same noise for both), and the real held-out digits' thick-vs-thin gap for scale;
* slant: mean measured slant of "a K leaning right" against "a K leaning left" (same noise);
* R-precision (AttnGAN): the text encoder's image encoder (pretrained with it on the train captions) ranks the
  held-out caption each image was generated from first among it and 99 different held-out captions; real held-out
  digits with their captions give the ceiling;
* domain FID: LeNet features (the domain classifier's penultimate layer) of images generated from the held-out
  captions against the held-out digits (``mnist5k?split=test``), and the untrained G's;
* grids: ``grid.png`` (a row per written caption) and ``interpolate.png`` (GAN-INT: rows walk from "a thin K" to
  "a thick K"), to look at.

Not a test; run it by hand (one thread; ``--steps`` to fit a budget; ``--run DIR`` evaluates a finished run):

    .venv/bin/python bench/text2image_digits.py --threads 1 --out runs/bench-text2image
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.config import parse_set, read_recipe
from ganforge.data import load_source, prepare, to_uint8
from ganforge.data.digit_captions import NUMBER_WORDS, measure
from ganforge.metrics.domain import domain_classifier
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.text_retrieval import r_precision
from ganforge.models.text_encoder import pretrained_text_encoder
from ganforge.report import save_grid

WRITTEN = ["a thin three", "a thick three", "a seven leaning left", "a seven leaning right", "a small thin two",
           "a large thick eight", "the digit 0, upright", "a handwritten 4 leaning right"]


@torch.no_grad()
def generate(algo: Any, G: torch.nn.Module, emb: torch.Tensor, seed: int, batch_size: int = 250) -> torch.Tensor:
    """uint8 images of G (inference mode) for embeddings ``emb``, noise from ``seed``."""
    z = algo.noise(len(emb), torch.device("cpu"), torch.Generator().manual_seed(seed))
    outs = []
    with eval_mode(G):
        for i in range(0, len(emb), batch_size):
            outs.append(to_uint8(G(z[i:i + batch_size], emb[i:i + batch_size]).float(), algo.value_range))
    return torch.cat(outs)


@torch.no_grad()
def caption_embeddings(algo: Any, captions: list[str]) -> torch.Tensor:
    return algo.embed(algo.caption_tokens(captions))


def attribute_gap(algo: Any, G: torch.nn.Module, low: str, high: str, what: str, per_digit: int) -> dict[str, float]:
    """Mean measured ``what`` of digits made from captions with ``high`` and with ``low`` (every digit, the same
    noise for the two), and the difference."""
    values = {}
    for word in (low, high):
        caps = [word.format(name=NUMBER_WORDS[k]) for k in range(10) for _ in range(per_digit)]
        images = generate(algo, G, caption_embeddings(algo, caps), seed=7)
        values[word] = float(measure(images)[what].mean())
    return {"low": round(values[low], 3), "high": round(values[high], 3), "gap": round(values[high] - values[low], 3)}


def figures(algo: Any, G: torch.nn.Module, test: Any, clf: Any, pair: Any, per_digit: int) -> dict[str, Any]:
    # captions as text, tokenized by each encoder with its own vocabulary (the run's and the retrieval pair's)
    captions = test.meta["captions"]
    images = generate(algo, G, caption_embeddings(algo, captions), seed=1)
    probs, feats = clf.predict(images)
    _, real_feats = clf.predict(test.x)
    return {
        "label_accuracy": round(float((probs.argmax(1) == test.y).float().mean()), 3),
        "thickness_thick_vs_thin": attribute_gap(algo, G, "a thin {name}", "a thick {name}", "thickness", per_digit),
        "slant_right_vs_left": attribute_gap(algo, G, "a {name} leaning left", "a {name} leaning right", "slant",
                                             per_digit),
        "r_precision": round(r_precision(pair, images, pair.text.tokenize(captions)[0], candidates=100), 3),
        "domain_fid": round(fid_from_features(feats.numpy(), real_feats.numpy()), 2),
    }, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="text2image-digits")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--per-digit", type=int, default=50, help="samples per digit for the attribute figures")
    ap.add_argument("--run", default=None, help="evaluate this finished run instead of training one")
    ap.add_argument("--out", default="runs/bench-text2image")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    out = Path(args.out)
    torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {"train.threads": args.threads, **parse_set(args.set)}
    if args.steps:
        overrides["train.steps"] = args.steps
    t0 = time.time()
    if args.run is None:
        run_dir = ganforge.train(args.recipe, out=out / "run", force=True, progress=False, overrides=overrides,
                                 command="bench/text2image_digits.py " + " ".join(f"--set {s}" for s in args.set)
                                 ).run_dir
    else:
        run_dir = Path(args.run)
    wall = time.time() - t0
    model = ganforge.load(run_dir)
    algo, G = model.algorithm, model.nets["G"]
    initial = build_algorithm(model.config, model.info).nets["G"]       # the weights training started from
    size, channels = model.info.sample_shape[-1], model.info.sample_shape[0]

    test = prepare(load_source("digit-captions?split=test&captions=1"), size, channels)
    clf = domain_classifier("mnist5k")
    # The judge of R-precision: the recipe's own word-GRU encoder pair (its settings from the recipe file), whatever
    # text encoder the run was conditioned on (e.g. --set networks.T.arch=minilm).
    recipe = read_recipe(model.config.name)
    judge, judge_dim = recipe["networks"]["T"], recipe["algorithm"]["text_dim"]
    train_data = prepare(load_source(model.config.data.source), size, channels)
    pair = pretrained_text_encoder(train_data, vocab_size=judge["vocab_size"], embed_dim=judge_dim,
                                   word_dim=judge["word_dim"], value_range=tuple(algo.value_range),
                                   seed=algo.text_encoder_seed,
                                   epochs=algo.text_encoder_epochs, batch_size=algo.text_encoder_batch_size)
    trained, images = figures(algo, G, test, clf, pair, args.per_digit)
    untrained, _ = figures(algo, initial, test, clf, pair, args.per_digit)
    probs, real_feats = clf.predict(test.x)
    real_attrs = measure(test.x)
    cuts = test.meta["cuts"]
    thick, thin = real_attrs["thickness"] > cuts["thickness"][1], real_attrs["thickness"] <= cuts["thickness"][0]
    right, left = real_attrs["slant"] > cuts["slant"][1], real_attrs["slant"] <= cuts["slant"][0]
    real = {"label_accuracy": round(float((probs.argmax(1) == test.y).float().mean()), 3),
            "thickness_thick_vs_thin": round(float(real_attrs["thickness"][thick].mean()
                                                   - real_attrs["thickness"][thin].mean()), 3),
            "slant_right_vs_left": round(float(real_attrs["slant"][right].mean() - real_attrs["slant"][left].mean()), 3),
            "r_precision": round(r_precision(pair, test.x, pair.text.tokenize(test.meta["captions"])[0],
                                             candidates=100), 3)}

    out.mkdir(parents=True, exist_ok=True)
    per_row = 10
    written = model.sample(len(WRITTEN) * per_row, seed=3, texts=WRITTEN, per_row=per_row)
    save_grid(to_uint8(written, algo.value_range), out / "grid.png", nrow=per_row, scale=2)
    walk = torch.cat([model.sample(per_row, seed=5 + k, interpolate_text=(f"a thin {NUMBER_WORDS[k]}",
                                                                          f"a thick {NUMBER_WORDS[k]}"),
                                   per_row=per_row) for k in (1, 3, 7)])
    save_grid(to_uint8(walk, algo.value_range), out / "interpolate.png", nrow=per_row, scale=2)
    save_grid(images[:100], out / "held_out_captions.png", nrow=10, scale=2)
    (out / "held_out_captions.txt").write_text("\n".join(test.meta["captions"][:100]) + "\n")
    result = {"recipe": model.config.name, "steps": model.step, "threads": args.threads,
              "train_wall_s": round(wall, 1) if args.run is None else None,
              "text_encoder": {k: v for k, v in pair.facts.items()}, "trained": trained, "untrained": untrained,
              "real_held_out": real, "grids": ["grid.png", "interpolate.png", "held_out_captions.png"],
              "written_captions": WRITTEN, "run_dir": str(run_dir), "overrides": args.set}
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
