"""SRResNet / SRGAN (Ledig et al. 2017): network shapes, the paper's discriminator layout, every loss against a direct
computation (pixel MSE, 1e-3 adversarial, VGG19 features from a weights file the test writes, the domain stand-in),
bad weight files as one line, the bicubic LR inputs of the data sources, grids and translate."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import ganforge

from ganforge.algorithms import DataInfo
from ganforge.algorithms.base import Batch, make_batch
from ganforge.algorithms.srgan import bicubic_upsample
from ganforge.build import build, build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source
from ganforge.errors import CheckpointError, ConfigError, DataError
from ganforge.metrics.domain import LeNet
from ganforge.metrics.paired import psnr
from ganforge.metrics.perceptual import DomainFeatures, load_vgg19
from ganforge.models.srresnet import SRGANDiscriminator, SRResNet, SubPixelBlock

from conftest import RecordingContext

DIGITS = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10, keys=("image", "label", "lowres"),
                  field_shapes={"lowres": (1, 7, 7)})
# A small G and D so that each test builds in milliseconds.
SMALL = {"networks.G.filters": 8, "networks.G.blocks": 1, "networks.D.filters": 4, "networks.D.dense": 8}
# torchvision vgg19().features: the indices of the convolutions and max-pools
VGG_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG_POOLS = [4, 9, 18, 27, 36]
VGG_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


@pytest.fixture(scope="module")
def digits() -> Batch:
    ds = load_source("mnist5k?split=test&sr=4")
    return make_batch(ds.x, ds.y, ds.fields, torch.arange(6), (-1.0, 1.0))


def algorithm(recipe: str = "srgan-digits", **over):
    torch.manual_seed(0)
    params = {**SMALL, "algorithm.content": "mse", "algorithm.domain_source": None, **over}
    return build_algorithm(load_config(recipe, params), DIGITS)


# ------------------------------------------------------------------------------------------------- networks
@pytest.mark.parametrize("scale, channels", [(2, 1), (4, 3), (4, 1), (8, 3)])
def test_srresnet_upsamples_by_its_scale_with_sub_pixel_blocks(scale, channels):
    g = SRResNet(channels=channels, scale=scale, filters=8, blocks=2)
    blocks = [m for m in g.modules() if isinstance(m, SubPixelBlock)]
    assert len(blocks) == int(math.log2(scale))                # one PixelShuffle(2) per factor 2
    assert all(b.conv.out_channels == 4 * 8 and b.shuffle.upscale_factor == 2 for b in blocks)
    out = g(torch.rand(2, channels, 5, 7) * 2 - 1)             # fully convolutional: any LR size, not only squares
    assert out.shape == (2, channels, 5 * scale, 7 * scale)
    assert out.abs().max() < 1                                 # tanh: HR in [-1, 1]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 2 * 2 + 1


def test_srresnet_has_the_papers_layers_and_refuses_other_scales():
    g = SRResNet()                                             # the paper's: 16 blocks of 64, x4
    assert len(g.blocks) == 16 and g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert isinstance(g.head[1], nn.PReLU) and g.head[1].num_parameters == 64      # one slope per channel
    assert 1.4e6 < sum(p.numel() for p in g.parameters()) < 1.6e6                  # ~1.5 M parameters
    with pytest.raises(ConfigError, match="powers of two.*got 3"):
        SRResNet(scale=3)


def test_srresnet_feeds_its_first_conv_lowres_in_zero_one():
    """The data's lowres arrives in the model's range [-1, 1]; the paper's network sees LR inputs in [0, 1]."""
    g = SRResNet(channels=1, scale=2, filters=4, blocks=1)
    seen = []
    g.head.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.tensor([-1.0, 0.0, 1.0, 0.5]).view(1, 1, 2, 2)
    g(x)
    torch.testing.assert_close(seen[0], (x + 1) / 2)


