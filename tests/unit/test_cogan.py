"""CoGAN: the coupled networks' layers (the paper's digit nets, the CelebA nets at other sizes), weight sharing (a
shared layer is one tensor that both domains' losses train; 0 shared layers share nothing), the step's losses against
direct computation, sampling either domain, and one-line refusals of bad settings."""
from __future__ import annotations


import pytest
import torch

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.cogan import CoGAN
from ganforge.build import build_algorithm
from ganforge.config import Component, load_config
from ganforge.errors import ConfigError, DataError
from ganforge.models.cogan import CoupledDiscriminator, CoupledGenerator, conv_dropouts
from ganforge.objectives import objective_class

from conftest import TwoDomainSGDContext

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


def _info(a=(1, 28, 28), b=(1, 28, 28)) -> DataInfo:
    return DataInfo(kind="image", sample_shape=a, num_classes=0,
                    streams={"b": DataInfo(kind="image", sample_shape=b, num_classes=0)})


def _convs(net: torch.nn.Module) -> list[torch.nn.Module]:
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    return [m for m in net.modules() if isinstance(m, kinds)]


# ------------------------------------------------------------------------------------------------- the networks
def test_the_digit_networks_are_the_papers():
    g = CoupledGenerator(latent_dim=100)
    assert (g.total_layers, g.shared_layers) == (5, 4)            # all but the last layer shared
    trunk = _convs(g.shared)
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in trunk] == [
        (1024, 4, 1, 0), (512, 3, 2, 1), (256, 3, 2, 1), (128, 3, 2, 1)]
    heads = _convs(g.private_a) + _convs(g.private_b)
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in heads] == [(128, 1, 6)] * 2
    with torch.no_grad():
        x_a, x_b = g(torch.rand(3, 100) * 2 - 1)
    assert x_a.shape == x_b.shape == (3, 1, 28, 28) and float(x_a.min()) >= 0 and float(x_a.max()) <= 1  # sigmoid
    d = CoupledDiscriminator()
    assert (d.total_layers, d.shared_layers) == (4, 3)           # all but the first layer shared
    assert [(c.out_channels, c.kernel_size[0]) for c in _convs(d.stem_a)] == [(20, 5)]
    assert [c.out_channels if not isinstance(c, torch.nn.Linear) else c.out_features
            for c in _convs(d.shared)] == [50, 500, 1]
    assert [sum(isinstance(m, torch.nn.MaxPool2d) for m in part.modules()) for part in (d.stem_a, d.stem_b, d.shared)
            ] == [1, 1, 1]                                       # a max-pool after each convolution
    assert d(torch.rand(5, 1, 28, 28), "b").shape == (5, 1)


def test_the_128px_networks_are_the_celeba_nets_and_other_sizes_follow():
    g = CoupledGenerator(latent_dim=100, image_size=128, channels=3, out_activation="tanh", init="dcgan")
    widths = [c.out_channels for c in _convs(g.shared)]
    assert widths == [1024, 512, 256, 128, 64, 32] and g.total_layers == 7
    assert _convs(g.private_b)[0].kernel_size == (3, 3) and _convs(g.private_b)[0].out_channels == 3
    assert conv_dropouts(6) == [0.0, 0.0, 0.1, 0.3, 0.3, 0.5]
    d = CoupledDiscriminator(image_size=128, channels=3, filters=[2, 2, 2, 2, 2, 2, 8])
    convs_a = [c for part in (d.stem_a, d.shared) for c in _convs(part) if isinstance(c, torch.nn.Conv2d)]
    assert d.total_layers == 8 and [(c.kernel_size[0], c.stride[0]) for c in convs_a] == [(5, 2)] * 3 + [(3, 2)] * 3
    drops = [m.p for part in (d.stem_a, d.shared) for m in part.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.0, 0.0, 0.1, 0.3, 0.3, 0.5, 0.5]       # after each conv, then after the hidden FC
    assert CoupledDiscriminator(image_size=128).total_layers == 8
    d32 = CoupledDiscriminator(image_size=32)
    assert [c.out_channels if isinstance(c, torch.nn.Conv2d) else c.out_features
            for part in (d32.stem_a, d32.shared) for c in _convs(part)] == [32, 64, 128, 256, 2048, 1]
    for size in (16, 32, 64):
        small = CoupledGenerator(latent_dim=8, image_size=size, channels=1, channels_b=3, filters=16)
        with torch.no_grad():
            a, b = small(torch.randn(2, 8))
        assert a.shape == (2, 1, size, size) and b.shape == (2, 3, size, size)
        critic = CoupledDiscriminator(image_size=size, channels=1, channels_b=3, filters=[4] * (size.bit_length() - 2)
                                      + [8])
        assert critic(b, "b").shape == (2, 1) and critic(a, "a").shape == (2, 1)


