"""CycleGAN: the ResNet translator's shapes and refusals, the step's losses against direct computation (adversarial,
cycle, identity, D halved), the image pool (fills, swaps with probability 1/2, exact state round trip), translation
directions and bad input."""
from __future__ import annotations


import pytest
import torch

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.cyclegan import CycleGAN
from ganforge.algorithms.image_pool import ImagePool
from ganforge.build import build_algorithm
from ganforge.config import Component, load_config
from ganforge.errors import ConfigError, DataError
from ganforge.models.patchgan import PatchGANDiscriminator
from ganforge.models.resnet_translator import ResidualBlock, ResnetTranslator
from ganforge.objectives import objective_class

from conftest import TwoDomainSGDContext

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


def _info(a=(1, 16, 16), b=(1, 16, 16)) -> DataInfo:
    return DataInfo(kind="image", sample_shape=a, num_classes=0,
                    streams={"b": DataInfo(kind="image", sample_shape=b, num_classes=0)})


# ------------------------------------------------------------------------------------------------- the generator
@pytest.mark.parametrize("size, blocks", [(28, 6), (32, 6), (64, 6), (256, 9)])
def test_translator_keeps_the_size_and_has_the_papers_block_count(size, blocks):
    g = ResnetTranslator(channels=1, image_size=size, sample_shape=(3, size, size), filters=4)
    assert g.n_blocks == blocks and sum(isinstance(m, ResidualBlock) for m in g.modules()) == blocks
    x = torch.rand(2, 1, size, size) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 3, size, size)                 # 1 channel in, 3 out
    assert float(y.abs().max()) <= 1.0                   # tanh
    # c7s1-4, two stride-2 convs (8, 16), blocks at 16 channels, two transposed convs back, c7s1-3
    convs = [m for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(c.in_channels, c.out_channels) for c in convs[:3]] == [(1, 4), (4, 8), (8, 16)]
    assert [(c.in_channels, c.out_channels) for c in convs[-3:]] == [(16, 8), (8, 4), (4, 3)]
    assert convs[0].kernel_size == (7, 7) and convs[1].stride == (2, 2)
    assert isinstance(convs[-2], torch.nn.ConvTranspose2d) and convs[-1].kernel_size == (7, 7)


