"""Benchmark: VAE-GAN against the plain VAE of the same size and budget on the bundled digits (issue 14).

Trains ``vaegan-digits`` and ``vae-digits`` (the same encoder, decoder, optimizer, batch and steps; the VAE measures
its reconstruction in pixels, VAE-GAN in its discriminator's features, plus the GAN loss) and scores each on the
1,000 held-out ``mnist5k?split=test`` digits:

* reconstruction: Dec(mu(x)) of each held-out digit (``Model.translate``, what ``ganforge translate`` writes): the
  pixel MSE against the input (images in [0, 1]), and the label accuracy of ganforge's domain classifier (the cached
  LeNet of ``mnist5k?split=train``) on the reconstructions against the inputs' labels;
* prior samples: ``--n`` Dec(z), z ~ N(0, I) (seed 123): domain FID against the training digits (the classifier's
  128-d features), precision / recall (k=3), and the domain FID of the reconstructions too;
* sharpness, the blur the paper fixes: the mean gradient magnitude (finite differences, images in [0, 1]) and the
  share of the image's spectral energy above half the Nyquist frequency, of the samples, of the reconstructions and
  of the real held-out digits; each as a ratio to the real digits' (1.0 is as sharp as real digits; a blurry decoder
  is below);
* grids: ``recon.png`` (input | VAE-GAN | VAE reconstructions, a row per held-out digit, spread over the
  classes) and one ``samples-*.png`` per model (prior samples, the same z for both).

Not a test; run it by hand (one thread; ``--only`` one recipe per call keeps each call within ~12 minutes; the last
call, or ``--score``, scores the runs found under ``--out``):

    .venv/bin/python bench/vaegan_digits.py --only vae-digits --out runs/bench-vaegan
    .venv/bin/python bench/vaegan_digits.py --only vaegan-digits --out runs/bench-vaegan
    .venv/bin/python bench/vaegan_digits.py --score --out runs/bench-vaegan
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import ganforge
from ganforge.data import load_source, to_uint8
from ganforge.metrics.content import content_preservation
from ganforge.metrics.evaluate import Samples, evaluate, load_reference, make_extractor
from ganforge.report import save_panels
from ganforge.report.grid import save_grid

RECIPES = ("vaegan-digits", "vae-digits")
REF, HELD_OUT = "mnist5k?split=train", "mnist5k?split=test"


def gradient_magnitude(images: torch.Tensor) -> float:
    """Mean |finite-difference gradient| of uint8 images taken to [0, 1]: edges are where a blurry decoder loses it."""
    x = images.float() / 255
    gx, gy = x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    return float((gx[..., :-1, :].pow(2) + gy[..., :, :-1].pow(2)).sqrt().mean())


def high_frequency_share(images: torch.Tensor) -> float:
    """The mean share of each image's spectral energy (mean removed) above half the Nyquist frequency."""
    x = images.float() / 255
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2)
    fy = torch.fft.fftfreq(x.shape[-2]).abs().view(-1, 1)
    fx = torch.fft.fftfreq(x.shape[-1]).abs().view(1, -1)
    high = (torch.maximum(fy, fx) > 0.25).to(power.dtype)          # 0.5 cycles/pixel is Nyquist
    return float(((power * high).sum(dim=(-2, -1)) / power.sum(dim=(-2, -1)).clamp_min(1e-12)).mean())


def sharpness(images: torch.Tensor, real: dict[str, float]) -> dict[str, float]:
    g, h = gradient_magnitude(images), high_frequency_share(images)
    return {"grad": round(g, 4), "grad_vs_real": round(g / real["grad"], 3),
            "high_freq": round(h, 4), "high_freq_vs_real": round(h / real["high_freq"], 3)}