def test_msra_init_is_he_normal_with_zero_biases():
    torch.manual_seed(0)
    g = CoupledGenerator(latent_dim=100, filters=256)
    w = g.shared[1][0].weight.detach()            # ConvTranspose 256 -> 128, k3: fan_in as Caffe counts it 128 * 9
    assert abs(float(w.std()) / (2 / (128 * 9)) ** 0.5 - 1) < 0.05
    assert all(float(c.bias.detach().abs().max()) == 0 for c in _convs(g) if c.bias is not None)
    assert isinstance(g.shared[0][1], torch.nn.BatchNorm2d) and not g.shared[0][1].affine   # BN without scale,
    assert g.shared[0][0].bias is None and g.shared[0][3].weight.shape == (256,)            # Caffe's bias, PReLU


@pytest.mark.parametrize("kwargs, fragment", [
    ({"shared_layers": 5}, "networks.G.shared_layers must be 0 (two independent GANs) to 4 (all but the last"),
    ({"shared_layers": -1}, "got -1"),
    ({"image_size": 30}, "28 px images (the paper's digits) or a power of two >= 8, got data.image_size=30; use "
                         "--set data.image_size=32"),
    ({"filters": 0}, "networks.G.filters must be layer widths >= 1"),
    ({"init": "xavier"}, "init must be msra")])
def test_generator_refusals_are_one_line(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        CoupledGenerator(latent_dim=100, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"shared_layers": 4}, "networks.D.shared_layers must be 0 (two independent GANs) to 3 (all but the first"),
    ({"filters": [20, 50]}, "networks.D.filters must give 3 widths at 28 px (2 convs and the hidden FC layer, "
                            "e.g. [20, 50, 500]), got [20, 50]"),
    ({"image_size": 12}, "use --set data.image_size=16")])