def test_discriminator_is_the_papers_and_judges_any_size():
    d = SRGANDiscriminator()
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]   # stride 2 where the width repeats
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7 and isinstance(d.features[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    dense = [m for m in d.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(512 * 6 * 6, 1024), (1024, 1)]
    x = torch.randn(2, 3, 96, 96)
    assert d.features(x).shape[-2:] == (6, 6)                  # 96 px: the pooling is the identity, as the paper
    torch.testing.assert_close(d.pool(d.features(x)), d.features(x))
    small = SRGANDiscriminator(channels=1, filters=4, dense=8, head_pool=2)
    for side in (96, 48, 28, 17, 8):
        assert small(torch.randn(2, 1, side, side)).shape == (2, 1)


# ------------------------------------------------------------------------------------------------- losses
def test_srgan_losses_are_content_plus_1e3_adversarial(digits):
    algo = algorithm()
    G, D = algo.nets["G"], algo.nets["D"]
    ctx = RecordingContext(digits)
    logs = algo.train_step(ctx)
    lr, hr = digits["lowres"], digits.x
    with torch.no_grad():
        out = G(lr)
        real_out, fake_out, g_out = D(hr), D(out), D(out)
    bce = F.binary_cross_entropy_with_logits
    d_loss = bce(real_out, torch.ones_like(real_out)) + bce(fake_out, torch.zeros_like(fake_out))
    mse = ((out - hr) ** 2).mean()
    adv = -F.logsigmoid(g_out).mean()                          # -log D(G(I_LR)), the paper's l_Gen
    assert [g for g, _ in ctx.updates] == ["D", "G"]
    torch.testing.assert_close(ctx.updates[0][1].float(), d_loss)
    torch.testing.assert_close(ctx.updates[1][1].float(), mse + 1e-3 * adv)
    torch.testing.assert_close(logs["g_adv"], adv)
    torch.testing.assert_close(logs["content_mse"], mse)
    torch.testing.assert_close(logs["psnr"], 10 * torch.log10(4 / mse))    # range 2 in [-1, 1]


def test_srresnet_is_mse_alone_and_never_runs_d(digits):
    algo = algorithm("srresnet-digits")
    assert algo.adversarial_weight == 0
    calls = []
    algo.nets["D"].register_forward_hook(lambda *a: calls.append(1))
    ctx = RecordingContext(digits)
    logs = algo.train_step(ctx)
    with torch.no_grad():
        mse = ((algo.nets["G"](digits["lowres"]) - digits.x) ** 2).mean()
    assert [g for g, _ in ctx.updates] == ["G"] and not calls and "d_loss" not in logs
    torch.testing.assert_close(ctx.updates[0][1].float(), mse)


def _vgg_state(layers: int = 16, seed: int = 0, extra: bool = True) -> dict[str, torch.Tensor]:
    """A random VGG19 in torchvision's layout (He-scaled, so activations stay finite): ``layers`` convolutions."""
    g = torch.Generator().manual_seed(seed)
    state, width = {}, 3
    for idx, out in zip(VGG_CONVS[:layers], VGG_WIDTHS[:layers]):
        state[f"features.{idx}.weight"] = torch.randn(out, width, 3, 3, generator=g) * math.sqrt(2 / (9 * width))
        state[f"features.{idx}.bias"] = torch.randn(out, generator=g) * 0.01
        width = out
    if extra:   # torchvision's classifier: present in the real file, unused by the content loss
        state["classifier.6.weight"], state["classifier.6.bias"] = torch.zeros(10, 4), torch.zeros(10)
    return state


def _vgg_direct(state: dict[str, torch.Tensor], x01: torch.Tensor, last_conv: int) -> torch.Tensor:
    """torchvision's vgg19 features up to the ReLU after ``features.<last_conv>``, by hand, on [0, 1] RGB images."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x01 - mean) / std
    for idx in range(last_conv + 1):
        if idx in VGG_CONVS:
            x = F.relu(F.conv2d(x, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1))
        elif idx in VGG_POOLS:
            x = F.max_pool2d(x, 2)
    return x


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_vgg54_content_loss_from_a_weights_file(tmp_path, suffix):
    from safetensors.torch import save_file
    state = _vgg_state()
    path = tmp_path / f"vgg19{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    info = DataInfo(kind="image", sample_shape=(3, 32, 32), num_classes=0, keys=("image", "lowres"),
                    field_shapes={"lowres": (3, 8, 8)})
    torch.manual_seed(0)
    algo = build_algorithm(load_config("srgan-photos", {**SMALL, "algorithm.vgg_weights": str(path)}), info)
    assert algo.content == "vgg54" and algo.pixel_weight == 0     # content: auto + a weights file = SRGAN-VGG54
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    batch = Batch(x=hr, y=None, fields={"lowres": F.avg_pool2d(hr, 4)})
    ctx = RecordingContext(batch)
    logs = algo.train_step(ctx)
    with torch.no_grad():
        out = algo.nets["G"](batch["lowres"])
        phi = lambda im: _vgg_direct(state, (im + 1) / 2, 34) / 12.75   # conv5_4 = features.34 and its ReLU
        vgg = ((phi(out) - phi(hr)) ** 2).mean()
        adv = -F.logsigmoid(algo.nets["D"](out)).mean()
    assert phi(hr).shape == (3, 512, 2, 2)                       # before the 5th max-pool: 32 / 16
    torch.testing.assert_close(logs["content_vgg54"], vgg)
    torch.testing.assert_close(ctx.updates[1][1].float(), vgg + 1e-3 * adv)


def test_vgg22_reads_only_the_layers_it_needs_and_grey_images_become_rgb(tmp_path):
    state = _vgg_state(layers=4, extra=False)                    # conv1_1 ... conv2_2 only
    torch.save(state, tmp_path / "v.pth")
    vgg = load_vgg19(tmp_path / "v.pth", "vgg22")
    grey = torch.rand(2, 1, 8, 8) * 2 - 1
    want = _vgg_direct(state, ((grey + 1) / 2).expand(-1, 3, -1, -1), 8) / 12.75
    torch.testing.assert_close(vgg(grey), want)
    assert not any(p.requires_grad for p in vgg.parameters())


def test_bad_vgg_weights_are_one_line(tmp_path):
    cases = {}
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint at all")
    cases["garbage.pth"] = (CheckpointError, "cannot read VGG19 weights")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 20)
    cases["garbage.safetensors"] = (CheckpointError, "cannot read VGG19 weights")
    torch.save({"features.0.weight": torch.zeros(1), "note": 3}, tmp_path / "mixed.pth")
    cases["mixed.pth"] = (CheckpointError, "not a plain state dict of tensors")
    torch.save({k: v for k, v in _vgg_state().items() if k != "features.21.weight"}, tmp_path / "short.pth")
    cases["short.pth"] = (CheckpointError, "lack 1 tensor.*features.21.weight")
    wrong = _vgg_state()
    wrong["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    cases["wrong.pth"] = (CheckpointError, r"wrong shape \(e.g. features.0.weight \(64, 1, 3, 3\)")
    cases["missing.pth"] = (ConfigError, "not found: give torchvision's ImageNet VGG19 weights")
    for name, (kind, message) in cases.items():
        with pytest.raises(kind, match=message) as info:
            load_vgg19(tmp_path / name)
        assert "\n" not in str(info.value), name
    with pytest.raises(ConfigError, match="content=vgg54 needs ImageNet VGG19 weights"):
        algorithm(**{"algorithm.content": "vgg54"})
    # training reads the file before it makes a run directory: the bad file is the one line, nothing is left behind
    with pytest.raises(CheckpointError, match="cannot read VGG19 weights.*not a file of tensors"):
        ganforge.train("srgan-digits", steps=1, out=tmp_path / "run", progress=False,
                       overrides={"algorithm.content": "vgg54", "algorithm.vgg_weights": str(tmp_path / "garbage.pth")})
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="content=domain needs the labelled source"):
        algorithm(**{"algorithm.content": "domain"})


def test_domain_content_loss_is_pixel_plus_classifier_features(digits):
    algo = algorithm(**{"algorithm.content": "domain", "algorithm.domain_source": "mnist5k?split=train",
                        "algorithm.feature_weight": 0.5, "algorithm.adversarial_weight": 0.0})
    torch.manual_seed(3)
    net = LeNet(1, 10).eval().requires_grad_(False)
    algo.set_extractor(DomainFeatures(net, 28, 1))            # a random classifier: no minute of training here
    assert "mnist5k?split=train domain-classifier features" in algo.describe_content()
    ctx = RecordingContext(digits)
    logs = algo.train_step(ctx)
    with torch.no_grad():
        out = algo.nets["G"](digits["lowres"])
        mse = ((out - digits.x) ** 2).mean()
        feat = ((net.features((out + 1) / 2) - net.features((digits.x + 1) / 2)) ** 2).mean()
    torch.testing.assert_close(logs["content_domain"], feat)
    torch.testing.assert_close(ctx.updates[0][1].float(), mse + 0.5 * feat)


def test_objectives_with_needs_it_cannot_meet_are_refused():
    with pytest.raises(ConfigError, match="objective 'ebgan' needs .* which algorithm 'srgan' does not provide"):
        algorithm(**{"objective.name": "ebgan"})
    assert algorithm(**{"objective.name": "wgan-gp"}).needs.needs   # a penalty it applies in its D update


# ------------------------------------------------------------------------------------------------- data
def test_lowres_is_antialiased_bicubic_downsampling_in_every_bundled_source():
    digits = load_source("mnist5k?split=test&sr=4")
    direct = F.interpolate(digits.x.float(), size=(7, 7), mode="bicubic", align_corners=False, antialias=True)
    assert torch.equal(digits.fields["lowres"], direct.round().clamp(0, 255).to(torch.uint8))
    assert digits.keys() == ("image", "label", "lowres") and len(digits) == 1000
    photos = load_source("photos?split=test&sr=4&size=48&patches=4")
    assert photos.fields["lowres"].shape == (4, 3, 12, 12)
    # sr:DIR makes its LR with Pillow's bicubic: the same filter family, within a few grey levels of ganforge's
    pil = torch.stack([torch.from_numpy(np.array(Image.fromarray(p.permute(1, 2, 0).numpy()).resize(
        (12, 12), Image.BICUBIC))).permute(2, 0, 1) for p in photos.x])
    assert (pil.float() - photos.fields["lowres"].float()).abs().mean() < 1.0
    # and bicubic upsampling of it, the baseline, is closer to the HR patch than nearest-neighbour
    lr = photos.fields["lowres"].float() / 127.5 - 1
    bic = bicubic_upsample(lr, 4, (-1.0, 1.0))
    near = F.interpolate(lr, scale_factor=4, mode="nearest")
    hr = photos.x.float() / 127.5 - 1
    assert psnr(bic, hr, data_range=2.0).mean() > psnr(near, hr, data_range=2.0).mean()
    with pytest.raises(DataError, match=r"\?sr=3 in 'mnist5k\?sr=3': the digits are 28 px"):
        load_source("mnist5k?sr=3")


def test_lowres_that_does_not_fit_the_generator_is_one_line(tmp_path):
    with pytest.raises(DataError, match="networks.G.scale=2 but the data's lowres is 4x smaller"):
        algorithm(**{"networks.G.scale": 2})
    rgb_lowres = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10, keys=("image", "lowres"),
                          field_shapes={"lowres": (3, 7, 7)})
    with pytest.raises(DataError, match="lowres field has 3 channel.*set data.channels to convert both"):
        build_algorithm(load_config("srresnet-digits", SMALL), rgb_lowres)
    # data.image_size resizes the lowres with the images, keeping x4 (28 -> 32 px: 7 -> 8 px)
    grown = build(load_config("srresnet-digits", {**SMALL, "data.image_size": 32}))
    assert grown.info.field_shapes["lowres"] == (1, 8, 8) and grown.algorithm.scale == 4
    with pytest.raises(DataError, match="needs batches with lowres, but mnist5k yields image, label"):
        build(load_config("srresnet-digits", {**SMALL, "data.source": "mnist5k", "data.held_out": None}))


# ------------------------------------------------------------------------------------------------- sampling
def test_grid_panels_translate_and_input_shape(digits):
    algo = algorithm().eval()
    inputs = algo.sample_inputs(4, torch.Generator(), torch.device("cpu"), batch=digits)
    panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["lowres", "bicubic", "output", "target"]
    torch.testing.assert_close(panels["bicubic"], F.interpolate(digits["lowres"][:4], scale_factor=4,
                                                                mode="bicubic", align_corners=False).clamp(-1, 1))
    assert torch.equal(panels["target"], digits.x[:4]) and panels["output"].shape == (4, 1, 28, 28)
    assert algo.translation_input_shape() == (1, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(algo.translate(digits["lowres"]), algo.nets["G"](digits["lowres"]))
    with pytest.raises(ConfigError, match="does not sample from noise; use ganforge translate"):
        algo.sample_inputs(4, torch.Generator(), torch.device("cpu"))
    with pytest.raises(ConfigError):
        algo.translate(digits["lowres"], direction="AtoB")
