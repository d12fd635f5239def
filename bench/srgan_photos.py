"""Benchmark: SRResNet and SRGAN x4 against bicubic upsampling, on the held-out bundled photo and on digits 7 -> 28.

Photos: trains ``srresnet-photos`` (48 px patches of the photos scikit-image / scikit-learn bundle, coffee held out)
for ``--srresnet-steps``, then ``srgan-photos`` for ``--srgan-steps`` initialised from it (``--init-from``, as the
paper starts SRGAN from SRResNet), and measures on the whole held-out photo (coffee, 600 x 400, its LR input the
same antialiased bicubic /4 as the training data): PSNR and SSIM on the Y channel (``metrics/paired.py``, the
``scale`` border cropped as SR papers do) of bicubic upsampling, SRResNet and SRGAN, and writes a crop grid
(lowres nearest-upscaled | bicubic | SRResNet | SRGAN | HR). Digits (``--digit-steps`` > 0): ``srresnet-digits`` and
``srgan-digits`` on the 4,000 training digits, measured on the 1,000 held-out ones (7 x 7 -> 28 x 28), with a grid.
Not a test; run it by hand, one thread, e.g.:

    .venv/bin/python bench/srgan_photos.py --threads 1 --out runs/bench-srgan
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
from ganforge.algorithms.srgan import bicubic_upsample
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.data.photos import _read, bundled, downscale
from ganforge.metrics.paired import paired_metrics
from ganforge.report.grid import save_panels

SCALE = 4


def held_out_photo(name: str = "coffee") -> tuple[torch.Tensor, torch.Tensor]:
    """(HR uint8 1 x 3 x H x W cropped to a multiple of SCALE, its LR input made as the training data's)."""
    pixels = _read(str(bundled("photos")[name]), "RGB")
    hr = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0)
    h, w = hr.shape[-2] // SCALE * SCALE, hr.shape[-1] // SCALE * SCALE
    hr = hr[..., :h, :w].contiguous()
    return hr, downscale(hr, SCALE)


