"""ProGAN's blocks against direct computation: equalized learning rate (the runtime He scale, the lr multiplier),
pixel norm, minibatch stddev, the fade-in of G and D and of the real images, each phase's resolution, WGAN-GP's drift
term, and one-line refusals (resolutions the networks do not grow through, networks that do not grow)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.algorithms.base import DataInfo
from ganforge.algorithms.progan import downsample_reals
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.models.progan import ProGANDiscriminator, ProGANGenerator, channels_at
from ganforge.nn.equalized import EqualizedConv2d, EqualizedLinear
from ganforge.nn.minibatch import MinibatchStdDev
from ganforge.nn.pixel_norm import PixelNorm
from ganforge.objectives import objective_class
from ganforge.train.trainer import check_training_options

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


# ------------------------------------------------------------------------------------------ equalized learning rate
def test_equalized_conv_scales_unit_weights_by_the_he_constant_at_runtime():
    torch.manual_seed(0)
    conv = EqualizedConv2d(16, 8, 3)
    assert conv.weight_scale == pytest.approx(math.sqrt(2 / (16 * 9)), rel=1e-12)      # c = sqrt(2 / fan_in)
    assert float(conv.weight.detach().std()) == pytest.approx(1.0, abs=0.1)                       # stored N(0, 1)
    assert torch.equal(conv.bias, torch.zeros(8))
    with torch.no_grad():
        conv.bias.normal_()
    plain = nn.Conv2d(16, 8, 3, padding=1)
    with torch.no_grad():
        plain.weight.copy_(conv.weight * math.sqrt(2 / 144))
        plain.bias.copy_(conv.bias)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(conv(x), plain(x), rtol=1e-5, atol=1e-6)
    # the effective weight has He's variance 2 / fan_in, so activations keep their scale through a layer
    assert float((conv.weight.detach() * conv.weight_scale).var()) == pytest.approx(2 / 144, rel=0.15)
    toRGB = EqualizedConv2d(32, 3, 1, gain=1.0)
    assert toRGB.weight_scale == pytest.approx(1 / math.sqrt(32), rel=1e-12) and toRGB.padding == 0


def test_equalized_linear_and_the_learning_rate_multiplier():
    torch.manual_seed(0)
    lin = EqualizedLinear(64, 10)
    assert lin.weight_scale == pytest.approx(math.sqrt(2 / 64), rel=1e-12)
    x = torch.randn(3, 64)
    torch.testing.assert_close(lin(x), x @ (lin.weight * math.sqrt(2 / 64)).T + lin.bias, rtol=1e-5, atol=1e-6)
    # lr_mul (StyleGAN's mapping net, 0.01): stored std 1 / lr_mul, runtime c * lr_mul -> the same initial function
    slow = EqualizedLinear(512, 512, lr_mul=0.01)
    assert slow.weight_scale == pytest.approx(math.sqrt(2 / 512) * 0.01, rel=1e-12)
    assert float(slow.weight.detach().std()) == pytest.approx(100.0, rel=0.05)
    assert float((slow.weight.detach() * slow.weight_scale).std()) == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    # ... but an optimiser step of size lr on the stored parameter moves the effective weight lr_mul times as far
    fast = EqualizedLinear(512, 512)
    for layer in (fast, slow):
        layer.weight.grad = torch.ones_like(layer.weight)
        before = (layer.weight * layer.weight_scale).detach().clone()
        torch.optim.SGD([layer.weight], lr=1.0).step()
        layer.moved = float(((layer.weight * layer.weight_scale).detach() - before).abs().mean())
    assert slow.moved == pytest.approx(0.01 * fast.moved, rel=1e-4)
    with pytest.raises(ConfigError, match="lr_mul > 0"):
        EqualizedLinear(4, 4, lr_mul=0.0)


# ------------------------------------------------------------------------------------------ pixel norm, mbstd
def test_pixel_norm_gives_each_pixel_a_unit_mean_square_feature_vector():
    x = torch.randn(4, 7, 3, 5) * torch.rand(4, 1, 3, 5) * 30
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(4, 3, 5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, x / torch.sqrt((x ** 2).mean(dim=1, keepdim=True) + 1e-8))
    z = PixelNorm()(torch.randn(6, 128) * 5)                        # latents onto the sphere of radius sqrt(128)
    torch.testing.assert_close(z.norm(dim=1), torch.full((6,), math.sqrt(128)), rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_matches_karras_et_al_computed_directly():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    groups = 8 // 4
    for i in range(8):
        members = x[[j for j in range(8) if j % groups == i % groups]]       # the authors' reshape [4, 2, ...]
        assert len(members) == 4
        std = torch.sqrt(((members - members.mean(0)) ** 2).mean(0) + 1e-8)   # over the group, biased
        expected = std.mean()                                                 # averaged over features and pixels
        torch.testing.assert_close(out[i, 3], torch.full((2, 2), float(expected)), rtol=1e-5, atol=1e-6)
    # a batch smaller than the group is one group; identical samples give (almost) zero
    small = MinibatchStdDev(4)(x[:3])
    std = torch.sqrt(x[:3].var(0, unbiased=False) + 1e-8).mean()
    torch.testing.assert_close(small[:, 3], torch.full((3, 2, 2), float(std)), rtol=1e-5, atol=1e-6)
    assert float(MinibatchStdDev(4)(x[:1].repeat(4, 1, 1, 1))[:, 3].max()) < 1e-3


# ------------------------------------------------------------------------------------------ the networks
def _nets(size=16, channels=3):
    torch.manual_seed(0)
    return (ProGANGenerator(latent_dim=12, image_size=size, channels=channels, fmap_base=32, fmap_max=8),
            ProGANDiscriminator(image_size=size, channels=channels, fmap_base=32, fmap_max=8))


def test_every_layer_is_built_up_front_and_each_phase_runs_at_its_resolution():
    G, D = _nets(32)
    assert G.sizes == D.sizes == [4, 8, 16, 32]
    assert [len(G.to_rgb), len(G.blocks), len(D.from_rgb), len(D.blocks)] == [4, 4, 4, 4]
    assert [channels_at(s, 8192, 512) for s in (4, 32, 64, 1024)] == [512, 512, 256, 16]    # table 2's widths
    count = sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters())
    z = torch.randn(4, 12)
    for r in (4, 8, 16, 32):
        for alpha in (0.3, 1.0):
            G.set_phase(r, alpha)
            D.set_phase(r, alpha)
            x = G(z)
            assert x.shape == (4, 3, r, r)
            assert D(x).shape == (4, 1)
    assert count == sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters())   # nothing built
    assert G.value_range == (-1.0, 1.0)
    with pytest.raises(ValueError, match="runs at 32 x 32"):
        D(torch.randn(4, 3, 16, 16))
    with pytest.raises(ConfigError, match="use one of 4, 8, 16, 32"):
        G.set_phase(12)
    with pytest.raises(ConfigError, match="data.image_size=32"):
        ProGANGenerator(latent_dim=8, image_size=28)


def test_generator_fade_in_alpha_one_is_the_new_block_alone_and_alpha_zero_the_old_path():
    G, _ = _nets()
    z = torch.randn(5, 12)
    with torch.no_grad():
        h4 = G.norm(G.act(G.dense(G.latent_norm(z)).view(5, -1, 4, 4) + G.dense_bias.view(1, -1, 1, 1)))
        h4 = G._block(0, h4)
        h8 = G._block(1, h4)
        new = G.to_rgb[2](G._block(2, h8))                                     # toRGB_16(block_16(h_8))
        old = F.interpolate(G.to_rgb[1](h8), scale_factor=2, mode="nearest")   # upsample(toRGB_8(h_8))
        assert torch.equal(G(z, resolution=16, alpha=1.0), new)
        assert torch.equal(G(z, resolution=16, alpha=0.0), old)
        torch.testing.assert_close(G(z, resolution=16, alpha=0.25), 0.75 * old + 0.25 * new)
        torch.testing.assert_close(G(z, resolution=16, alpha=1e-6), old, rtol=0, atol=1e-5)
        # alpha -> 0 is the previous phase's image, upsampled
        assert torch.equal(G(z, resolution=16, alpha=0.0),
                           F.interpolate(G(z, resolution=8, alpha=1.0), scale_factor=2, mode="nearest"))
        assert not torch.allclose(new, old, atol=1e-3)


def test_discriminator_fade_in_alpha_one_is_the_new_block_alone_and_alpha_zero_the_old_path():
    _, D = _nets()
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        new = D._block(2, D.act(D.from_rgb[2](x)))                        # block_16(fromRGB_16(x))
        old = D.act(D.from_rgb[1](F.avg_pool2d(x, 2)))                   # fromRGB_8(avgpool(x))
        rest = lambda h: D._block(0, D._block(1, h))                     # noqa: E731
        D.set_phase(16, 1.0)
        assert torch.equal(D(x), rest(new))
        D.set_phase(16, 0.0)
        assert torch.equal(D(x), rest(old))
        D.set_phase(8, 1.0)
        assert torch.equal(D(F.avg_pool2d(x, 2)), rest(old))              # alpha 0 is the previous phase's D
        D.set_phase(16, 0.4)
        torch.testing.assert_close(D(x), rest(0.6 * old + 0.4 * new))
        assert torch.equal(D(x, alpha=1.0), rest(new))


def test_real_images_are_pooled_to_the_phase_and_blended_during_its_fade_in():
    x = torch.randn(4, 1, 32, 32)
    x16 = F.avg_pool2d(x, 2)
    assert torch.equal(downsample_reals(x, 32, 1.0), x)
    torch.testing.assert_close(downsample_reals(x, 16, 1.0), x16)
    low = F.interpolate(F.avg_pool2d(x16, 2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(downsample_reals(x, 16, 0.3), 0.7 * low + 0.3 * x16)
    torch.testing.assert_close(downsample_reals(x, 4, 0.3), F.avg_pool2d(x, 8))    # 4 px: nothing to fade from


# ------------------------------------------------------------------------------------------ the loss
def test_wgan_gp_drift_term_against_direct_computation():
    real, fake = torch.randn(16, 1) * 3, torch.randn(16, 1)
    plain = objective_class("wgan-gp")()
    drift = objective_class("wgan-gp")(drift=0.001)
    direct = -real.mean() + 0.001 * (real ** 2).mean() + fake.mean()
    torch.testing.assert_close(drift.d_loss(real, fake), direct)
    torch.testing.assert_close(plain.d_loss(real, fake), -real.mean() + fake.mean())
    torch.testing.assert_close(drift.d_real_loss(real), -real.mean() + 0.001 * (real ** 2).mean())
    torch.testing.assert_close(drift.g_loss(fake), plain.g_loss(fake))               # G's loss has no drift
    # its gradient pulls the real scores toward 0: d/dD(x) = (-1 + 2 eps D(x)) / n
    scores = real.clone().requires_grad_(True)
    drift.d_real_loss(scores).backward()
    torch.testing.assert_close(scores.grad, (-1 + 2 * 0.001 * real) / 16)
    with pytest.raises(ConfigError, match="objective.drift must be >= 0"):
        objective_class("wgan-gp")(drift=-0.1)


# ------------------------------------------------------------------------------------------ the algorithm
def _digits_cfg(**over):
    base = {"networks.G.fmap_base": 16, "networks.G.fmap_max": 4, "networks.D.fmap_base": 16,
            "networks.D.fmap_max": 4, "algorithm.latent_dim": 8}
    return load_config("progan-digits", {**base, **over})


def test_the_algorithm_refuses_phases_and_networks_it_cannot_grow_through():
    info = DataInfo(kind="image", sample_shape=(1, 32, 32), num_classes=10)
    cfg = _digits_cfg(**{"train.phases": [{"image_size": 4, "steps": 2}, {"image_size": 12}]})
    algo = build_algorithm(cfg, info)
    with pytest.raises(ConfigError, match=r"train.phases\[1\].image_size=12: .* 4, 8, 16, 32 px"):
        check_training_options(cfg, algo)
    with pytest.raises(ConfigError, match="networks.D.arch=progan"):
        build_algorithm(load_config("progan-digits", {"networks.D": {"arch": "dcgan-book"}}), info)
    with pytest.raises(ConfigError, match="power of two"):
        build_algorithm(_digits_cfg(), DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10))


def test_samples_come_from_the_last_phase_upsampled_to_the_data_size():
    info = DataInfo(kind="image", sample_shape=(1, 32, 32), num_classes=10)
    algo = build_algorithm(_digits_cfg(), info)
    from ganforge.train.phases import phase_at
    cfg = _digits_cfg()
    inputs = algo.sample_inputs(4, torch.Generator().manual_seed(0), torch.device("cpu"))
    with torch.no_grad():
        algo.enter_phase(phase_at(cfg.train.phases, 250))             # 8x8 fade-in, alpha 0.255
        assert (algo.nets["G"].resolution, algo.nets["D"].resolution) == (8, 8)
        out = algo.generate(inputs)
        direct = algo.nets["G"](inputs["z"], resolution=8, alpha=51 / 200)
        assert out.shape == (4, 1, 32, 32)
        assert torch.equal(out, F.interpolate(direct, scale_factor=4, mode="nearest"))
        algo.enter_phase(None)                                         # no phases: the full size at alpha 1
        assert torch.equal(algo.generate(inputs), algo.nets["G"](inputs["z"], resolution=32, alpha=1.0))