def test_discriminator_refusals_are_one_line(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        CoupledDiscriminator(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="a CoGAN domain is 'a' .* or 'b' .*, got 'c'"):
        CoupledDiscriminator()(torch.zeros(1, 1, 28, 28), "c")


# ------------------------------------------------------------------------------------------------- weight sharing
def _grads(net: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor | None]:
    net.zero_grad(set_to_none=True)
    loss.backward()
    return {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()}


def test_shared_generator_layers_are_one_tensor_trained_by_both_domains():
    torch.manual_seed(0)
    g = CoupledGenerator(latent_dim=8, image_size=16, filters=16, shared_layers=2)
    z = torch.randn(4, 8)
    names = [k for k, _ in g.named_parameters()]
    shared = [k for k in names if k.startswith("shared.")]
    # each shared tensor is stored once (one parameter, one checkpoint entry), each private one per domain
    assert shared and len(names) == len({id(p) for p in g.parameters()}) == len(g.state_dict()) - sum(
        k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in g.state_dict())
    assert sum(k.startswith("private_a.") for k in names) == sum(k.startswith("private_b.") for k in names)
    from_a = _grads(g, g(z)[0].square().mean())
    from_b = _grads(g, g(z)[1].square().mean())
    both = _grads(g, g(z)[0].square().mean() + g(z)[1].square().mean())
    for k in names:
        if k.startswith("shared."):        # gradients from both domains, added in the one tensor
            assert from_a[k] is not None and from_b[k] is not None and float(from_a[k].abs().sum()) > 0
            assert float(from_b[k].abs().sum()) > 0
            torch.testing.assert_close(both[k], from_a[k] + from_b[k])
        elif k.startswith("private_a."):   # a private layer learns from its own domain only
            assert from_b[k] is None and from_a[k] is not None
        else:
            assert from_a[k] is None and from_b[k] is not None
    # the same z makes both domains' images from one shared code
    with torch.no_grad():
        h = g.trunk(z)
        assert torch.equal(g.domain(z, "a"), g._run(g.private_a, h)) and torch.equal(g(z)[1], g.domain(z, "b"))


def test_shared_discriminator_layers_are_one_tensor_trained_by_both_domains():
    torch.manual_seed(0)
    d = CoupledDiscriminator(filters=[4, 6, 8], dropout=False)
    x = torch.rand(4, 1, 28, 28)
    from_a, from_b = _grads(d, d(x, "a").sum()), _grads(d, d(x, "b").sum())
    for k in from_a:
        if k.startswith("shared."):
            assert float(from_a[k].abs().sum()) > 0 and float(from_b[k].abs().sum()) > 0
        elif k.startswith("stem_a."):
            assert from_b[k] is None and from_a[k] is not None
        else:
            assert from_a[k] is None and from_b[k] is not None


def test_no_shared_layers_are_two_independent_networks():
    torch.manual_seed(0)
    g = CoupledGenerator(latent_dim=8, image_size=16, filters=16, shared_layers=0)
    d = CoupledDiscriminator(filters=[4, 6, 8], shared_layers=0, dropout=False)
    assert len(g.shared) == 0 and len(d.shared) == 0
    ids_a = {id(p) for p in g.private_a.parameters()} | {id(p) for p in d.stem_a.parameters()}
    ids_b = {id(p) for p in g.private_b.parameters()} | {id(p) for p in d.stem_b.parameters()}
    assert ids_a and not ids_a & ids_b
    assert sum(p.numel() for p in g.private_a.parameters()) == sum(p.numel() for p in g.private_b.parameters())
    coupled = CoupledGenerator(latent_dim=8, image_size=16, filters=16)
    per_domain = sum(p.numel() for p in g.private_a.parameters())
    assert sum(p.numel() for p in coupled.parameters()) < 1.1 * per_domain < sum(p.numel() for p in g.parameters())
    from_a = _grads(g, g(torch.randn(4, 8))[0].mean())
    assert all(from_a[k] is None for k in from_a if k.startswith("private_b."))
    grads_d = _grads(d, d(torch.rand(2, 1, 28, 28), "a").sum())
    assert all(grads_d[k] is None for k in grads_d if k.startswith("stem_b."))


# ------------------------------------------------------------------------------------------------- the step's losses
def _algorithm(objective: str = "nonsaturating", **params) -> CoGAN:
    torch.manual_seed(0)
    nets = {"G": CoupledGenerator(latent_dim=6, filters=16),
            "D": CoupledDiscriminator(filters=[4, 6, 8], dropout=False)}
    kwargs = {"scaling": "sum"} if objective == "lsgan" else {}
    return CoGAN(nets, objective_class(objective)(**kwargs), _info(), latent_dim=6, **params)


def _batches(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(5, 1, 28, 28, generator=g), torch.rand(5, 1, 28, 28, generator=g)


@pytest.mark.parametrize("objective", ["nonsaturating", "lsgan"])
def test_losses_equal_direct_computation(objective):
    algo = _algorithm(objective)
    a, b = _batches()
    ctx = TwoDomainSGDContext(algo, a, b)
    torch.manual_seed(7)
    logs = algo.train_step(ctx)
    torch.manual_seed(7)                      # replay the step's two noise draws: D step, then G step
    z_d, z_g = algo.noise(5, torch.device("cpu")), algo.noise(5, torch.device("cpu"))
    assert float(z_d.min()) >= -1 and float(z_d.max()) <= 1 and not torch.equal(z_d, z_g)   # U(-1, 1), fresh

    n = ctx.nets["D"]                         # the networks D's loss was computed with (before any update)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        fake_a, fake_b = n["G"](z_d)
        scores = {k: n["D"](x, dom) for k, x, dom in (("ra", a, "a"), ("fa", fake_a, "a"), ("rb", b, "b"),
                                                      ("fb", fake_b, "b"))}
        if objective == "nonsaturating":
            d_dom = lambda r, f: bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f))   # noqa: E731
        else:
            d_dom = lambda r, f: ((r - 1) ** 2).mean() + (f ** 2).mean()                  # noqa: E731
        d_a, d_b = d_dom(scores["ra"], scores["fa"]), d_dom(scores["rb"], scores["fb"])
    torch.testing.assert_close(logs["d_A"], d_a)
    torch.testing.assert_close(logs["d_B"], d_b)
    torch.testing.assert_close(ctx.losses["D"], d_a + d_b)

    m = ctx.nets["G"]                         # after D's update: G is trained against the updated D
    assert not torch.equal(m["D"].shared[0][0].weight, n["D"].shared[0][0].weight)
    with torch.no_grad():
        gen_a, gen_b = m["G"](z_g)
        s_a, s_b = m["D"](gen_a, "a"), m["D"](gen_b, "b")
        if objective == "nonsaturating":
            g_a, g_b = bce(s_a, torch.ones_like(s_a)), bce(s_b, torch.ones_like(s_b))
        else:
            g_a, g_b = ((s_a - 1) ** 2).mean(), ((s_b - 1) ** 2).mean()
    torch.testing.assert_close(logs["g_A"], g_a)
    torch.testing.assert_close(logs["g_B"], g_b)
    torch.testing.assert_close(ctx.losses["G"], g_a + g_b)
    assert all(grad is None for grad in ctx.d_grads_in_g_step)