@torch.no_grad()
def upscale(model: Any, lowres: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """uint8 HR outputs of a trained run's G (its sampling networks, BN in inference mode) for uint8 LR inputs."""
    vr = model.value_range
    outs = [to_uint8(model.algorithm.translate(to_model_range(lowres[i:i + batch], vr), model.nets).float(), vr)
            for i in range(0, len(lowres), batch)]
    return torch.cat(outs)


def bicubic(lowres: torch.Tensor) -> torch.Tensor:
    return to_uint8(bicubic_upsample(to_model_range(lowres, (-1.0, 1.0)), SCALE, (-1.0, 1.0)), (-1.0, 1.0))


def nearest(lowres: torch.Tensor) -> torch.Tensor:
    return F.interpolate(lowres, scale_factor=SCALE, mode="nearest")


def measure(outputs: dict[str, torch.Tensor], hr: torch.Tensor, crop_border: int) -> dict[str, dict[str, float]]:
    return {name: {k: v for k, v in paired_metrics(out, hr, channels="y", crop_border=crop_border).items()
                   if k in ("psnr", "ssim", "l1")} for name, out in outputs.items()}


def train(recipe: str, steps: int, out: Path, threads: int, extra: dict[str, Any],
          init_from: Path | None = None) -> tuple[Path, float]:
    started = time.time()
    run = ganforge.train(recipe, steps=steps, out=out, progress=False, force=True, init_from=init_from,
                         overrides={"train.threads": threads, "train.checkpoint_every": steps, **extra})
    return run.run_dir, time.time() - started


def crops(images: dict[str, torch.Tensor], corners: list[tuple[int, int]], side: int) -> dict[str, torch.Tensor]:
    """The same side x side HR-space crops of each image (LR images cropped at corner / SCALE)."""
    out = {}
    for name, img in images.items():
        k = SCALE if img.shape[-1] * SCALE <= images["HR"].shape[-1] else 1
        s = side // k
        out[name] = torch.cat([img[..., r // k:r // k + s, c // k:c // k + s] for r, c in corners])
    return out


def table(title: str, rows: dict[str, dict[str, float]], times: dict[str, str]) -> str:
    lines = [f"\n{title}", "| method | PSNR-Y (dB) | SSIM-Y | training |", "|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {times.get(name, '-')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--srresnet-steps", type=int, default=3000)
    p.add_argument("--srgan-steps", type=int, default=500)
    p.add_argument("--digit-steps", type=int, default=600, help="SRResNet steps on digits (SRGAN: half); 0 skips")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench-srgan"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    seed = {"train.seed": args.seed}
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}

    # -- photos ---------------------------------------------------------------------------------------------------
    hr, lr = held_out_photo()
    resnet_dir, t_resnet = train("srresnet-photos", args.srresnet_steps, args.out / "srresnet-photos", args.threads,
                                 seed)
    gan_dir, t_gan = train("srgan-photos", args.srgan_steps, args.out / "srgan-photos", args.threads, seed,
                           init_from=resnet_dir)
    sr_resnet = upscale(ganforge.load(resnet_dir), lr)
    sr_gan = upscale(ganforge.load(gan_dir), lr)
    photo = measure({"bicubic": bicubic(lr), "SRResNet": sr_resnet, "SRGAN": sr_gan}, hr, crop_border=SCALE)
    times = {"SRResNet": f"{args.srresnet_steps} steps, {t_resnet:.0f} s",
             "SRGAN": f"+{args.srgan_steps} steps from SRResNet, {t_gan:.0f} s"}
    results["photo"] = {"image": "coffee (held out)", "hr_shape": list(hr.shape), "metrics": photo, "times": times}
    h, w = hr.shape[-2:]
    corners = [(h // 4, w // 4), (h // 2, w // 2), (h // 3, 2 * w // 3), (3 * h // 5, w // 6)]
    corners = [(r // SCALE * SCALE, c // SCALE * SCALE) for r, c in corners]
    panels = crops({"lowres": lr, "bicubic": bicubic(lr), "SRResNet": sr_resnet, "SRGAN": sr_gan, "HR": hr},
                   corners, 96)
    grid = save_panels(panels, args.out / "photo-crops.png", scale=2)
    print(table("held-out photo (coffee, 600x400, x4, Y channel, border 4 cropped)", photo, times))
    print(f"crop grid (lowres | bicubic | SRResNet | SRGAN | HR): {grid}")

    # -- digits ---------------------------------------------------------------------------------------------------
    if args.digit_steps > 0:
        test = load_source("mnist5k?split=test&sr=4")
        d_hr, d_lr = test.x, test.fields["lowres"]
        d_resnet_dir, td_resnet = train("srresnet-digits", args.digit_steps, args.out / "srresnet-digits",
                                        args.threads, seed)
        d_gan_dir, td_gan = train("srgan-digits", max(1, args.digit_steps // 2), args.out / "srgan-digits",
                                  args.threads, seed, init_from=d_resnet_dir)
        d_resnet, d_gan = upscale(ganforge.load(d_resnet_dir), d_lr), upscale(ganforge.load(d_gan_dir), d_lr)
        digits = measure({"nearest": nearest(d_lr), "bicubic": bicubic(d_lr), "SRResNet": d_resnet, "SRGAN": d_gan},
                         d_hr, crop_border=0)
        d_times = {"SRResNet": f"{args.digit_steps} steps, {td_resnet:.0f} s",
                   "SRGAN": f"+{max(1, args.digit_steps // 2)} steps from SRResNet, {td_gan:.0f} s"}
        results["digits"] = {"data": "mnist5k?split=test&sr=4 (1,000 held-out digits)", "metrics": digits,
                             "times": d_times}
        rows = torch.arange(0, 1000, 100)
        d_grid = save_panels({"lowres": d_lr[rows], "bicubic": bicubic(d_lr[rows]), "SRResNet": d_resnet[rows],
                              "SRGAN": d_gan[rows], "HR": d_hr[rows]}, args.out / "digit-grid.png", scale=3)
        print(table("held-out digits (1,000, 7x7 -> 28x28)", digits, d_times))
        print(f"digit grid (lowres | bicubic | SRResNet | SRGAN | HR): {d_grid}")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
