"""Short real SRResNet / SRGAN runs on the bundled digits (7x7 -> 28x28): SRResNet's PSNR on the 1,000 held-out digits
must rise far above the untrained generator's and beat nearest-neighbour and bicubic upsampling; SRGAN resumes
bit-exactly and starts from an SRResNet run with --init-from, as the paper."""
from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import ganforge
from ganforge.algorithms.srgan import bicubic_upsample
from ganforge.build import build
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.metrics.paired import psnr
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint, learned, run_cli

QUICK = {"train.threads": 1, "train.log_every": 50, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
# SRGAN's digit recipe with the pixel MSE as its content loss: its domain-classifier features would first train
# the classifier (a minute), which these tests of the step's mechanics do not need.
GAN_MSE = {**QUICK, "algorithm.content": "mse", "algorithm.domain_source": None}


def _mean_psnr(images: torch.Tensor, hr: torch.Tensor) -> float:
    return float(psnr(images, hr).mean())


def test_srresnet_learns_to_upscale_held_out_digits(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        run = ganforge.train("srresnet-digits", steps=250, out=tmp_path / "run", progress=False, overrides=QUICK)
    finally:
        torch.set_num_threads(threads)
    test = load_source("mnist5k?split=test&sr=4")
    hr, lowres = test.x, test.fields["lowres"]
    model = ganforge.load(run.run_dir)
    trained = model.translate(lowres)                          # uint8 7x7 in, uint8 28x28 out, same order
    assert trained.shape == (1000, 1, 28, 28) and trained.dtype == torch.uint8
    untrained_G = build(load_config("srresnet-digits", QUICK)).algorithm.nets["G"].eval()   # the run's init
    with torch.no_grad():
        untrained = to_uint8(untrained_G(to_model_range(lowres, (-1.0, 1.0))), (-1.0, 1.0))
    nearest = F.interpolate(lowres, scale_factor=4, mode="nearest")
    bicubic = to_uint8(bicubic_upsample(to_model_range(lowres, (-1.0, 1.0)), 4, (-1.0, 1.0)), (-1.0, 1.0))
    # measured after 250 steps: trained 18.7 dB, untrained 6.6, nearest 13.8, bicubic 14.5 (AVX2 EPYC, 1 thread)
    p_trained = _mean_psnr(trained, hr)
    learned("SRResNet PSNR - untrained G's (dB)", p_trained - _mean_psnr(untrained, hr), 5.0)
    learned("SRResNet PSNR - nearest-neighbour's (dB)", p_trained - _mean_psnr(nearest, hr), 1.5)
    learned("SRResNet PSNR - bicubic's (dB)", p_trained - _mean_psnr(bicubic, hr), 1.0)
    # the progress grid: lowres | bicubic | output | target of the held-out digits
    grid = sorted((run.run_dir / "samples").glob("*.png"))[-1]
    assert Image.open(grid).text["columns"] == "lowres | bicubic | output | target"

    # Fully convolutional: images of any size upscale as they are, not resized to the model's 7x7. Two held-out
    # digits side by side (7 x 14) come out 28 x 56 and as good as the digits one at a time (bar the seam).
    wide_lr, wide_hr = torch.cat([lowres[:50], lowres[50:100]], 3), torch.cat([hr[:50], hr[50:100]], 3)
    wide = model.translate(wide_lr)
    assert wide.shape == (50, 1, 28, 56)
    wide_bicubic = to_uint8(bicubic_upsample(to_model_range(wide_lr, (-1.0, 1.0)), 4, (-1.0, 1.0)), (-1.0, 1.0))
    learned("SRResNet PSNR on 7x14 inputs - bicubic's (dB)", _mean_psnr(wide, wide_hr) - _mean_psnr(wide_bicubic,
            wide_hr), 1.0)
    # the CLI: a folder of a 7x7 and a 7x14 image gives a 28x28 and a 28x56 PNG, said in no resize line
    (tmp_path / "in").mkdir()
    Image.fromarray(lowres[0, 0].numpy()).save(tmp_path / "in" / "one.png")
    Image.fromarray(wide_lr[0, 0].numpy()).save(tmp_path / "in" / "two.png")
    code, out, err = run_cli(["translate", run.run_dir, "--input", tmp_path / "in", "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    assert "resized" not in out
    assert Image.open(tmp_path / "out" / "one.png").size == (28, 28)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "two.png")), wide[0, 0].numpy())


def test_srgan_resumes_bit_exactly_and_starts_from_srresnet(tmp_path):
    torch.set_num_threads(1)
    straight = ganforge.train("srgan-digits", steps=6, out=tmp_path / "a", progress=False, overrides=GAN_MSE)
    ganforge.train("srgan-digits", steps=3, out=tmp_path / "b", progress=False, overrides=GAN_MSE)
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)                # G, D, both optimizers' moments, the data order, the RNG
    assert a[2]["updates"] == {"G": 6, "D": 6}
    assert all(np.isfinite(straight.last_metrics[k]) for k in ("d_loss", "g_adv", "content_mse", "psnr"))

    # SRResNet, then SRGAN initialised from it: the same networks in both recipes, so --init-from fits
    resnet = ganforge.train("srresnet-digits", steps=3, out=tmp_path / "resnet", progress=False, overrides=QUICK)
    weights = read_checkpoint(latest_checkpoint(resnet.run_dir))[0]
    assert read_checkpoint(latest_checkpoint(resnet.run_dir))[2]["updates"] == {"G": 3, "D": 0}   # D never stepped
    gan = ganforge.train("srgan-digits", steps=1, out=tmp_path / "gan", progress=False, overrides=GAN_MSE,
                         init_from=resnet.run_dir)
    meta = json.loads((gan.run_dir / "run.json").read_text())
    assert meta["init_from"]["recipe"] == "srresnet-digits" and meta["init_from"]["step"] == 3
    # one step of SRGAN from SRResNet's G: closer to it than to a fresh init
    after = read_checkpoint(latest_checkpoint(gan.run_dir))[0]
    fresh = build(load_config("srgan-digits", GAN_MSE)).algorithm.nets["G"].state_dict()
    key = "nets.G.tail.weight"
    assert (after[key] - weights[key]).abs().max() < (fresh["tail.weight"] - weights[key]).abs().max()
