"""ganforge.metrics.evaluate: reading samples as users save them, class metrics, metric selection, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import ConfigError, DataError
from ganforge.metrics.evaluate import (Samples, class_metrics, classifier_source, evaluate, feature_metrics,
                                       format_table, images_from_array, load_target, parse_metrics)


def test_images_from_array_layouts():
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    x = images_from_array(nhwc, "t")
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(x[:, 0], torch.from_numpy(nhwc[..., 0]))
    assert torch.equal(images_from_array(nhwc.transpose(0, 3, 1, 2), "t"), x)       # NCHW as is
    assert torch.equal(images_from_array(nhwc[..., 0], "t"), x)                       # N x H x W grayscale
    rgba = rng.integers(0, 256, (2, 16, 16, 4), dtype=np.uint8)
    assert images_from_array(rgba, "t").shape == (2, 3, 16, 16)                        # alpha dropped
    unit = nhwc.astype(np.float32) / 255
    assert torch.equal(images_from_array(unit, "t"), x)                               # float [0,1] -> uint8


@pytest.mark.parametrize("arr, fragment", [
    (np.zeros((4, 28, 28, 2), np.uint8), "channel axis"),
    (np.zeros((4, 5), np.uint8), "N x H x W x C"),
    (np.zeros((4, 4, 4, 1), np.uint8), "too small"),
    (np.full((4, 28, 28, 1), 2.0, np.float32), "must lie in [0, 1]"),
    (np.full((4, 28, 28, 1), -1.0, np.float32), "must lie in [0, 1]"),
    (np.zeros((4, 28, 28, 1), np.int32), "dtype int32"),
    (np.full((4, 28, 28, 1), np.nan, np.float32), "NaN"),
])
def test_images_from_array_rejects(arr, fragment):
    with pytest.raises(DataError, match=None) as e:
        images_from_array(arr, "samples.npz")
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_parse_metrics():
    assert parse_metrics("fid, KID,is") == ["fid", "kid", "is"]
    assert parse_metrics(None) == ["fid", "kid", "is", "pr", "dc", "classes"]
    assert parse_metrics(None, "vector") == ["modes"]
    with pytest.raises(ConfigError, match="did you mean 'fid'"):
        parse_metrics("fdi")
    with pytest.raises(ConfigError, match="does not apply to 2-D toy points"):
        parse_metrics("fid", "vector")


def test_class_metrics_on_constructed_predictions():
    # 40 samples: classes 0..3 predicted 10 times each with confidence 0.97 except class 3 at 0.5
    probs = np.full((40, 4), 0.01)
    labels = torch.arange(40) // 10
    for i in range(40):
        c = i // 10
        probs[i, c] = 0.97
        if c == 3:
            probs[i] = [0.2, 0.15, 0.15, 0.5]
    labels[0] = 1                                   # one wrong "requested" label
    m = class_metrics(probs, labels, 4)
    assert m["class_histogram"] == [10, 10, 10, 10]
    assert m["modes"] == 4 and m["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert m["confident_share"] == pytest.approx(0.75)
    assert m["label_accuracy"] == pytest.approx(39 / 40)
    assert m["label_accuracy_per_class"][0] == pytest.approx(1.0) and m["label_accuracy_per_class"][1] == pytest.approx(10 / 11)
    # all mass on one class: KL to uniform is log K, one mode
    one = np.tile([1.0, 0, 0, 0], (20, 1))
    m1 = class_metrics(one, None, 4)
    assert m1["modes"] == 1 and m1["kl_uniform"] == pytest.approx(np.log(4))
    with pytest.raises(DataError, match="labels must lie in 0..3"):
        class_metrics(one, torch.full((20,), 7), 4)


def test_feature_metrics_identical_sets_and_too_few():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(400, 8))
    out = feature_metrics(["fid", "pr", "dc"], f, f, None)
    assert abs(out["fid"]) < 1e-6
    same = feature_metrics(["kid"], rng.normal(size=(400, 8)), f, None)["kid"]
    shifted = feature_metrics(["kid"], rng.normal(size=(400, 8)) + 0.5, f, None)["kid"]
    assert abs(same) < 0.05 * shifted
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    with pytest.raises(DataError, match="FID needs at least 9 generated samples"):
        feature_metrics(["fid"], f[:5], f, None)


def test_is_uses_shuffled_splits():
    # a label-ordered set of perfectly confident, balanced predictions has IS == K, not ~1
    probs = np.repeat(np.eye(10), 500, axis=0)
    out = feature_metrics(["is"], np.zeros((5000, 2)), np.zeros((5000, 2)), probs)
    assert out["is"] == pytest.approx(10.0, rel=0.02)


def test_classifier_source_drops_only_the_split():
    assert classifier_source("mnist5k?split=test") == "mnist5k"
    assert classifier_source("idx:/d?split=test") == "idx:/d"
    assert classifier_source("folder:/x?size=32&split=test") == "folder:/x?size=32"
    assert classifier_source("mnist5k") == "mnist5k"


def test_toy_npz_target_and_modes(tmp_path):
    from ganforge.data.toy2d import mode_centers
    centres, std = mode_centers("ring8")
    pts = (centres[:6].repeat_interleave(50, 0) + std * torch.randn(300, 2, generator=torch.Generator().manual_seed(0)))
    np.savez(tmp_path / "toy.npz", arr_0=pts.numpy())
    s = load_target(str(tmp_path / "toy.npz"), None)
    assert s.kind == "vector"
    with pytest.raises(ConfigError, match="--ref toy:ring8"):
        evaluate(s)
    out = evaluate(s, ref="toy:ring8")
    assert out["modes_covered"] == 6 and out["num_modes"] == 8 and out["high_quality"] > 0.95
    assert "modes covered" in format_table(out)


def test_unknown_target(tmp_path):
    with pytest.raises(DataError, match="cannot evaluate"):
        load_target(str(tmp_path / "nothing-here"), None)


def test_npz_label_mismatch(tmp_path):
    np.savez(tmp_path / "s.npz", arr_0=np.zeros((4, 28, 28, 1), np.uint8), labels=np.zeros(3, np.int64))
    with pytest.raises(DataError, match="'labels' must be 4 integers"):
        load_target(str(tmp_path / "s.npz"), None)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_target(str(tmp_path / "bad.npz"), None)


def test_samples_len():
    assert len(Samples("image", torch.zeros(3, 1, 8, 8, dtype=torch.uint8), None, "x")) == 3