def test_translator_weights_are_normal_0_02_and_instance_norm_is_the_default():
    torch.manual_seed(0)
    g = ResnetTranslator(channels=3, image_size=64, filters=32, n_blocks=2)
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, convs)])
    w = w.detach()
    assert abs(float(w.mean())) < 2e-3 and 0.019 < float(w.std()) < 0.021
    norms = [m for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    batch = ResnetTranslator(channels=3, image_size=64, filters=8, n_blocks=1, norm="batch")
    first = next(m for m in batch.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.bias is None and any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.modules())


def test_translator_with_a_condition_concatenates_it_as_channels():
    torch.manual_seed(0)
    g = ResnetTranslator(channels=3, image_size=16, cond_dim=5, filters=4, n_blocks=1)
    first = next(m for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 8
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    c0, c1 = torch.zeros(2, 5), torch.eye(5)[:2]
    with torch.no_grad():
        y0, y1 = g(x, c0), g(x, c1)
        # the condition is replicated over the plane: the same as concatenating constant planes by hand
        planes = c1.view(2, 5, 1, 1).expand(-1, -1, 16, 16)
        assert torch.equal(y1, g.model(torch.cat([x, planes], 1)))
    assert y0.shape == (2, 3, 16, 16) and not torch.allclose(y0, y1)
    with pytest.raises(ValueError, match="condition of N x 5, got none"):
        g(x)
    with pytest.raises(ValueError, match="takes no condition"):
        ResnetTranslator(channels=3, image_size=16, filters=4, n_blocks=1)(x, c0)


@pytest.mark.parametrize("size, fragment", [
    (30, "divisible by 4, but data.image_size=30; use --set data.image_size=28"),
    (12, "need data.image_size >= 16, got 12")])
def test_translator_refuses_sizes_it_cannot_keep_in_one_line(size, fragment):
    with pytest.raises(ConfigError) as info:
        ResnetTranslator(channels=1, image_size=size)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------------- building
def test_each_network_gets_its_domains_channels():
    cfg = load_config("cyclegan-digits", {"algorithm.identity_weight": 0.0})
    algo = build_algorithm(cfg, _info((1, 28, 28), (3, 28, 28)))
    g_ab, g_ba, d_a, d_b = (algo.nets[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))
    x_a, x_b = torch.zeros(1, 1, 28, 28), torch.zeros(1, 3, 28, 28)
    with torch.no_grad():
        assert g_ab(x_a).shape == x_b.shape and g_ba(x_b).shape == x_a.shape
        assert d_a(x_a).shape[1] == 1 and d_b(x_b).shape[1] == 1
    assert algo.translation_input_shape() == (1, 28, 28)
    assert algo.translation_input_shape(direction="BtoA") == (3, 28, 28)


def test_identity_loss_across_channel_counts_and_other_sizes_are_refused_in_one_line():
    cfg = load_config("cyclegan-digits", {"algorithm.identity_weight": 0.5})
    with pytest.raises(ConfigError, match=r"identity_weight=0.5: the identity loss feeds domain B images to G_AB.*"
                                          r"set algorithm.identity_weight=0"):
        build_algorithm(cfg, _info((1, 28, 28), (3, 28, 28)))
    with pytest.raises(DataError, match="domain A \\(data.source\\) is 28x28 and domain B \\(data.streams.b\\) 32x32"):
        build_algorithm(cfg, _info((1, 28, 28), (1, 32, 32)))
    began = load_config("cyclegan-digits")
    began.objective = Component("began")
    with pytest.raises(ConfigError, match="objective 'began' needs .*two discriminators would both update"):
        build_algorithm(began, _info((1, 28, 28), (1, 28, 28)))
    for key, value in (("lambda_cycle", -1.0), ("pool_size", -1), ("d_weight", 0.0)):
        with pytest.raises(ConfigError, match=f"algorithm.{key} must be"):
            build_algorithm(load_config("cyclegan-digits", {f"algorithm.{key}": value}),
                            _info((1, 28, 28), (1, 28, 28)))


# ------------------------------------------------------------------------------------------------- the step's losses
def _algorithm(identity_weight: float = 0.5, pool_size: int = 50) -> CycleGAN:
    torch.manual_seed(0)
    nets = {"G_AB": ResnetTranslator(1, 16, filters=4, n_blocks=1),
            "G_BA": ResnetTranslator(1, 16, filters=4, n_blocks=1),
            "D_A": PatchGANDiscriminator(1, 16, filters=4, n_layers=1, norm="instance"),
            "D_B": PatchGANDiscriminator(1, 16, filters=4, n_layers=1, norm="instance")}
    return CycleGAN(nets, objective_class("lsgan")(scaling="sum"), _info(), identity_weight=identity_weight,
                    pool_size=pool_size)


def _l1(x, y):
    return (x - y).abs().mean()


@pytest.mark.parametrize("identity_weight", [0.5, 0.0])
def test_losses_equal_direct_computation(identity_weight):
    algo = _algorithm(identity_weight)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1, torch.rand(3, 1, 16, 16, generator=g) * 2 - 1
    ctx = TwoDomainSGDContext(algo, a, b)
    logs = algo.train_step(ctx)

    n = ctx.nets["G"]            # the networks the G loss was computed with
    with torch.no_grad():
        fake_b, fake_a = n["G_AB"](a), n["G_BA"](b)
        adv = ((n["D_B"](fake_b) - 1) ** 2).mean() + ((n["D_A"](fake_a) - 1) ** 2).mean()
        cycle = 10.0 * (_l1(n["G_BA"](fake_b), a) + _l1(n["G_AB"](fake_a), b))
        identity = identity_weight * 10.0 * (_l1(n["G_AB"](b), b) + _l1(n["G_BA"](a), a))
    torch.testing.assert_close(logs["g_adv"], adv)
    torch.testing.assert_close(logs["cycle"], cycle)
    torch.testing.assert_close(logs["identity"], identity)
    torch.testing.assert_close(ctx.losses["G"], adv + cycle + identity)
    assert all(grad is None for grad in ctx.d_grads_in_g_step)

    m = ctx.nets["D"]            # after G's update; D is trained on the fakes made before it, through the pools
    with torch.no_grad():
        d_b = 0.5 * (((m["D_B"](b) - 1) ** 2).mean() + (m["D_B"](fake_b) ** 2).mean())
        d_a = 0.5 * (((m["D_A"](a) - 1) ** 2).mean() + (m["D_A"](fake_a) ** 2).mean())
    assert not torch.equal(m["G_AB"].model[1].weight, n["G_AB"].model[1].weight)    # G did move first
    torch.testing.assert_close(logs["d_B"], d_b)
    torch.testing.assert_close(logs["d_A"], d_a)
    torch.testing.assert_close(ctx.losses["D"], d_a + d_b)
    # the pools kept this step's fakes (while filling, a pool gives its input back unchanged)
    pool_a, pool_b = algo.pools
    torch.testing.assert_close(pool_b.images, fake_b)
    torch.testing.assert_close(pool_a.images, fake_a)
    assert int(pool_a.count) == int(pool_b.count) == 3


def test_d_trains_on_the_pools_fakes_once_they_are_full():
    algo = _algorithm(pool_size=3)
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1, torch.rand(3, 1, 16, 16, generator=g) * 2 - 1
    algo.train_step(TwoDomainSGDContext(algo, a, b))           # fills both pools
    stored_b = algo.pools[1].images.clone()
    torch.manual_seed(5)
    ctx = TwoDomainSGDContext(algo, a, b)
    logs = algo.train_step(ctx)
    n, m = ctx.nets["G"], ctx.nets["D"]
    torch.manual_seed(5)                                     # the same draws: replay pool B's swaps
    with torch.no_grad():
        fake_b, fake_a = n["G_AB"](a), n["G_BA"](b)
        replay = ImagePool(3, (1, 16, 16))
        replay.images = stored_b.clone()
        pooled_b = replay.query(fake_b)
        d_b = 0.5 * (((m["D_B"](b) - 1) ** 2).mean() + (m["D_B"](pooled_b) ** 2).mean())
    torch.testing.assert_close(logs["d_B"], d_b)
    assert torch.equal(algo.pools[1].images, replay.images)


# ------------------------------------------------------------------------------------------------- the image pool
def _distinct(n: int, start: int = 0) -> torch.Tensor:
    """n 1 x 2 x 2 images, image i filled with the value start + i."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def test_pool_returns_its_inputs_while_filling_and_stops_at_capacity():
    pool = ImagePool(5, (1, 2, 2))
    first = _distinct(3)
    assert torch.equal(pool.query(first), first) and len(pool) == 3 and int(pool.count) == 3
    torch.manual_seed(0)
    second = _distinct(3, start=3)
    out = pool.query(second)
    assert torch.equal(out[:2], second[:2])                  # the last two free places
    assert len(pool) == 5 and int(pool.count) == 5
    for _ in range(10):
        pool.query(_distinct(4, start=100))
    assert pool.images.shape == (5, 1, 2, 2) and int(pool.count) == 5
    off = ImagePool(0, (1, 2, 2))
    assert torch.equal(off.query(first), first) and len(off) == 0


def test_pool_swaps_with_probability_one_half_for_a_uniformly_chosen_stored_image():
    torch.manual_seed(0)
    pool = ImagePool(10, (1, 2, 2))
    pool.query(_distinct(10))
    n = 4000
    fresh = _distinct(n, start=1000)
    out = torch.cat([pool.query(fresh[i:i + 8]) for i in range(0, n, 8)])
    swapped = out[:, 0, 0, 0] != fresh[:, 0, 0, 0]
    assert 0.46 < float(swapped.float().mean()) < 0.54      # binomial(4000, 1/2): sd 0.008
    # a swapped-out image is one that was stored: an initial one (0..9) or an earlier fresh one
    values = out[swapped, 0, 0, 0]
    assert bool(((values < 10) | ((values >= 1000) & (values < 1000 + n))).all())
    assert int((values < 10).sum()) == 10 - int((pool.images[:, 0, 0, 0] < 10).sum())   # each initial one left once
    # and each was given back before the fresh image that replaced it: never a later one
    positions = torch.nonzero(swapped).flatten()
    later = values >= 1000
    assert bool((values[later] - 1000 < positions[later]).all())


def test_pool_state_round_trips_exactly_and_refuses_state_that_does_not_fit():
    torch.manual_seed(3)
    pool = ImagePool(6, (1, 2, 2))
    pool.query(torch.rand(8, 1, 2, 2))
    saved = {k: v.clone() for k, v in pool.state_dict().items()}
    assert saved["images"].shape == (6, 1, 2, 2) and int(saved["count"]) == 6
    other = ImagePool(6, (1, 2, 2))
    assert other.state_mismatch(saved) is None
    other.load_state(saved)
    assert torch.equal(other.images, pool.images) and torch.equal(other.count, pool.count)
    batch = torch.rand(5, 1, 2, 2)
    rng = torch.get_rng_state()
    out_a = pool.query(batch)
    torch.set_rng_state(rng)
    out_b = other.query(batch)
    assert torch.equal(out_a, out_b) and torch.equal(pool.images, other.images)
    # a part-filled pool's state has its own size
    partial = ImagePool(6, (1, 2, 2))
    partial.query(torch.rand(2, 1, 2, 2))
    fresh = ImagePool(6, (1, 2, 2))
    fresh.load_state(partial.state_dict())
    assert fresh.images.shape == (2, 1, 2, 2) and torch.equal(fresh.images, partial.images)
    bad = [({"images": saved["images"]}, "p.count is not in the checkpoint"),
           ({**saved, "x": saved["count"]}, "p.x has no place in an image pool"),
           ({**saved, "images": torch.zeros(6, 3, 2, 2)}, "images of shape [3, 2, 2] in the checkpoint but [1, 2, 2]"),
           ({"images": torch.zeros(7, 1, 2, 2), "count": torch.tensor(7)}, "holds 7 images in the checkpoint but the "
                                                                          "pool here holds 6"),
           ({**saved, "count": torch.tensor(5)}, "p.count says 5 but p.images holds 6 images")]
    for given, fragment in bad:
        assert fragment in other.state_mismatch(given, "p."), fragment


def test_the_algorithms_state_is_its_two_pools():
    algo = _algorithm(pool_size=4)
    assert set(algo.state_tensors()) == {"pool_A.images", "pool_A.count", "pool_B.images", "pool_B.count"}
    assert algo.state_tensors()["pool_A.images"].shape == (0, 1, 16, 16)
    filled = _algorithm(pool_size=4)
    filled.pools[0].query(torch.rand(3, 1, 16, 16))
    state = {k: v.clone() for k, v in filled.state_tensors().items()}
    assert algo.state_mismatch(state) is None
    algo.load_state_tensors(state)
    assert torch.equal(algo.pools[0].images, state["pool_A.images"]) and len(algo.pools[1]) == 0
    assert "algorithm.pool_C.images has no place in algorithm 'cyclegan'" in algo.state_mismatch(
        {**state, "pool_C.images": state["pool_A.images"]})
    assert "algorithm.pool_B.count is not in the checkpoint" in algo.state_mismatch(
        {k: v for k, v in state.items() if k != "pool_B.count"})


# ------------------------------------------------------------------------------------------------- using the model
def test_translate_directions_and_panels():
    algo = _algorithm()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(algo.translate(x), algo.nets["G_AB"](x))
        assert torch.equal(algo.translate(x, direction="BtoA"), algo.nets["G_BA"](x))
        target = torch.rand(2, 1, 16, 16)
        inputs = algo.sample_inputs(2, torch.Generator(), torch.device("cpu"),
                                    batch=Batch(x, None, fields={"target": target}))
        panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["input", "output", "reconstruction", "target"]
    assert torch.equal(panels["reconstruction"], algo.nets["G_BA"](algo.nets["G_AB"](x)).detach())
    assert algo.translate_controls == ("direction",)
    with pytest.raises(ConfigError, match="direction must be AtoB .* or BtoA .*, got 'AtoC'"):
        algo.translate(x, direction="AtoC")
    with pytest.raises(ConfigError, match="does not take sampling control\\(s\\) to"):
        algo.translate(x, to="B")
    with pytest.raises(ConfigError, match="samples come from data"):
        algo.sample_inputs(2, torch.Generator(), torch.device("cpu"))
