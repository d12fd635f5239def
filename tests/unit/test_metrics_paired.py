"""Paired metrics (L1, PSNR, SSIM) against hand-computed values and scikit-image; content preservation on real
digits and on a labelled source of another size and channel count."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data import Dataset, load_source, prepare, register_source
from ganforge.errors import DataError
from ganforge.metrics import content_preservation, l1, paired_metrics, psnr, psnr_set, ssim
from ganforge.metrics.paired import PSNR_CAP


def smooth_images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """uint8 images with structure at several scales (upsampled noise), so SSIM has edges and texture to see."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, c, h // 4, w // 4, generator=g)
    up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    fine = torch.rand(n, c, h, w, generator=g)
    return (255 * (0.8 * up + 0.2 * fine)).round().clamp(0, 255).to(torch.uint8)


def noisy(x: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x.float() + std * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------------------- hand-computed values
def test_identical_images_score_perfectly_and_psnr_is_capped():
    for c in (1, 3):
        x = smooth_images(3, c, 24, 20)
        for channels in ("y", "all"):
            assert torch.allclose(ssim(x, x, channels=channels), torch.ones(3, dtype=torch.float64), atol=1e-12)
            assert torch.equal(psnr(x, x, channels=channels), torch.full((3,), PSNR_CAP, dtype=torch.float64))
        assert torch.equal(l1(x, x), torch.zeros(3, dtype=torch.float64))
    y = x.clone()
    y[0, 0, 0, 0] ^= 1                                  # one pair off by one level in one value
    m = paired_metrics(y, x, channels="all")
    assert m["identical"] == 2 and m["ssim"] < 1.0
    # the one imperfect pair: MSE 1 / (3 * 24 * 20) -> 10 log10(255^2 * 1440), below the cap
    one = 10 * math.log10(255 ** 2 * 1440)
    assert m["psnr"] == pytest.approx((one + 2 * PSNR_CAP) / 3, abs=1e-9)
    assert m["psnr_set"] == pytest.approx(10 * math.log10(255 ** 2 * 1440 * 3), abs=1e-9)


def test_psnr_and_l1_of_a_constant_offset():
    x = torch.full((2, 1, 16, 16), 100, dtype=torch.uint8)
    y = x + 10
    # MSE = 100 -> 20 log10(255 / 10) = 28.1308 dB
    assert torch.allclose(psnr(y, x), torch.full((2,), 20 * math.log10(25.5), dtype=torch.float64), atol=1e-12)
    assert torch.allclose(l1(y, x), torch.full((2,), 10 / 255, dtype=torch.float64), atol=1e-15)
    rgb, rgb10 = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    assert float(psnr(rgb10, rgb, channels="all")[0]) == pytest.approx(20 * math.log10(25.5), abs=1e-12)
    # on luminance the same +10 in R, G and B moves Y by 10 * (65.481 + 128.553 + 24.966) / 255 = 10 * 219 / 255
    assert float(psnr(rgb10, rgb, channels="y")[0]) == pytest.approx(20 * math.log10(255 / (10 * 219 / 255)),
                                                                     abs=1e-9)
    # float images in [0, 1] with data_range 1: the same figure
    assert float(psnr(y.float() / 255, x.float() / 255, data_range=1.0)[0]) == pytest.approx(20 * math.log10(25.5))


def test_psnr_set_weighs_the_worst_images_where_the_mean_weighs_the_best():
    x = torch.full((2, 1, 12, 12), 50, dtype=torch.uint8)
    y = x.clone()
    y[0] += 10                                          # MSE 100
    y[1] += 20                                          # MSE 400
    per = psnr(y, x)
    assert per.tolist() == pytest.approx([20 * math.log10(25.5), 20 * math.log10(12.75)], abs=1e-12)
    assert psnr_set(y, x) == pytest.approx(10 * math.log10(255 ** 2 / 250), abs=1e-12)
    m = paired_metrics(y, x)
    assert m["psnr"] == pytest.approx(float(per.mean())) and m["psnr_set"] < m["psnr"]


def test_ssim_of_constant_images_is_the_luminance_term():
    # no variance anywhere: SSIM = (2 a b + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 255)^2
    a = torch.full((1, 1, 13, 15), 100, dtype=torch.uint8)
    b = torch.full((1, 1, 13, 15), 110, dtype=torch.uint8)
    c1 = (0.01 * 255) ** 2
    assert float(ssim(a, b)[0]) == pytest.approx((2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1), abs=1e-12)


def test_ssim_falls_monotonically_with_noise():
    x = smooth_images(4, 3, 32, 32)
    for channels in ("y", "all"):
        scores = [float(ssim(noisy(x, std), x, channels=channels).mean()) for std in (0, 3, 8, 16, 32, 64)]
        assert scores[0] == pytest.approx(1.0)
        assert all(a > b for a, b in zip(scores, scores[1:])), scores
        assert scores[-1] < 0.5


def test_crop_border_ignores_the_border():
    x = smooth_images(2, 1, 32, 32)
    y = x.clone()
    y[..., :3, :] = 0                                   # damage only the top 3 rows
    assert float(psnr(y, x).min()) < 40 and float(ssim(y, x).min()) < 1
    assert torch.equal(psnr(y, x, crop_border=3), torch.full((2,), PSNR_CAP, dtype=torch.float64))
    assert torch.allclose(ssim(y, x, crop_border=3), torch.ones(2, dtype=torch.float64))


def test_bad_input_is_one_line():
    x = smooth_images(2, 3, 16, 16)
    cases = [
        lambda: psnr(x, x[:, :1]),                                  # shapes differ
        lambda: ssim(x.float(), x.float()),                         # float without data_range
        lambda: ssim(x[..., :10, :10], x[..., :10, :10]),           # smaller than the 11 x 11 window
        lambda: psnr(x, x, channels="rgb"),                         # unknown channels option
        lambda: ssim(x, x, crop_border=8),                          # nothing left
        lambda: l1(x[0], x[0]),                                     # not NCHW
        lambda: psnr(torch.zeros(2, 4, 16, 16, dtype=torch.uint8), torch.zeros(2, 4, 16, 16, dtype=torch.uint8)),
    ]
    for case in cases:
        with pytest.raises(DataError) as e:
            case()
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------- scikit-image
def test_agrees_with_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    color = pytest.importorskip("skimage.color")
    gray = smooth_images(3, 1, 30, 37, seed=3)
    rgb = smooth_images(3, 3, 33, 29, seed=4)
    for x, std in ((gray, 12.0), (rgb, 20.0)):
        y = noisy(x, std, seed=5)
        ours_all = ssim(y, x, channels="all")
        ours_psnr = psnr(y, x, channels="all")
        for i in range(len(x)):
            a, b = y[i].permute(1, 2, 0).numpy(), x[i].permute(1, 2, 0).numpy()
            ref = metrics.structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False)
            assert float(ours_all[i]) == pytest.approx(ref, abs=1e-4)
            assert float(ours_psnr[i]) == pytest.approx(metrics.peak_signal_noise_ratio(b, a, data_range=255),
                                                        abs=1e-4)
        if x.shape[1] == 3:
            # luminance: skimage's rgb2ycbcr Y (16 + 65.481 R + 128.553 G + 24.966 B, R in [0, 1]) as float
            ours_y, ours_ypsnr = ssim(y, x, channels="y"), psnr(y, x, channels="y")
            for i in range(len(x)):
                ya = color.rgb2ycbcr(y[i].permute(1, 2, 0).numpy())[..., 0]
                yb = color.rgb2ycbcr(x[i].permute(1, 2, 0).numpy())[..., 0]
                ref = metrics.structural_similarity(ya, yb, data_range=255, gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False)
                assert float(ours_y[i]) == pytest.approx(ref, abs=1e-4)
                assert float(ours_ypsnr[i]) == pytest.approx(
                    metrics.peak_signal_noise_ratio(yb, ya, data_range=255), abs=1e-4)
    # float images in [0, 1]
    a, b = gray[0, 0].numpy() / 255.0, noisy(gray, 9.0)[0, 0].numpy() / 255.0
    ours = ssim(torch.from_numpy(b)[None, None], torch.from_numpy(a)[None, None], data_range=1.0)
    ref = metrics.structural_similarity(b, a, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
    assert float(ours[0]) == pytest.approx(ref, abs=1e-4)


# ------------------------------------------------------------------------------------------- content preservation
def test_content_preservation_on_real_digits(one_thread):
    test = load_source("mnist5k?split=test")
    same = content_preservation("mnist5k?split=test", test.x, test.y)    # trained on the 4,000 train digits
    assert same["n"] == 1000 and same["classifier"] == "mnist5k"
    # an identity translation keeps the classifier's own held-out accuracy (measured 0.985)
    assert same["content_accuracy"] == pytest.approx(same["classifier_accuracy"], abs=1e-6)
    assert same["content_accuracy"] > 0.95
    perm = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    scrambled = content_preservation("mnist5k", test.x[perm], test.y)
    assert scrambled["content_accuracy"] < 0.2 and scrambled["chance"] == pytest.approx(0.1)   # measured 0.115
    # the same digits in colour (luma back to gray) and at another size (resized back to 28) keep their classes
    rgb = content_preservation("mnist5k", test.x.expand(-1, 3, -1, -1), test.y)
    assert rgb["content_accuracy"] == pytest.approx(same["content_accuracy"]) and rgb["converted_channels"] == "3->1"
    big = prepare(test, 36, None)
    assert content_preservation("mnist5k", big.x, big.y)["content_accuracy"] > 0.95
    with pytest.raises(DataError):
        content_preservation("mnist5k", test.x, test.y + 1)                # label 10 is not a class


STRIPES = "test-stripes"


def stripes(n: int, seed: int) -> Dataset:
    """3-channel 16x16 images of three classes: horizontal, vertical or diagonal stripes, in random colours."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    i = torch.arange(16)
    patterns = torch.stack([(i.view(16, 1) // 2 % 2).expand(16, 16), (i.view(1, 16) // 2 % 2).expand(16, 16),
                            ((i.view(16, 1) + i.view(1, 16)) // 2 % 2)]).float()
    colour = 80 + 175 * torch.rand(n, 3, 1, 1, generator=g)
    x = patterns[y].unsqueeze(1) * colour + 20 * torch.rand(n, 3, 16, 16, generator=g)
    return Dataset(x=x.round().clamp(0, 255).to(torch.uint8), y=y, name=STRIPES, class_names=["h", "v", "d"])


@pytest.fixture
def stripes_source():
    from ganforge.data import base
    register_source(STRIPES, "three-class striped test images")(lambda arg, seed: stripes(300, 0))
    yield STRIPES
    base.SOURCES._entries.pop(STRIPES, None)
    base.SOURCE_KEYS.pop(STRIPES, None)


def test_content_classifier_follows_the_source_size_and_channels(stripes_source, one_thread):
    from ganforge.metrics import content_classifier
    clf = content_classifier(stripes_source)
    assert (clf.image_size, clf.channels, clf.class_names) == (16, 3, ["h", "v", "d"])
    fresh = stripes(90, seed=1)                                          # images it never saw
    assert content_preservation(clf, fresh.x, fresh.y)["content_accuracy"] > 0.9          # measured 1.0
    # a transpose turns horizontal stripes vertical and back (only the diagonals, symmetric, survive): a
    # translation that loses the content of two classes of three scores about 1/3 (measured 0.333)
    kept = content_preservation(clf, fresh.x.transpose(2, 3), fresh.y)["content_accuracy"]
    assert kept < 0.5
    floats = content_preservation(clf, fresh.x.float() / 127.5 - 1, fresh.y, value_range=(-1.0, 1.0))
    assert floats["content_accuracy"] > 0.9


# ------------------------------------------------------------------------------- through ganforge eval
def test_eval_paired_metrics_against_a_reference_in_the_same_order(tmp_path, capsys):
    """Outputs = targets + 10 grey levels: PSNR is 20 log10(255 / 10) exactly, L1 10/255; no feature network."""
    import json

    from conftest import run_cli
    rng = np.random.default_rng(0)
    targets = rng.integers(20, 230, size=(12, 16, 16, 1), dtype=np.uint8)
    np.savez(tmp_path / "targets.npz", arr_0=targets)
    np.savez(tmp_path / "outputs.npz", arr_0=targets + 10)
    code, out, err = run_cli(["eval", tmp_path / "outputs.npz", "--ref", f"npz:{tmp_path / 'targets.npz'}",
                              "--metrics", "psnr,ssim,l1"], capsys)
    assert code == 0, err
    result = json.loads((tmp_path / "outputs.eval.json").read_text())
    assert result["psnr"] == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    assert result["l1"] == pytest.approx(10 / 255, abs=1e-9) and result["paired_on"] == "image"
    assert 0.9 < result["ssim"] < 1.0 and "fid" not in result and "features" not in result
    assert "PSNR (dB)" in out and "28.1" in out
    np.savez(tmp_path / "fewer.npz", arr_0=targets[:5])
    code, _, err = run_cli(["eval", tmp_path / "outputs.npz", "--ref", f"npz:{tmp_path / 'fewer.npz'}",
                            "--metrics", "psnr"], capsys)
    assert code == 2 and err.count("\n") == 1 and "order and shape" in err, err