def test_gradient_penalty_and_clipping_apply_to_each_domains_critic():
    algo = _algorithm("wgan-gp")
    a, b = _batches(2)
    ctx = TwoDomainSGDContext(algo, a, b)
    logs = algo.train_step(ctx)
    assert {"gp_A", "gp_B"} <= set(logs) and float(logs["gp_A"]) > 0 and float(logs["gp_B"]) > 0
    torch.testing.assert_close(ctx.losses["D"], logs["d_A"] + logs["d_B"] + logs["gp_A"] + logs["gp_B"])
    clipped = _algorithm("wgan")
    clipped.train_step(TwoDomainSGDContext(clipped, a, b, lr=1.0))
    assert max(float(p.detach().abs().max()) for p in clipped.nets["D"].parameters()) <= 0.01


# ------------------------------------------------------------------------------------------------- sampling
def test_samples_are_domain_a_unless_b_is_asked_for_and_grids_show_the_pairs():
    algo = _algorithm()
    G = algo.nets["G"].eval()
    gen = torch.Generator().manual_seed(3)
    inputs = algo.sample_inputs(4, gen, torch.device("cpu"))
    with torch.no_grad():
        x_a, x_b = G(inputs["z"])
        assert torch.equal(algo.generate(inputs), x_a)
        as_b = algo.sample_inputs(4, torch.Generator().manual_seed(3), torch.device("cpu"), domain="b")
        assert torch.equal(as_b["z"], inputs["z"]) and torch.equal(algo.generate(as_b), x_b)
        mixed = {"z": inputs["z"], "domain": torch.tensor([0, 1, 1, 0])}
        assert torch.equal(algo.generate(mixed), torch.stack([x_a[0], x_b[1], x_b[2], x_a[3]]))
        panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["domain A", "domain B"]
    assert torch.equal(panels["domain A"], x_a) and torch.equal(panels["domain B"], x_b)
    assert algo.output_shape() == (1, 28, 28)
    with pytest.raises(ConfigError, match="domain must be a .* or b .*, got 'c'"):
        algo.sample_inputs(2, gen, torch.device("cpu"), domain="c")
    with pytest.raises(ConfigError, match="does not take sampling control\\(s\\) label"):
        algo.sample_inputs(2, gen, torch.device("cpu"), label=3)
    with pytest.raises(ConfigError, match="generates from noise; it does not translate images"):
        algo.translate(torch.zeros(1, 1, 28, 28))


# ------------------------------------------------------------------------------------------------- building
def test_recipes_build_and_bad_settings_are_one_line():
    algo = build_algorithm(load_config("cogan-digits"), _info())
    assert (algo.nets["G"].shared_layers, algo.nets["D"].shared_layers) == (4, 3)
    uncoupled = build_algorithm(load_config("cogan-digits", {"networks.G.shared_layers": 0,
                                                             "networks.D.shared_layers": 0}), _info())
    assert len(uncoupled.nets["G"].shared) == 0 and len(uncoupled.nets["D"].shared) == 0
    rgb_depth = build_algorithm(load_config("cogan", {"networks.G.filters": 16, "networks.D.filters": [2] * 5 + [4],
                                                      "data.image_size": 64}),
                                _info((3, 64, 64), (1, 64, 64)))          # colour and depth: other channel counts
    with torch.no_grad():
        a, b = rgb_depth.nets["G"].eval()(torch.zeros(1, 100))
    assert a.shape == (1, 3, 64, 64) and b.shape == (1, 1, 64, 64)
    bad = [({"networks.G.shared_layers": 9}, ConfigError, "networks.G.shared_layers must be 0"),
           ({"networks.D.filters": [1, 2]}, ConfigError, "networks.D.filters must give 3 widths"),
           ({"networks.G.channels_b": 3}, ConfigError, "networks.G has 1 and 3 channels but the data 1 (data.source) "
                                                       "and 1 (data.streams.b); the data set them"),
           ({"algorithm.latent_dim": 0}, ConfigError, "latent_dim must be >= 1"),
           ({"algorithm.latent_dist": "cauchy"}, ConfigError, "algorithm.latent_dist must be one of"),
           ({"networks.G.arch": "dcgan-book"}, ConfigError, "unknown coupled-generator architecture 'dcgan-book'")]
    for override, error, fragment in bad:
        with pytest.raises(error) as info:
            build_algorithm(load_config("cogan-digits", override), _info())
        assert fragment in str(info.value) and "\n" not in str(info.value), (override, str(info.value))
    with pytest.raises(DataError, match="domain A \\(data.source\\) is 28x28 and domain B \\(data.streams.b\\) 32x32"):
        build_algorithm(load_config("cogan-digits"), _info((1, 28, 28), (1, 32, 32)))
    began = load_config("cogan-digits")
    began.objective = Component("began")
    with pytest.raises(ConfigError, match="objective 'began' needs .*two discriminators would both update"):
        build_algorithm(began, _info())
