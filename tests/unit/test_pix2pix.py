"""pix2pix: the U-Net generator's shapes, widths, skips and dropout-as-noise; one step's losses against a direct
computation (D's objective halved, lambda-weighted L1); the PatchGAN sees (source, translation) pairs; objective needs;
translate; the glyphs source's held-out characters."""
from __future__ import annotations

import pytest
import torch

from conftest import RecordingContext, expect_data_error
from ganforge.algorithms import Batch, DataInfo
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range
from ganforge.data.glyphs import held_out
from ganforge.errors import ConfigError
from ganforge.models.unet import UNetGenerator

S = 32
INFO = DataInfo(kind="image", sample_shape=(1, S, S), num_classes=0, keys=("image", "target"),
                field_shapes={"target": (1, S, S)})
TINY = {"networks.G.filters": 8, "networks.G.max_filters": 32, "networks.D.filters": 8}


def tiny(info: DataInfo = INFO, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_algorithm(load_config("pix2pix-glyphs", {**TINY, **changes}), info)


def record_calls(module: torch.nn.Module) -> list:
    """(first input, output) of every forward call of ``module``, detached."""
    calls = []
    module.register_forward_hook(lambda _, args, out: calls.append((args[0].detach().clone(), out.detach().clone())))
    return calls


@pytest.fixture(scope="module")
def pairs() -> Batch:
    """Ten real glyph pairs: the digits in DejaVu Sans (image) and DejaVu Serif (target), in [-1, 1]."""
    ds = load_source(f"glyphs:DejaVuSans,DejaVuSerif?chars=digits&size={S}")
    return Batch(x=to_model_range(ds.x, (-1.0, 1.0)), y=None,
                 fields={"target": to_model_range(ds.fields["target"], (-1.0, 1.0))})


def bce_real(s):   # -log sigmoid(s), written out, over every patch score
    return -torch.log(torch.sigmoid(s.double())).mean()


def bce_fake(s):   # -log(1 - sigmoid(s))
    return -torch.log(1 - torch.sigmoid(s.double())).mean()


# ------------------------------------------------------------------------------------------------ U-Net
@pytest.mark.parametrize("size,c_in,c_out", [(32, 1, 1), (32, 3, 1), (64, 1, 3), (64, 3, 3)])
def test_unet_maps_each_size_and_channel_count(size, c_in, c_out):
    torch.manual_seed(0)
    G = UNetGenerator(channels=c_in, image_size=size, sample_shape=(c_out, size, size), filters=8, max_filters=32)
    out = G(torch.rand(2, c_in, size, size) * 2 - 1)
    assert out.shape == (2, c_out, size, size)
    assert out.abs().max() <= 1 and G.value_range == (-1.0, 1.0)
    assert G.depth == {32: 5, 64: 6}[size] == len(G.down) == len(G.up)


def test_unet_at_256_px_has_the_papers_layers():
    torch.manual_seed(0)
    G = UNetGenerator(channels=3, image_size=256)
    # encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 (the
    # decoder widths counted after the concatenation with the skip), no norm on the first and innermost encoder layer
    assert [c.out_channels for c in G.down] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert [c.in_channels for c in G.up] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert G.up[-1].out_channels == 3
    assert G.up_dropout == [True, True, True, False, False, False, False, False]
    normed = [not isinstance(n, torch.nn.Identity) for n in G.down_norm]
    assert normed == [False, True, True, True, True, True, True, False]
    # 54.41 M parameters: the official code's unet_256 (ngf 64)
    assert sum(p.numel() for p in G.parameters()) == 54_414_531
    with torch.no_grad():
        assert G(torch.zeros(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    # weights N(0, 0.02)
    w = G.down[3].weight.detach()
    assert abs(float(w.mean())) < 1e-3 and 0.019 < float(w.std()) < 0.021


@pytest.mark.parametrize("size", [16, 48, 100, 3000])
def test_unet_refuses_sizes_it_cannot_halve_to_one_pixel_in_one_line(size):
    with pytest.raises(ConfigError) as info:
        UNetGenerator(channels=1, image_size=size)
    message = str(info.value)
    assert "\n" not in message and "power-of-two image size >= 32" in message
    assert "--set data.image_size=" in message


def test_a_recipe_at_an_unfit_size_is_refused_at_build_naming_the_set():
    info = DataInfo(kind="image", sample_shape=(1, 48, 48), num_classes=0, keys=("image", "target"),
                    field_shapes={"target": (1, 48, 48)})
    with pytest.raises(ConfigError, match=r"networks.G: .*data.image_size=48; use --set data.image_size=32 \(or 64\)"):
        tiny(info)


def test_unet_skip_connections_carry_the_encoder_features():
    torch.manual_seed(0)
    G = UNetGenerator(channels=1, image_size=32, filters=8, max_filters=32, dropout=0.0).eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    seen = {}
    G.down[0].register_forward_hook(lambda m, a, out: seen.__setitem__("first", out.detach()))
    G.up[-1].register_forward_pre_hook(lambda m, a: seen.__setitem__("last_in", a[0].detach()))
    with torch.no_grad():
        out = G(x)
    # the outermost decoder layer sees [first encoder layer's features, decoder features] (through ReLU)
    assert seen["last_in"].shape[1] == 2 * 8
    torch.testing.assert_close(seen["last_in"][:, :8], torch.relu(seen["first"]))

    def cut_skip(module, args):   # zero the skip half of the outermost layer's input
        inp = args[0].clone()
        inp[:, :8] = 0
        return (inp,)

    handle = G.up[-1].register_forward_pre_hook(cut_skip)
    with torch.no_grad():
        without = G(x)
    handle.remove()
    assert (out - without).abs().mean() > 1e-3      # the output depends on the skip


def test_dropout_is_noise_in_training_and_in_paper_inference_reproducible_by_seed():
    torch.manual_seed(0)
    G = UNetGenerator(channels=1, image_size=32, filters=8, max_filters=32, norm="batch")
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert not torch.equal(G(x), G(x))                      # training: fresh masks each call
        G.eval()
        assert G.noise_at_test
        gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]   # noqa: E731
        a, b = G(x, generators=gens([1, 2, 3])), G(x, generators=gens([1, 2, 3]))
        assert torch.equal(a, b)                                 # same seeds, same noise
        assert not torch.equal(a, G(x, generators=gens([4, 5, 6])))
        # an image's output depends on its own image and seed only, not on the images translated with it (per-image
        # statistics in place of batch norm's batch statistics, per-image masks)
        alone = G(x[1:2], generators=gens([2]))
        torch.testing.assert_close(alone, a[1:2], rtol=1e-5, atol=1e-6)
        # inference: eval is PyTorch's eval mode: no dropout, running statistics, deterministic
        G.inference = "eval"
        assert not G.noise_at_test
        e = G(x)
        assert torch.equal(e, G(x, generators=gens([7, 8, 9])))
        torch.testing.assert_close(G(x[1:2]), e[1:2], rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="inference must be paper"):
        UNetGenerator(channels=1, image_size=32, inference="test")


# ------------------------------------------------------------------------------------------------ the step
def test_one_step_computes_the_papers_losses(pairs):
    algo = tiny()
    g_calls, d_calls = record_calls(algo.nets["G"]), record_calls(algo.nets["D"])
    ctx = RecordingContext(pairs)
    logs = algo.train_step(ctx)
    x, y = pairs["image"], pairs["target"]
    (g_in, fake), = g_calls
    assert torch.equal(g_in, x)
    # D: the fake pair (x, G(x)), the real pair (x, y), then the fake pair again for G's loss
    assert len(d_calls) == 3
    (d_fake_in, fake_out), (d_real_in, real_out), (d_g_in, fake_out_g) = d_calls
    assert torch.equal(d_fake_in, torch.cat([x, fake], 1)) and torch.equal(d_real_in, torch.cat([x, y], 1))
    assert torch.equal(d_g_in, d_fake_in)
    assert fake_out.shape[1:] == (1, 14, 14)            # one score per 16 px patch of the 1-layer PatchGAN
    d_loss = 0.5 * (bce_real(real_out) + bce_fake(fake_out))          # the paper halves D's objective
    g_adv = bce_real(fake_out_g)                                        # non-saturating: -log D(x, G(x))
    g_l1 = (y.double() - fake.double()).abs().mean()
    g_loss = g_adv + 100.0 * g_l1
    assert [g for g, _ in ctx.updates] == ["D", "G"]
    torch.testing.assert_close(ctx.updates[0][1], d_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ctx.updates[1][1], g_loss, rtol=1e-5, atol=1e-5)
    for key, value in (("d_loss", d_loss), ("g_loss", g_loss), ("g_adv", g_adv), ("g_l1", g_l1),
                       ("d_real", real_out.double().mean()), ("d_fake", fake_out.double().mean())):
        torch.testing.assert_close(logs[key].double(), value, rtol=1e-5, atol=1e-5)


def test_lsgan_and_lambda_and_d_weight_enter_as_stated(pairs):
    # lsgan with scaling=sum is the official code's lsgan: D 0.5 (E(D(x,y) - 1)^2 + E D(x,G(x))^2) with the paper's
    # halving, G E(D(x,G(x)) - 1)^2; here D unhalved (d_weight 1) and lambda 10
    algo = tiny(**{"objective.name": "lsgan", "objective.scaling": "sum", "algorithm.lambda_l1": 10.0,
                   "algorithm.d_weight": 1.0})
    g_calls, d_calls = record_calls(algo.nets["G"]), record_calls(algo.nets["D"])
    ctx = RecordingContext(pairs)
    algo.train_step(ctx)
    fake = g_calls[0][1]
    (_, fake_out), (_, real_out), (_, fake_out_g) = d_calls
    d_loss = (real_out.double() - 1).square().mean() + fake_out.double().square().mean()
    g_loss = (fake_out_g.double() - 1).square().mean() + 10.0 * (pairs["target"] - fake).double().abs().mean()
    torch.testing.assert_close(ctx.updates[0][1], d_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ctx.updates[1][1], g_loss, rtol=1e-5, atol=1e-5)


def test_objective_needs_are_met_or_refused_in_one_line(pairs):
    # WGAN-GP: the penalty on D's input, the source fixed, added at its own weight to the halved critic loss
    algo = tiny(**{"objective.name": "wgan-gp"})
    d_calls = record_calls(algo.nets["D"])
    ctx = RecordingContext(pairs)
    logs = algo.train_step(ctx)
    fake_out, real_out = d_calls[0][1], d_calls[1][1]
    critic = 0.5 * (fake_out.double().mean() - real_out.double().mean())
    assert float(logs["gp"]) > 0
    torch.testing.assert_close(ctx.updates[0][1], critic + logs["gp"].double(), rtol=1e-5, atol=1e-5)
    # the gradient-penalty critic saw pairs: every interpolate is concatenated with the source
    interpolates = d_calls[2][0]
    assert interpolates.shape[1] == 2 and torch.equal(interpolates[:, :1], pairs["image"])
    # relativistic objectives get D's scores on the real pair in G's loss: one more D call in the G step
    algo = tiny(**{"objective.name": "rsgan"})
    d_calls = record_calls(algo.nets["D"])
    algo.train_step(RecordingContext(pairs))
    assert len(d_calls) == 4 and torch.equal(d_calls[3][0][:, 1:], pairs["target"])
    with pytest.raises(ConfigError) as info:
        tiny(**{"objective.name": "began"})
    assert "\n" not in str(info.value) and "algorithm 'pix2pix' does not provide" in str(info.value)
    assert "PatchGAN" in str(info.value)


def test_networks_fit_the_datas_channels_and_the_patchgan_sees_both():
    grey_to_colour = DataInfo(kind="image", sample_shape=(1, S, S), num_classes=0, keys=("image", "target"),
                              field_shapes={"target": (3, S, S)})
    algo = tiny(grey_to_colour)
    G, D = algo.nets["G"], algo.nets["D"]
    assert G.down[0].in_channels == 1 and G.up[-1].out_channels == 3
    assert D.model[0].in_channels == 1 + 3
    with torch.no_grad():
        out = algo.translate(torch.zeros(2, 1, S, S))
    assert out.shape == (2, 3, S, S)


def test_jitter_and_mirroring_move_an_image_and_its_target_together():
    algo = tiny(**{"algorithm.jitter_scale": 286 / 256, "algorithm.mirror": True})
    torch.manual_seed(3)
    x = torch.rand(8, 1, S, S) * 2 - 1
    a, b = algo.augment(x, x.clone())
    assert a.shape == x.shape and torch.equal(a, b)              # the pair stays aligned
    assert not torch.equal(a, x) and a.min() >= -1 and a.max() <= 1
    plain = tiny()
    assert plain.augment(x, x)[0] is x                          # off by default in the glyph recipe
    with pytest.raises(ConfigError, match="jitter_scale must be >= 1"):
        tiny(**{"algorithm.jitter_scale": 0.5})


# ------------------------------------------------------------------------------------------------ sampling, translate
def test_sampling_translates_the_held_out_batch_and_translate_is_reproducible(pairs):
    algo = tiny()
    g = torch.Generator().manual_seed(0)
    inputs = algo.sample_inputs(4, g, torch.device("cpu"), batch=pairs)
    assert set(inputs) == {"image", "target", "noise_seed"} and len(inputs["noise_seed"]) == 4
    with eval_mode(algo.nets["G"]), torch.no_grad():
        panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["input", "output", "target"]
    assert torch.equal(panels["input"], pairs["image"][:4]) and torch.equal(panels["target"], pairs["target"][:4])
    x = pairs["image"][:4]
    first, again = algo.translate(x), algo.translate(x)
    assert torch.equal(first, again) and first.shape == x.shape
    assert not torch.equal(first, algo.translate(x, seed=1))        # dropout noise under another seed
    torch.testing.assert_close(algo.translate(x[2:3]), first[2:3], rtol=1e-5, atol=1e-6)
    assert algo.nets["G"].training                                    # translate restores the training mode
    assert algo.translation_input_shape() == (1, S, S)
    with pytest.raises(ConfigError, match="does not take sampling control"):
        algo.translate(x, direction="BtoA")
    with pytest.raises(ConfigError, match="translates images rather than sampling from noise"):
        algo.sample_inputs(4, g, torch.device("cpu"))


# ------------------------------------------------------------------------------------------------ held-out glyphs
def test_glyphs_hold_out_the_same_characters_for_every_font():
    spec = "glyphs:DejaVuSans,DejaVuSerif?chars=alnum&size=16"
    every = load_source(spec)
    train, test = load_source(spec + "&split=train"), load_source(spec + "&split=test")
    chars = every.meta["chars"]
    assert every.meta["split"] == "all" and load_source(spec + "&split=all").meta["chars"] == chars
    assert set(train.meta["chars"]).isdisjoint(test.meta["chars"])
    assert sorted(train.meta["chars"] + test.meta["chars"]) == sorted(chars)
    assert test.meta["chars"] == "5DFLQhjouwz"                     # one in eight, by a fixed hash of the character
    assert test.meta["chars"] == "".join(ch for ch in chars if held_out(ch))
    # the glyphs of a split are those of the whole set, pairs intact, labels indexing the split's characters
    for part in (train, test):
        idx = [chars.index(ch) for ch in part.meta["chars"]]
        assert torch.equal(part.x, every.x[idx]) and torch.equal(part.fields["target"], every.fields["target"][idx])
        assert part.class_names == list(part.meta["chars"])
    # the same characters are held out in another font and character set, and in the domains layout
    other = load_source("glyphs:STIXGeneral?chars=latin&size=16&split=test&layout=domains")
    assert other.meta["chars"] == "DFLQhjouwz"
    assert torch.equal(load_source(spec + "&split=test").x, test.x)              # deterministic


def test_glyph_splits_refuse_bad_values_and_empty_splits_in_one_line(tmp_path):
    expect_data_error(lambda: load_source("glyphs:DejaVuSans?split=val"), "unknown split 'val'", "?split=train",
                      "?split=test", "?split=all")
    chars = tmp_path / "chars.txt"
    chars.write_text("0123", encoding="utf-8")          # none of them is held out
    expect_data_error(lambda: load_source(f"glyphs:DejaVuSans?chars={chars}&split=test&size=16"),
                      "?split=test", "holds no character", "all 4 characters", "?split=all")
    assert load_source(f"glyphs:DejaVuSans?chars={chars}&split=train&size=16").meta["chars"] == "0123"


def test_glyph_split_is_listed_by_the_source_help():
    from ganforge.data import source_help
    assert "split=train|test|all" in source_help()["glyphs"]
