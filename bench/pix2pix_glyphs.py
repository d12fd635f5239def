"""pix2pix on a font pair, measured on held-out characters: SSIM, L1 and PSNR against the true glyphs.

Trains the ``pix2pix-glyphs`` recipe (or another) for a step budget on the characters of ``split=train``, then
translates every character of the recipe's held-out stream (``split=test``: characters never seen in training, in
any font) and compares the outputs with the true glyphs of the target font, beside the baseline "copy the input"
(the source font's glyph taken as the answer). Figures come from ``ganforge.metrics.paired`` (uint8 images, data
range 255: L1 in units of the range, SSIM as Wang et al. 2004, PSNR in dB). Rows:

- ``pix2pix (paper inference)``: the generator as the paper runs it at test time (dropout on, per-image statistics;
  ``models/unet.py``), dropout seed 0;
- ``pix2pix (eval mode)``: the same weights in PyTorch's eval mode (no dropout);
- ``copy the input``: the source font's glyph as the answer;
- ``white page``: no glyph at all, the constant that a blurred, hedging translation drifts towards; where the fonts
  differ much (CJK styles), it beats copying the input on L1.

Writes ``held_out_grid.png`` (input | output | target, one held-out character a row) in the run directory.

    python bench/pix2pix_glyphs.py --steps 2000                      # ~10 minutes at 1 thread
    python bench/pix2pix_glyphs.py --steps 300 --set data.source=... --set data.held_out=...
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import ganforge
from ganforge.data import load_source, prepare, to_model_range, to_uint8
from ganforge.metrics.paired import paired_metrics
from ganforge.report.grid import save_panels

GRID_ROWS = 32


def parse_set(items: list[str]) -> dict[str, object]:
    import yaml
    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)
    return out


@torch.no_grad()
def translate_all(model: ganforge.inference.Model, images: torch.Tensor, mode: str, chunk: int = 256) -> torch.Tensor:
    """uint8 translations of uint8 ``images`` with the generator's ``inference`` set to ``mode`` for the call."""
    G = model.nets["G"]
    saved = getattr(G, "inference", None)
    if saved is not None:
        G.inference = mode
    try:
        rng = model.value_range
        outs = [model.algorithm.translate(to_model_range(images[i:i + chunk], rng), model.nets, seed=0)
                for i in range(0, len(images), chunk)]
    finally:
        if saved is not None:
            G.inference = saved
    return to_uint8(torch.cat(outs), rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000: ~10 min at 1 thread)")
    parser.add_argument("--recipe", default="pix2pix-glyphs")
    parser.add_argument("--out", default="runs/bench-pix2pix-glyphs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    overrides = {"train.threads": args.threads, "train.seed": args.seed, **parse_set(args.set)}
    start = time.perf_counter()
    result = ganforge.train(args.recipe, steps=args.steps, out=args.out, force=True, progress="log",
                            overrides=overrides)
    train_s = time.perf_counter() - start
    model = ganforge.load(result.run_dir)
    cfg = model.config
    held_out = cfg.data.held_out
    if not held_out:
        raise SystemExit(f"recipe {args.recipe} has no data.held_out: nothing to measure held-out characters on")
    test = prepare(load_source(held_out), cfg.data.image_size, cfg.data.channels)
    source, target = test.x, test.fields["target"]
    train_chars = set(load_source(cfg.data.source).meta.get("chars", ""))
    unseen = "".join(ch for ch in test.meta.get("chars", "") if ch not in train_chars)

    rows = {"pix2pix (paper inference)": translate_all(model, source, "paper"),
            "pix2pix (eval mode)": translate_all(model, source, "eval"),
            "copy the input": source,
            "white page": torch.full_like(target, 255)}
    figures = {name: paired_metrics(out, target) for name, out in rows.items()}

    print()
    print(f"recipe {cfg.name}, {args.steps} steps in {train_s / 60:.1f} min at {args.threads} thread(s), seed "
          f"{args.seed}; train data {cfg.data.source}")
    print(f"held out: {held_out}: {len(source)} pairs, {len(unseen)} of {len(test.meta.get('chars', ''))} characters "
          f"never in the training split")
    print()
    print(f"| {'translation':<26} | {'SSIM':>6} | {'L1':>6} | {'PSNR dB':>7} |")
    print(f"|{'-' * 28}|{'-' * 8}|{'-' * 8}|{'-' * 9}|")
    for name, f in figures.items():
        print(f"| {name:<26} | {f['ssim']:6.3f} | {f['l1']:6.3f} | {f['psnr']:7.2f} |")

    n = min(GRID_ROWS, len(source))
    path = save_panels({"input": source[:n], "output": rows["pix2pix (paper inference)"][:n], "target": target[:n]},
                       Path(result.run_dir) / "held_out_grid.png", scale=max(1, 64 // source.shape[-1]))
    print(f"\ngrid (input | output | target, {n} held-out characters): {path}")
    print(f"characters: {test.meta.get('chars', '')[:n]}")


if __name__ == "__main__":
    main()
