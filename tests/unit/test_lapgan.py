"""LapGAN: the Laplacian pyramid (both operators rebuild an image from its coarsest level and residuals, and are the
operators they claim to be), the per-level networks of the paper's code, each level's losses against direct
computation on a fixed batch, the levels' independence, sampling coarse to fine, and one-line refusals."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError, DataError
from ganforge.models.lapgan import (LaplacianDiscriminator, LaplacianGenerator, downsample, gaussian_pyramid,
                                    laplacian_pairs, level_sizes, upsample, upsample_to)

from conftest import RecordingContext

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

DIGITS = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10)
TINY = {"networks.G.coarse_hidden": 16, "networks.G.hidden": 4, "networks.D.coarse_hidden": 8,
        "networks.D.hidden": 4, "algorithm.latent_dim": 6}


def _algo(overrides=None, info=DIGITS):
    return build_algorithm(load_config("lapgan-digits", {**TINY, **(overrides or {})}), info)


# ------------------------------------------------------------------------------------------------- the pyramid
@pytest.mark.parametrize("kind", ["area-bilinear", "gaussian"])
@pytest.mark.parametrize("shape,levels", [((2, 1, 28, 28), 3), ((2, 3, 32, 32), 4)])
def test_down_then_up_plus_the_residual_rebuilds_every_level(kind, shape, levels):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    coarse, pairs = laplacian_pairs(x, levels, kind)
    gauss = gaussian_pyramid(x, levels, kind)
    assert [g.shape[-1] for g in gauss] == list(level_sizes(shape[-1], levels))
    assert torch.equal(coarse, gauss[0])
    rebuilt = coarse
    for k, (low, residual) in enumerate(pairs, start=1):
        assert low.shape == residual.shape == gauss[k].shape
        rebuilt = upsample(rebuilt, kind) + residual         # I_k = u(I_{k-1}) + h_k, from the coarsest level up
        assert torch.allclose(rebuilt, gauss[k], rtol=0, atol=1e-12)
    assert torch.allclose(rebuilt, x, rtol=0, atol=1e-12)
    # the residuals carry what u(d(.)) loses: not zero for a random image
    assert all(float(h.abs().mean()) > 0.05 for _, h in pairs)


def test_the_code_operator_is_a_2x2_average_down_and_corner_aligned_bilinear_up():
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    down = downsample(x, "area-bilinear")
    assert torch.equal(down, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]], dtype=torch.float64))   # block means
    ramp = torch.arange(4, dtype=torch.float64).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    up = upsample(ramp, "area-bilinear")[0, 0, 0]
    # torch/image scaleBilinear enlarging n -> 2n: dst[i] = src at i (n-1)/(2n-1), both ends on the corner pixels
    assert torch.allclose(up, torch.arange(8, dtype=torch.float64) * 3 / 7, atol=1e-12)


def test_the_gaussian_operator_is_the_binomial_5x5_pyramid():
    const = torch.full((1, 2, 8, 8), 0.3, dtype=torch.float64)
    assert torch.allclose(downsample(const, "gaussian"), torch.full((1, 2, 4, 4), 0.3, dtype=torch.float64))
    assert torch.allclose(upsample(const, "gaussian"), torch.full((1, 2, 16, 16), 0.3, dtype=torch.float64))
    impulse = torch.zeros(1, 1, 12, 12, dtype=torch.float64)
    impulse[0, 0, 6, 6] = 1.0
    w = torch.tensor([1.0, 4, 6, 4, 1], dtype=torch.float64) / 16
    # d keeps the even rows/columns of the blurred image: at (3, 3) the kernel's centre tap, at (2, 3) the one 2 away
    down = downsample(impulse, "gaussian")
    assert float(down[0, 0, 3, 3]) == pytest.approx(float(w[2] * w[2]))
    assert float(down[0, 0, 2, 3]) == pytest.approx(float(w[0] * w[2]))
    assert float(down.sum()) == pytest.approx(float(w[0::2].sum() ** 2))


def test_levels_halve_exactly_or_are_refused():
    assert level_sizes(28, 3) == (7, 14, 28) and level_sizes(32, 3) == (8, 16, 32) and level_sizes(32, 1) == (32,)
    with pytest.raises(ConfigError, match="algorithm.levels=3"):
        level_sizes(28, 4)                                   # 7 is odd: no fourth level
    with pytest.raises(ConfigError, match="levels must be >= 1"):
        level_sizes(28, 0)


# ------------------------------------------------------------------------------------------------- the networks
def test_the_networks_are_the_papers_cifar_nets():
    G = LaplacianGenerator(latent_dim=100)
    assert G.sizes == (8, 16, 32)
    dense = [m for m in G.coarse if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(100, 1200), (1200, 1200), (1200, 3 * 8 * 8)]
    for refiner in G.refiners:
        convs = [m for m in refiner.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
            (4, 128, 7, 1), (128, 128, 7, 1), (128, 3, 5, 1)]    # the noise is a 4th colour plane
    assert float(dense[0].weight.detach().std()) == pytest.approx(0.05, rel=0.05)      # the code's init
    D = LaplacianDiscriminator()
    dense = [m for m in D.coarse if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dense] == [(192, 600), (600, 600), (600, 1)]
    assert sum(isinstance(m, torch.nn.Dropout) for m in D.coarse) == 2
    convs = [m for m in D.refiners[1].modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert [(getattr(c, "kernel_size", (0,))[0], getattr(c, "stride", (0,))[0]) for c in convs] == [
        (5, 1), (5, 2), (0, 0)]
    assert convs[-1].in_features == 128 * 12 * 12              # 32 -> 28 -> 12
    with torch.no_grad():
        assert D(0, torch.rand(5, 3, 8, 8)).shape == (5,)
        assert D(2, torch.rand(5, 3, 32, 32), torch.rand(5, 3, 32, 32)).shape == (5,)


def test_the_discriminator_sees_the_residual_added_to_its_condition_or_beside_it():
    torch.manual_seed(0)
    D = LaplacianDiscriminator(image_size=28, channels=1, coarse_hidden=8, hidden=4, dropout=0.0).eval()
    h, low = torch.randn(3, 1, 14, 14), torch.randn(3, 1, 14, 14)
    with torch.no_grad():
        assert torch.allclose(D(1, h, low), D(1, h + low, torch.zeros_like(low)), atol=1e-6)   # the paper's h + l_k
    concat = LaplacianDiscriminator(image_size=28, channels=1, hidden=4, condition="concat")
    assert concat.refiners[0].net[0].in_channels == 2


# ------------------------------------------------------------------------------------------------- the losses
def test_each_levels_losses_match_direct_computation():
    algo = _algo({"networks.D.dropout": 0.0})       # no dropout: D's scores are a plain function to recompute
    G, D = algo.nets["G"], algo.nets["D"]
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1
    ctx = RecordingContext(Batch(x, None))
    torch.manual_seed(11)
    logs = algo.train_step(ctx)
    assert [g for g, _ in ctx.updates] == ["D", "G"]

    # the pyramid by hand: 2x2 block means down, corner-aligned bilinear up
    def down(t):
        return t.view(t.shape[0], 1, t.shape[2] // 2, 2, t.shape[3] // 2, 2).mean((3, 5))

    def up(t):
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)

    i1 = down(x)
    i0 = down(i1)
    lows = [None, up(i0), up(i1)]
    reals = [i0, i1 - up(i0), x - up(i1)]
    torch.manual_seed(11)                                   # the step's noise, in its order: D step, then G step

    def noise():
        return (torch.rand(6, 6) * 2 - 1, torch.rand(6, 1 * 14 * 14).view(6, 1, 14, 14) * 2 - 1,
                torch.rand(6, 1 * 28 * 28).view(6, 1, 28, 28) * 2 - 1)

    def fakes(z, z1, z2):
        return [G.coarse(z), G.refiners[0](z1, lows[1]), G.refiners[1](z2, lows[2])]

    with torch.no_grad():
        d_fakes = fakes(*noise())
        g_fakes = fakes(*noise())
        d_direct, g_direct = [], []
        for k in range(3):
            real_s, fake_s = D(k, reals[k], lows[k]), D(k, d_fakes[k], lows[k])
            # the code's BCE over a batch of half real, half fake samples: (softplus(-r) + softplus(f)) / 2
            d_direct.append(0.5 * (F.softplus(-real_s).mean() + F.softplus(fake_s).mean()))
            g_direct.append(F.softplus(-D(k, g_fakes[k], lows[k])).mean())   # fakes labelled real
    for k in range(3):
        assert float(logs[f"d_{k}"]) == pytest.approx(float(d_direct[k]), rel=1e-5)
        assert float(logs[f"g_{k}"]) == pytest.approx(float(g_direct[k]), rel=1e-5)
    assert float(ctx.updates[0][1]) == pytest.approx(float(sum(d_direct)), rel=1e-5)
    assert float(ctx.updates[1][1]) == pytest.approx(float(sum(g_direct)), rel=1e-5)


def test_each_level_trains_only_its_own_networks():
    """The summed loss is K independent losses: level k's loss has no gradient on any other level's weights."""
    algo = _algo()
    G, D = algo.nets["G"], algo.nets["D"]
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    reals = algo.real_levels(x)
    lows = [low for _, low in reals]
    z, planes = algo.noise(4, torch.device("cpu"))
    fakes = algo.fake_levels(G, z, planes, lows)
    parts = [(G.coarse, D.coarse), (G.refiners[0], D.refiners[0]), (G.refiners[1], D.refiners[1])]
    for k in range(3):
        g_loss = algo.generator_losses([D(k, fakes[k], lows[k])])["g_loss"]
        grads = torch.autograd.grad(g_loss, list(G.parameters()) + list(D.parameters()), allow_unused=True)
        named = dict(zip([id(p) for p in list(G.parameters()) + list(D.parameters())], grads))
        for j, (g_part, d_part) in enumerate(parts):
            touched = any(named[id(p)] is not None and bool(named[id(p)].abs().sum() > 0)
                          for p in list(g_part.parameters()) + list(d_part.parameters()))
            assert touched == (j == k), (k, j)


def test_a_penalty_objective_applies_per_level_with_the_condition():
    algo = _algo({"objective.name": "wgan-gp", "networks.D.dropout": 0.0})
    ctx = RecordingContext(Batch(torch.rand(4, 1, 28, 28) * 2 - 1, None))
    logs = algo.train_step(ctx)
    assert {"gp_0", "gp_1", "gp_2"} <= set(logs) and all(float(logs[f"gp_{k}"]) > 0 for k in range(3))
    with pytest.raises(ConfigError, match="does not provide"):
        _algo({"objective.name": "began"})


# ------------------------------------------------------------------------------------------------- sampling
def test_sampling_goes_coarse_to_fine():
    algo = _algo()
    G = algo.nets["G"].eval()
    inputs = algo.sample_inputs(5, torch.Generator().manual_seed(2), torch.device("cpu"))
    assert {k: tuple(v.shape) for k, v in inputs.items()} == {"z": (5, 6), "z_1": (5, 1, 14, 14),
                                                              "z_2": (5, 1, 28, 28)}
    with torch.no_grad():
        levels = G.levels_from(inputs["z"], [inputs["z_1"], inputs["z_2"]])
        assert [tuple(v.shape) for v in levels] == [(5, 1, 7, 7), (5, 1, 14, 14), (5, 1, 28, 28)]
        for k in (1, 2):   # I~_k = u(I~_{k-1}) + G_k(z_k, u(I~_{k-1}))
            low = upsample(levels[k - 1])
            assert torch.allclose(levels[k], low + G.residual(k, inputs[f"z_{k}"], low), atol=1e-6)
        final = algo.generate(inputs)
        assert torch.equal(final, levels[-1].clamp(-1, 1))
        panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["level 0 (7 px)", "level 1 (14 px)", "level 2 (28 px)"]
    assert all(p.shape == (5, 1, 28, 28) for p in panels.values())
    assert torch.equal(panels["level 0 (7 px)"], upsample_to(levels[0].clamp(-1, 1), 28))
    assert torch.equal(panels["level 2 (28 px)"], final)
    with pytest.raises(ConfigError):
        algo.sample_inputs(2, torch.Generator(), torch.device("cpu"), label=3)


def test_bad_settings_are_one_line_refusals():
    with pytest.raises(ConfigError, match="algorithm.levels"):
        _algo({"algorithm.levels": 4})                        # 28 -> 14 -> 7 -> 3.5
    with pytest.raises(ConfigError, match="9 px or more"):
        _algo({"algorithm.levels": 2}, DataInfo(kind="image", sample_shape=(1, 8, 8), num_classes=0))   # 4 -> 8
    with pytest.raises(ConfigError, match="remove networks.G.levels"):
        _algo({"networks.G.levels": 2})
    with pytest.raises(ConfigError, match="algorithm.pyramid"):
        _algo({"algorithm.pyramid": "nearest"})
    with pytest.raises(ConfigError, match="one per refining level"):
        _algo({"networks.G.hidden": [4, 4, 4]})
    with pytest.raises(DataError, match="square images"):
        _algo(info=DataInfo(kind="vector", sample_shape=(2,), num_classes=0))
    assert _algo({"networks.G.hidden": [3, 5], "algorithm.pyramid": "gaussian"}).nets["G"].pyramid == "gaussian"