def train(recipe: str, out: Path, steps: int | None, overrides: dict[str, Any]) -> dict[str, Any]:
    t0 = time.time()
    extra = {"steps": steps} if steps else {}
    run = ganforge.train(recipe, out=out / recipe, force=True, progress="log", **extra,
                         overrides={"train.threads": 1, **overrides}, command=f"bench/vaegan_digits.py ({recipe})")
    wall = time.time() - t0
    facts = {"recipe": recipe, "steps": run.steps, "train_wall_s": round(wall, 1)}
    (out / recipe / "bench-train.json").write_text(json.dumps(facts, indent=1))
    print(recipe, facts, flush=True)
    return facts


def score(run_dir: Path, held_out: Any, reference: Any, extractor: Any, n: int,
          real: dict[str, float]) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    model = ganforge.load(run_dir)
    rec = model.translate(held_out.x)                                    # uint8 Dec(mu(x))
    mse = float(((rec.float() - held_out.x.float()) / 255).pow(2).mean())
    acc = content_preservation(extractor.clf, rec, held_out.y)["content_accuracy"]
    samples = to_uint8(model.sample(n, seed=123), model.value_range)
    prior = evaluate(Samples("image", samples, None, "prior samples"), ["fid", "pr"], reference=reference,
                     extractor=extractor)
    rec_fid = evaluate(Samples("image", rec, None, "reconstructions"), ["fid"], reference=reference,
                       extractor=extractor)["fid"]
    figures = {"recon_pixel_mse": round(mse, 5), "recon_label_accuracy": round(float(acc), 4),
               "recon_fid": round(float(rec_fid), 3), "prior_fid": round(float(prior["fid"]), 3),
               "prior_precision": round(float(prior["precision"]), 4),
               "prior_recall": round(float(prior["recall"]), 4),
               "sharpness_samples": sharpness(samples, real), "sharpness_recon": sharpness(rec, real)}
    return figures, rec, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=RECIPES, help="train this recipe only (then score what --out holds)")
    ap.add_argument("--score", action="store_true", help="train nothing: score the runs under --out")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipes', equal)")
    ap.add_argument("--n", type=int, default=1000, help="prior samples scored")
    ap.add_argument("--rows", type=int, default=16, help="held-out digits in the reconstruction grid")
    ap.add_argument("--out", default="runs/bench-vaegan")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for the trained recipe")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value) if value[:1] in "[{0123456789-." or value in ("true", "false") else value
    if not args.score:
        for recipe in ([args.only] if args.only else RECIPES):
            train(recipe, out, args.steps, overrides)

    held_out = load_source(HELD_OUT)
    reference, extractor = load_reference(REF), make_extractor("domain", REF, channels=1)
    print(f"domain classifier held-out accuracy {extractor.info['test_accuracy']:.4f}", flush=True)
    real = {"grad": gradient_magnitude(held_out.x), "high_freq": high_frequency_share(held_out.x)}
    results: dict[str, Any] = {"real_held_out": {k: round(v, 4) for k, v in real.items()}}
    recs, samples = {}, {}
    for recipe in RECIPES:
        run_dir = out / recipe
        if not (run_dir / "config.yaml").exists():
            print(f"{recipe}: no run under {run_dir}, skipped", flush=True)
            continue
        facts_file = run_dir / "bench-train.json"
        facts = json.loads(facts_file.read_text()) if facts_file.exists() else {}
        figures, recs[recipe], samples[recipe] = score(run_dir, held_out, reference, extractor, args.n, real)
        results[recipe] = {**facts, **figures}
        print(recipe, json.dumps(results[recipe]), flush=True)
        save_grid(samples[recipe][:64], out / f"samples-{recipe}.png", nrow=8, scale=2)
    pick = torch.arange(args.rows) * (len(held_out.x) // args.rows)      # spread over the label-sorted set
    panels = {"input": held_out.x[pick], **{f"{r} reconstruction": recs[r][pick] for r in recs}}
    results["grid"] = str(save_panels(panels, out / "recon.png", scale=3))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
