"""FID InceptionV3: state-dict layout of pt_inception-2015-12-05-6726825d.pth, loading, pre-processing, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.errors import CheckpointError, ConfigError, DataError
from ganforge.metrics.inception import (
    WEIGHTS_ENV_VAR,
    WEIGHTS_FILENAME,
    FIDInceptionV3,
    load_inception,
)

# BasicConv2d layers of the reference network as (name, in, out, kernel_h, kernel_w), written from the
# architecture (torchvision Inception3 without AuxLogits, patched by pytorch-fid), not from our module.
STEM = [
    ("Conv2d_1a_3x3", 3, 32, 3, 3),
    ("Conv2d_2a_3x3", 32, 32, 3, 3),
    ("Conv2d_2b_3x3", 32, 64, 3, 3),
    ("Conv2d_3b_1x1", 64, 80, 1, 1),
    ("Conv2d_4a_3x3", 80, 192, 3, 3),
]


def block_a(name: str, cin: int, pool: int) -> list[tuple]:
    return [(f"{name}.branch1x1", cin, 64, 1, 1), (f"{name}.branch5x5_1", cin, 48, 1, 1),
            (f"{name}.branch5x5_2", 48, 64, 5, 5), (f"{name}.branch3x3dbl_1", cin, 64, 1, 1),
            (f"{name}.branch3x3dbl_2", 64, 96, 3, 3), (f"{name}.branch3x3dbl_3", 96, 96, 3, 3),
            (f"{name}.branch_pool", cin, pool, 1, 1)]


def block_c(name: str, c7: int) -> list[tuple]:
    return [(f"{name}.branch1x1", 768, 192, 1, 1), (f"{name}.branch7x7_1", 768, c7, 1, 1),
            (f"{name}.branch7x7_2", c7, c7, 1, 7), (f"{name}.branch7x7_3", c7, 192, 7, 1),
            (f"{name}.branch7x7dbl_1", 768, c7, 1, 1), (f"{name}.branch7x7dbl_2", c7, c7, 7, 1),
            (f"{name}.branch7x7dbl_3", c7, c7, 1, 7), (f"{name}.branch7x7dbl_4", c7, c7, 7, 1),
            (f"{name}.branch7x7dbl_5", c7, 192, 1, 7), (f"{name}.branch_pool", 768, 192, 1, 1)]


def block_e(name: str, cin: int) -> list[tuple]:
    return [(f"{name}.branch1x1", cin, 320, 1, 1), (f"{name}.branch3x3_1", cin, 384, 1, 1),
            (f"{name}.branch3x3_2a", 384, 384, 1, 3), (f"{name}.branch3x3_2b", 384, 384, 3, 1),
            (f"{name}.branch3x3dbl_1", cin, 448, 1, 1), (f"{name}.branch3x3dbl_2", 448, 384, 3, 3),
            (f"{name}.branch3x3dbl_3a", 384, 384, 1, 3), (f"{name}.branch3x3dbl_3b", 384, 384, 3, 1),
            (f"{name}.branch_pool", cin, 192, 1, 1)]


CONV_LAYERS = (
    STEM
    + block_a("Mixed_5b", 192, 32) + block_a("Mixed_5c", 256, 64) + block_a("Mixed_5d", 288, 64)
    + [("Mixed_6a.branch3x3", 288, 384, 3, 3), ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1),
       ("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3), ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3)]
    + block_c("Mixed_6b", 128) + block_c("Mixed_6c", 160) + block_c("Mixed_6d", 160) + block_c("Mixed_6e", 192)
    + [("Mixed_7a.branch3x3_1", 768, 192, 1, 1), ("Mixed_7a.branch3x3_2", 192, 320, 3, 3),
       ("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1), ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7),
       ("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1), ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3)]
    + block_e("Mixed_7b", 1280) + block_e("Mixed_7c", 2048)
)


def reference_shapes(with_step_counter: bool = True) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, kh, kw in CONV_LAYERS:
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{suffix}"] = (cout,)
        if with_step_counter:
            shapes[f"{name}.bn.num_batches_tracked"] = ()
    shapes["fc.weight"] = (1008, 2048)
    shapes["fc.bias"] = (1008,)
    return shapes


def reference_state_dict(with_step_counter: bool) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in reference_shapes(with_step_counter).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.01
    return state


@pytest.fixture(scope="module")
def model() -> FIDInceptionV3:
    return FIDInceptionV3().eval()


def test_state_dict_keys_and_shapes_match_the_reference_layout(model: FIDInceptionV3) -> None:
    got = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert got == reference_shapes()
    spot_checks = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_mean": (32,),
        "Conv2d_2b_3x3.bn.running_var": (64,),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5c.branch_pool.conv.weight": (64, 256, 1, 1),
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6c.branch7x7dbl_2.conv.weight": (160, 160, 7, 1),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
        "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
        "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "Mixed_7c.branch_pool.bn.bias": (192,),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    for key, shape in spot_checks.items():
        assert got[key] == shape, key
    assert not any("AuxLogits" in key for key in got)
    assert all(module.eps == 0.001 for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d))


def test_parameter_count() -> None:
    # torchvision's inception_v3 has 27,161,264 parameters (docs: Inception_V3_Weights.IMAGENET1K_V1) with its
    # AuxLogits head (conv 768->128 1x1 + BN: 98,560; conv 128->768 5x5 + BN: 2,459,136; fc 768->1000: 769,000)
    # and a 1000-way fc. Without AuxLogits and with 1008 classes (+8 x 2048 weights, +8 biases):
    expected = 27_161_264 - (98_560 + 2_459_136 + 769_000) + 8 * 2048 + 8
    assert expected == 23_850_960
    parameters_in_table = sum(
        torch.Size(shape).numel() for key, shape in reference_shapes().items()
        if key.endswith(("conv.weight", "bn.weight", "bn.bias")) or key.startswith("fc.")
    )
    assert parameters_in_table == expected
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == expected


def test_forward_on_small_grayscale_images(model: FIDInceptionV3) -> None:
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(images)
    assert out["pool"].shape == (2, 2048)
    assert out["logits"].shape == out["logits_unbiased"].shape == out["probs"].shape == (2, 1008)
    torch.testing.assert_close(out["probs"].sum(1), torch.ones(2))
    assert (out["pool"] >= 0).all()  # average of ReLU outputs
    torch.testing.assert_close(out["logits"], out["logits_unbiased"] + model.fc.bias)
    torch.testing.assert_close(out["probs"], torch.softmax(out["logits_unbiased"], 1))


def test_preprocess_resizes_bilinear_and_maps_to_minus_one_one() -> None:
    images = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(FIDInceptionV3.preprocess(images), 2 * images - 1)  # 299 -> 299 is the identity
    small = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    prepared = FIDInceptionV3.preprocess(small)
    assert prepared.shape == (2, 3, 299, 299)
    torch.testing.assert_close(prepared[:, 0], prepared[:, 2])  # gray repeated to RGB
    expected = 2 * F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False) - 1
    torch.testing.assert_close(prepared[:, :1], expected)
    assert prepared.min() >= -1 and prepared.max() <= 1


def test_tensorflow_pooling_quirks(model: FIDInceptionV3) -> None:
    from ganforge.metrics.inception import _tf_avg_pool

    # TF's average pool ignores padding: a constant map stays constant at the borders (with padding
    # counted, the corners would be 4/9 of it).
    torch.testing.assert_close(_tf_avg_pool(torch.ones(1, 1, 5, 5)), torch.ones(1, 1, 5, 5))
    assert model.Mixed_7b.pool == "avg" and model.Mixed_7c.pool == "max"


def test_loads_reference_state_dict_from_pth_and_safetensors(tmp_path, monkeypatch) -> None:
    # An old-style .pth without BatchNorm step counters, loaded through the environment variable.
    state = reference_state_dict(with_step_counter=False)
    pth_path = tmp_path / WEIGHTS_FILENAME
    torch.save(state, pth_path)
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(pth_path))
    loaded = load_inception()
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(loaded.fc.weight, state["fc.weight"], rtol=0, atol=0)
    torch.testing.assert_close(loaded.Mixed_6c.branch7x7dbl_2.bn.running_var,
                               state["Mixed_6c.branch7x7dbl_2.bn.running_var"], rtol=0, atol=0)

    full_state = reference_state_dict(with_step_counter=True)
    safetensors_path = tmp_path / "inception.safetensors"
    save_file(full_state, str(safetensors_path))
    loaded = load_inception(safetensors_path)
    torch.testing.assert_close(loaded.Conv2d_1a_3x3.conv.weight, full_state["Conv2d_1a_3x3.conv.weight"], rtol=0, atol=0)


def test_missing_weights_file_names_the_file_and_how_to_provide_it(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV_VAR, raising=False)
    with pytest.raises(ConfigError) as error:
        load_inception()
    message = str(error.value)
    assert "\n" not in message
    for needed in (WEIGHTS_FILENAME, "github.com/mseitzer/pytorch-fid/releases", "--inception-weights", WEIGHTS_ENV_VAR):
        assert needed in message
    missing = tmp_path / "nowhere" / WEIGHTS_FILENAME
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(missing))
    with pytest.raises(ConfigError, match="not found") as error:
        load_inception()
    assert str(missing) in str(error.value)


class Payload:
    """An arbitrary object: must never be unpickled from a weights file."""


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"not a checkpoint", "cannot read Inception weights"),
        ({"fc.weight": torch.zeros(2), "payload": Payload()}, "cannot read Inception weights"),
        ({"fc.weight": torch.zeros(2), "step": 3}, "not a plain state dict of tensors"),
    ],
)
def test_unreadable_or_unsafe_weights_raise_checkpoint_error(tmp_path, content, fragment: str) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError) as error:
        load_inception(path)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_mismatched_keys_and_shapes_are_listed_in_one_line(tmp_path) -> None:
    state = reference_state_dict(with_step_counter=True)
    state["classifier.weight"] = state.pop("fc.weight")
    renamed = tmp_path / "renamed.safetensors"
    save_file(state, str(renamed))
    with pytest.raises(CheckpointError) as error:
        load_inception(renamed)
    message = str(error.value)
    assert "1 missing (e.g. fc.weight)" in message and "1 unexpected (e.g. classifier.weight)" in message
    assert "\n" not in message

    state["fc.weight"] = state.pop("classifier.weight")[:1000]  # a 1000-class (torchvision) head
    state["fc.bias"] = state["fc.bias"][:1000].clone()
    wrong_shape = tmp_path / "wrong_shape.safetensors"
    save_file(state, str(wrong_shape))
    with pytest.raises(CheckpointError, match=r"2 tensors of the wrong shape \(e\.g\. fc\.weight \(1000, 2048\) != \(1008, 2048\)"):
        load_inception(wrong_shape)


@pytest.mark.parametrize(
    "images, fragment",
    [
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "divide uint8 images by 255"),
        (torch.zeros(3, 8, 8), "shape (N, C, H, W)"),
        (torch.zeros(2, 2, 8, 8), "C = 1 or 3"),
        (torch.full((2, 3, 8, 8), -1.0), "(x + 1) / 2"),
        (torch.full((2, 3, 8, 8), float("nan")), "NaN"),
        ([[0.0]], "torch tensor"),
    ],
)
def test_bad_images_raise_data_error(model: FIDInceptionV3, images, fragment: str) -> None:
    with pytest.raises(DataError) as error:
        model(images)
    assert fragment in str(error.value) and "\n" not in str(error.value)

