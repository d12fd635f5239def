"""The shared-latent translators (UNIT, ComboGAN, XGAN; spec 28): the per-domain networks and what they share, every
loss term of the one step against direct computation, each switch off removing its term, the random pair of domains,
the per-domain pools, translation routes and the one-line refusals."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.shared_latent import XGAN, ComboGAN, UNIT
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError, DataError
from ganforge.models.shared_latent import (DomainPatchGANs, LatentDomainClassifier, SharedLatentDecoders,
                                           SharedLatentEncoders)
from ganforge.objectives import objective_class

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

SIZE, LATENT = 16, 8


def _info(*shapes, held_out: bool = True) -> DataInfo:
    """Domain 0 the main data, domain k the stream named chr(ord('a') + k) ("b", "c", ...); plus a held-out stream."""
    streams = {chr(ord("a") + k): DataInfo("image", shape, 0) for k, shape in enumerate(shapes[1:], 1)}
    if held_out:
        streams["held_out"] = DataInfo("image", shapes[0], 0)
    return DataInfo(kind="image", sample_shape=shapes[0], num_classes=0, streams=streams)


def _nets(channels=(1, 1), blocks=1, share=1) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {"E": SharedLatentEncoders(channels, SIZE, LATENT, n_downsample=2, n_blocks=blocks, share_last=share),
            "Dec": SharedLatentDecoders(channels, SIZE, LATENT, n_downsample=2, n_blocks=blocks, share_first=share),
            "D": DomainPatchGANs(channels, SIZE, filters=4, n_layers=1),
            "D_lat": LatentDomainClassifier(channels, LATENT, filters=4, n_layers=1)}


# every term on, each with its own weight, so that the total checks the weights too
ALL_ON = dict(gan_weight=2.0, d_weight=0.7, recon_weight=3.0, kl_weight=0.3, pixel_cycle_weight=5.0,
              kl_cycle_weight=0.2, latent_cycle_weight=1.5, latent_adversary_weight=0.4, latent_noise=1.0,
              pool_size=0)
TERMS = {"recon_weight": "recon", "kl_weight": "kl", "pixel_cycle_weight": "cycle", "kl_cycle_weight": "kl_cycle",
         "latent_cycle_weight": "latent_cycle", "latent_adversary_weight": "lat_adv"}


def _algorithm(cls=UNIT, channels=(1, 1), **settings):
    shapes = [(c, SIZE, SIZE) for c in channels]
    return cls(_nets(channels), objective_class("lsgan")(scaling="sum"), _info(*shapes), latent_dim=LATENT,
               **settings)


def _images(n: int, channels: int, seed: int) -> torch.Tensor:
    return torch.rand(n, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class RecordingContext:
    """A StepContext over fixed batches per stream that applies plain SGD updates and records each loss, the streams
    drawn, a copy of the networks as they were when each loss was computed, and whether D got gradients in G's step."""

    def __init__(self, algo, batches: dict[str, torch.Tensor], lr: float = 0.05):
        self.algo, self.lr, self.step = algo, lr, 0
        self.batches = {k: Batch(v, None) for k, v in batches.items()}
        self.losses, self.nets, self.drawn, self.d_grads_in_g_step = {}, {}, [], None

    def real_batch(self, stream: str = "main") -> Batch:
        self.drawn.append(stream)
        return self.batches[stream]

    def autocast(self):
        import contextlib
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.nets[group] = copy.deepcopy(dict(self.algo.nets))
        for p in self.algo.parameters():
            p.grad = None
        loss.backward()
        if group == "G":
            self.d_grads_in_g_step = [p.grad for k in ("D", "D_lat") for p in self.algo.nets[k].parameters()]
        self.losses[group] = loss.detach().clone()
        params = [p for k in self.algo.optimizer_groups[group] for p in self.algo.nets[k].parameters()]
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p -= self.lr * p.grad


def _l1(x, y):
    return (x - y).abs().mean()


# ------------------------------------------------------------------------------------------------- the networks
def test_networks_route_each_domain_through_its_branch_with_its_channels():
    nets = _nets(channels=(1, 3))
    E, Dec, D, D_lat = (nets[k] for k in ("E", "Dec", "D", "D_lat"))
    x1, x3 = _images(2, 1, 0), _images(2, 3, 1)
    with torch.no_grad():
        z1, z3 = E(x1, 0), E(x3, 1)
        assert z1.shape == z3.shape == (2, LATENT, SIZE // 4, SIZE // 4) == (2, *E.latent_shape(SIZE))
        assert Dec(z1, 0).shape == (2, 1, SIZE, SIZE) and Dec(z1, 1).shape == (2, 3, SIZE, SIZE)
        assert float(Dec(z1, 1).abs().max()) <= 1.0                       # tanh
        assert D(x1, 0).shape[:2] == (2, 1) and D(x3, 1).shape[:2] == (2, 1)
        assert D_lat(z1).shape == (2, 2)
    # widths double from latent_dim / 4 up to latent_dim; the first conv takes the domain's channels
    convs = [m for m in E.private[1].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs[:3]] == [(3, 2), (2, 4), (4, 8)]
    assert E.domains == Dec.domains == D.domains == D_lat.domains == 2
    with pytest.raises(ValueError, match="domain 2 is out of range: these networks have domains 0..1"):
        E(x1, 2)


def test_sharing_really_shares_parameters():
    torch.manual_seed(0)
    E = SharedLatentEncoders((1, 1), SIZE, LATENT, n_downsample=2, n_blocks=1, share_last=2)
    Dec = SharedLatentDecoders((1, 1), SIZE, LATENT, n_downsample=2, n_blocks=1, share_first=2)
    x = _images(2, 1, 0)
    for domain in (0, 1):       # a loss on one domain reaches the shared blocks and that domain's branch only
        E.zero_grad(set_to_none=True)
        Dec.zero_grad(set_to_none=True)
        Dec(E(x, domain), domain).square().mean().backward()
        for net in (E, Dec):
            assert all(p.grad is not None for p in net.shared.parameters())
            assert all(p.grad is not None for p in net.private[domain].parameters())
            assert all(p.grad is None for p in net.private[1 - domain].parameters())
    # one tensor, used by both domains: changing it changes both domains' codes, a private one only its own
    with torch.no_grad():
        before = [E(x, d) for d in (0, 1)]
        E.shared[0].block[1].weight.add_(0.1)
        after = [E(x, d) for d in (0, 1)]
        assert not torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])
        E.private[0][1].weight.add_(0.1)
        assert not torch.equal(E(x, 0), after[0]) and torch.equal(E(x, 1), after[1])
    # sharing k blocks saves (N - 1) k blocks' parameters against the same depth unshared
    count = lambda m: sum(p.numel() for p in m.parameters())                    # noqa: E731
    unshared = SharedLatentEncoders((1, 1), SIZE, LATENT, n_downsample=2, n_blocks=3, share_last=0)
    block = count(E.shared[0])
    assert count(unshared) - count(E) == 2 * block and len(unshared.shared) == 0
    three = SharedLatentEncoders((1, 1, 1), SIZE, LATENT, n_downsample=2, n_blocks=1, share_last=2)
    assert count(three) - count(E) == count(E.private[0])                       # a domain more: one branch more


# ------------------------------------------------------------------------------------------------- the step's losses
@pytest.mark.parametrize("noise", [1.0, 0.0])
def test_every_loss_term_equals_direct_computation(noise):
    algo = _algorithm(**{**ALL_ON, "latent_noise": noise})
    a, b = _images(3, 1, 1), _images(3, 1, 2)
    ctx = RecordingContext(algo, {"main": a, "b": b})
    torch.manual_seed(7)
    logs = algo.train_step(ctx)
    assert ctx.drawn == ["main", "b"]

    n = ctx.nets["G"]                  # the networks the G loss was computed with
    E, Dec, D, D_lat = (n[k] for k in ("E", "Dec", "D", "D_lat"))
    torch.manual_seed(7)               # replay the step's noise draws, in its order
    noisy = lambda z: z + noise * torch.randn_like(z) if noise else z           # noqa: E731
    with torch.no_grad():
        z_a, z_b = E(a, 0), E(b, 1)
        h_a, h_b = noisy(z_a), noisy(z_b)
        fake_b, fake_a = Dec(h_a, 1), Dec(h_b, 0)
        adv = ((D(fake_b, 1) - 1) ** 2).mean() + ((D(fake_a, 0) - 1) ** 2).mean()
        recon = _l1(Dec(h_a, 0), a) + _l1(Dec(h_b, 1), b)
        kl = (z_a ** 2).mean() + (z_b ** 2).mean()
        back_a, back_b = E(fake_b, 1), E(fake_a, 0)
        cycle = _l1(Dec(noisy(back_a), 0), a) + _l1(Dec(noisy(back_b), 1), b)
        kl_cycle = (back_a ** 2).mean() + (back_b ** 2).mean()
        latent_cycle = _l1(back_a, z_a) + _l1(back_b, z_b)
        ones, zeros = torch.ones(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
        lat_adv = F.cross_entropy(D_lat(z_a), ones) + F.cross_entropy(D_lat(z_b), zeros)   # the flipped labels
    expected = {"g_adv": adv, "recon": recon, "kl": kl, "cycle": cycle, "kl_cycle": kl_cycle,
                "latent_cycle": latent_cycle, "lat_adv": lat_adv}
    for key, value in expected.items():
        torch.testing.assert_close(logs[key], value, msg=key)
    total = (2.0 * adv + 3.0 * recon + 0.3 * kl + 5.0 * cycle + 0.2 * kl_cycle + 1.5 * latent_cycle
             + 0.4 * lat_adv)
    torch.testing.assert_close(ctx.losses["G"], total)
    assert all(grad is None for grad in ctx.d_grads_in_g_step)     # D and D_lat frozen in G's step

    m = ctx.nets["D"]                  # after G's update; D trained on the G step's fakes and codes
    assert not torch.equal(m["Dec"].private[1][-2].weight, Dec.private[1][-2].weight)      # G did move first
    with torch.no_grad():
        d_img = 0.7 * ((((m["D"](a, 0) - 1) ** 2).mean() + (m["D"](fake_a, 0) ** 2).mean())
                       + (((m["D"](b, 1) - 1) ** 2).mean() + (m["D"](fake_b, 1) ** 2).mean()))
        logits_a, logits_b = m["D_lat"](z_a), m["D_lat"](z_b)
        d_lat = F.cross_entropy(logits_a, zeros) + F.cross_entropy(logits_b, ones)
        acc = torch.cat([logits_a.argmax(1) == 0, logits_b.argmax(1) == 1]).float().mean()
    torch.testing.assert_close(logs["d_img"], d_img)
    torch.testing.assert_close(logs["d_lat"], d_lat)
    torch.testing.assert_close(logs["lat_acc"], acc)
    torch.testing.assert_close(ctx.losses["D"], d_img + d_lat)


@pytest.mark.parametrize("weight", list(TERMS))
def test_each_switch_off_removes_its_term(weight):
    algo = _algorithm(**{**ALL_ON, weight: 0.0})
    ctx = RecordingContext(algo, {"main": _images(2, 1, 1), "b": _images(2, 1, 2)})
    logs = algo.train_step(ctx)
    assert TERMS[weight] not in logs
    on = {k: v for k, v in TERMS.items() if k != weight}
    total = ALL_ON["gan_weight"] * logs["g_adv"] + sum(ALL_ON[k] * logs[term] for k, term in on.items())
    torch.testing.assert_close(ctx.losses["G"], total)


def test_without_cycles_the_translations_are_not_encoded_again():
    calls = []
    for settings in (ALL_ON, {**ALL_ON, "pixel_cycle_weight": 0.0, "kl_cycle_weight": 0.0,
                              "latent_cycle_weight": 0.0}):
        algo = _algorithm(**settings)
        handle = algo.nets["E"].register_forward_hook(lambda *_: calls.append(1))
        ctx = RecordingContext(algo, {"main": _images(2, 1, 1), "b": _images(2, 1, 2)})
        algo.train_step(ctx)
        handle.remove()
        calls.append("|")
    assert calls == [1, 1, 1, 1, "|", 1, 1, "|"]       # a, b, then the two translations only when a cycle needs them


def test_latent_adversary_flip_and_reverse_against_direct_computation():
    three = _algorithm(channels=(1, 1, 1), latent_adversary="flip")
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    logp = F.log_softmax(logits, 1)
    # flip: cross-entropy against each other domain, weight 1 / (N - 1): the expectation of Fader's random flip
    torch.testing.assert_close(three.fool_loss(logits, 0), -(logp[:, 1] + logp[:, 2]).mean() / 2)
    torch.testing.assert_close(three.fool_loss(logits, 2), -(logp[:, 0] + logp[:, 1]).mean() / 2)
    three.latent_adversary = "reverse"                  # DANN / XGAN: maximise D_lat's own loss
    torch.testing.assert_close(three.fool_loss(logits, 1), -F.cross_entropy(logits, torch.tensor([1, 1])))
    # the encoders' gradient of the reversed term is exactly the opposite of D_lat's
    z = torch.randn(2, LATENT, 4, 4, requires_grad=True)
    D_lat = three.nets["D_lat"]
    g_fool = torch.autograd.grad(three.fool_loss(D_lat(z), 1), z)[0]
    g_ce = torch.autograd.grad(three.domain_ce(D_lat(z), 1), z)[0]
    torch.testing.assert_close(g_fool, -g_ce)


def test_distances_and_kl_against_direct_computation():
    algo = _algorithm(**ALL_ON)
    x, y = _images(2, 1, 3), _images(2, 1, 4)
    torch.testing.assert_close(algo.pixel_loss(x, y), (x - y).abs().mean())
    algo.pixel_distance = "smooth_l1"                   # ComboGAN's official cycle criterion
    d = (x - y).abs()
    torch.testing.assert_close(algo.pixel_loss(x, y), torch.where(d < 1, 0.5 * d ** 2, d - 0.5).mean())
    z, t = torch.randn(2, LATENT, 4, 4), torch.randn(2, LATENT, 4, 4)
    algo.latent_distance = "mse"
    torch.testing.assert_close(algo.latent_loss(z, t), ((z - t) ** 2).mean())
    algo.latent_distance = "cosine"
    cos = (z.flatten(1) * t.flatten(1)).sum(1) / (z.flatten(1).norm(dim=1) * t.flatten(1).norm(dim=1))
    torch.testing.assert_close(algo.latent_loss(z, t), (1 - cos).mean())
    torch.testing.assert_close(algo.kl_loss(z), (z ** 2).mean())


def test_pools_hold_each_domains_past_fakes_and_round_trip():
    algo = _algorithm(**{**ALL_ON, "pool_size": 4})
    assert set(algo.state_tensors()) == {"pool_0.images", "pool_0.count", "pool_1.images", "pool_1.count"}
    a, b = _images(3, 1, 1), _images(3, 1, 2)
    ctx = RecordingContext(algo, {"main": a, "b": b})
    torch.manual_seed(1)
    algo.train_step(ctx)
    n = ctx.nets["G"]
    torch.manual_seed(1)
    with torch.no_grad():      # while filling, a pool keeps and gives back the step's fakes: b in domain 0, a in 1
        z_a, z_b = n["E"](a, 0), n["E"](b, 1)
        h_a, h_b = z_a + torch.randn_like(z_a), z_b + torch.randn_like(z_b)
        torch.testing.assert_close(algo.pool(0).images, n["Dec"](h_b, 0))
        torch.testing.assert_close(algo.pool(1).images, n["Dec"](h_a, 1))
    state = {k: v.clone() for k, v in algo.state_tensors().items()}
    fresh = _algorithm(**{**ALL_ON, "pool_size": 4})
    assert fresh.state_mismatch(state) is None
    fresh.load_state_tensors(state)
    assert torch.equal(fresh.pool(1).images, state["pool_1.images"])
    assert "algorithm.pool_2.images has no place in algorithm 'unit'" in fresh.state_mismatch(
        {**state, "pool_2.images": state["pool_0.images"]})


def test_two_domains_always_pair_and_n_domains_draw_a_random_pair_per_step_and_only_its_streams():
    two = _algorithm()
    assert all(two.pair(step) == (0, 1) for step in range(5)) and "pairs" not in two.state_modules
    three = _algorithm(channels=(1, 1, 1), **{**ALL_ON, "pool_size": 2})
    rng = torch.get_rng_state()
    pairs = [three.pair(step) for step in range(300)]
    assert torch.equal(rng, torch.get_rng_state())      # the pairs come from their own seeded generator
    assert all(i != j for i, j in pairs) and {frozenset(p) for p in pairs} == {frozenset(p) for p in
                                                                              [(0, 1), (0, 2), (1, 2)]}
    assert pairs == [three.pair(step) for step in range(300)]                  # a function of the step: resumable
    other = _algorithm(channels=(1, 1, 1))                                     # the same build seed: the same pairs
    assert int(other.state_modules["pairs"].seed) == int(three.state_modules["pairs"].seed)
    assert set(three.state_tensors()) >= {"pairs.seed", "pool_2.images"}
    batches = {"main": _images(2, 1, 1), "b": _images(2, 1, 2), "c": _images(2, 1, 3)}
    ctx = RecordingContext(three, batches)
    ctx.step = 11
    expected = three.pair(11)
    logs = three.train_step(ctx)
    assert ctx.drawn == [["main", "b", "c"][k] for k in expected]
    untouched = 3 - sum(expected)                       # the domain outside the pair: its branches got no gradient
    assert all(p.grad is None for p in three.nets["E"].private[untouched].parameters())
    assert all(p.grad is None for p in three.nets["D"].judges[untouched].parameters())
    assert len(three.pool(untouched)) == 0 and len(three.pool(expected[0])) == 2
    assert torch.isfinite(logs["g_loss"])


# ------------------------------------------------------------------------------------------------- translating
def test_translation_routes_channels_and_panels():
    algo = _algorithm(channels=(1, 3))
    E, Dec = algo.nets["E"], algo.nets["Dec"]
    x1, x3 = _images(2, 1, 0), _images(2, 3, 1)
    with torch.no_grad():
        assert torch.equal(algo.translate(x1), Dec(E(x1, 0), 1))
        assert torch.equal(algo.translate(x3, direction="BtoA"), Dec(E(x3, 1), 0))
        assert torch.equal(algo.translate(x3, to="a", from_domain="b"), Dec(E(x3, 1), 0))
        assert torch.equal(algo.translate(x1, to=0), Dec(E(x1, 0), 0))          # the auto-encoder itself
        target = _images(2, 3, 2)
        inputs = algo.sample_inputs(2, torch.Generator(), torch.device("cpu"),
                                    batch=Batch(x1, None, fields={"target": target}))
        panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["input", "output", "reconstruction", "target"]
    torch.testing.assert_close(panels["reconstruction"], Dec(E(panels["output"], 1), 0))
    assert algo.translation_input_shape() == (1, SIZE, SIZE) == algo.translation_input_shape(from_domain="a")
    assert algo.translation_input_shape(direction="BtoA") == (3, SIZE, SIZE) == algo.output_shape()
    three = _algorithm(ComboGAN, channels=(1, 1, 1), domains=["plain", "negative", "edges"])
    with torch.no_grad():
        inputs = three.sample_inputs(2, torch.Generator(), torch.device("cpu"), batch=Batch(x1, None))
        assert list(three.grid_panels(inputs, three.nets)) == ["input", "to negative", "to edges"]
        torch.testing.assert_close(three.generate(three.sample_inputs(
            2, torch.Generator(), torch.device("cpu"), batch=Batch(x1, None), to="edges", from_domain="negative"),
            three.nets), three.translate(x1, to=2, from_domain=1))
    bad = [(dict(direction="AtoC"), "direction must be AtoB \\(domain a -> b\\) or BtoA"),
           (dict(direction="AtoB", to="b"), "give either direction=AtoB\\|BtoA or to=DOMAIN"),
           (dict(to="c"), "unknown domain 'c' for to; the model has domains a, b \\(or their indices 0..1\\)"),
           (dict(from_domain=5), "unknown domain 5 for from_domain"),
           (dict(attrs=["x"]), "does not take sampling control\\(s\\) attrs")]
    for controls, message in bad:
        with pytest.raises(ConfigError, match=message):
            algo.translate(x1, **controls)
    with pytest.raises(ConfigError, match="samples come from data"):
        algo.sample_inputs(2, torch.Generator(), torch.device("cpu"))


def test_evaluation_of_three_domains_goes_to_the_domain_of_the_held_out_sets_counterparts():
    """ComboGAN's default route is domain 0 -> 1 (plain -> negative); its held-out set's true counterparts are edges
    (``domain=edges&paired=1``): evaluation goes to edges and pairs with them, never a negative with an edge."""
    from ganforge.metrics.translation import default_controls, truth_in_to_domain
    three = _algorithm(ComboGAN, channels=(1, 1, 1), domains=["plain", "negative", "edges"])
    two = _algorithm(UNIT, channels=(1, 1))
    spec = "mnist5k?split=test&domain=edges&paired=1"
    fields = {"target": _images(2, 1, 3)}
    controls = default_controls(three, {}, spec)
    assert controls == {"to": "edges"}
    assert truth_in_to_domain(three, spec, fields, controls) is fields["target"]
    assert truth_in_to_domain(three, spec, fields, {"to": 2}) is fields["target"]
    # another route, another source domain or a set that does not say its domain: nothing to pair with
    assert truth_in_to_domain(three, spec, fields, {"to": "negative"}) is None
    assert truth_in_to_domain(three, spec, fields, {"to": "edges", "from_domain": "negative"}) is None
    assert truth_in_to_domain(three, "mnist5k?split=test&paired=1", fields, {"to": "edges"}) is None
    assert default_controls(three, {"to": "negative"}, spec) == {"to": "negative"}
    assert default_controls(three, {}, "mnist5k?split=test") == {"direction": "AtoB"}
    assert default_controls(two, {}, spec) == {"direction": "AtoB"}      # two domains: their AtoB pairs already


# ------------------------------------------------------------------------------------------------- building, refusals
def _digits(*domains: int, size: int = 28) -> DataInfo:
    return _info(*[(c, size, size) for c in domains])


@pytest.mark.parametrize("overrides, error, fragment", [
    ({"algorithm.recon_weight": -1.0}, ConfigError, "algorithm.recon_weight must be >= 0 (the paper's: gan_weight 10"),
    ({"algorithm.d_weight": 0.0}, ConfigError, "algorithm.d_weight must be > 0"),
    ({"algorithm.pool_size": -2}, ConfigError, "algorithm.pool_size must be >= 0"),
    ({"algorithm.latent_adversary": "both"}, ConfigError, "algorithm.latent_adversary must be 'flip' | 'reverse'"),
    ({"algorithm.pixel_distance": "l3"}, ConfigError, "algorithm.pixel_distance must be 'l1' | 'smooth_l1'"),
    ({"algorithm.domains": ["plain", "edges", "thick"]}, ConfigError,
     "algorithm.domains names 3 domain(s) (plain, edges, thick) but algorithm 'unit' has 2 distinct ones"),
    ({"algorithm.domains": ["x", "x"]}, ConfigError, "give one distinct name each"),
    ({"algorithm.latent_dim": 30}, ConfigError, "must be a multiple of 4, got 30 (e.g. --set algorithm.latent_dim=28)"),
    ({"networks.Dec.n_downsample": 1}, ConfigError, "networks.E and networks.Dec disagree on n_downsample (2 and 1)"),
    ({"networks.D.domain_channels": [1, 1, 1]}, ConfigError,
     "networks.D is built for domains with channels [1, 1, 1] but the data's 2 domains have [1, 1]"),
    ({"objective.name": "wgan-gp"}, ConfigError, "needs a gradient penalty on D's inputs in the D loss"),
])
def test_bad_settings_are_refused_in_one_line(overrides, error, fragment):
    with pytest.raises(error) as info:
        build_algorithm(load_config("unit-digits", overrides), _digits(1, 1))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_bad_data_is_refused_in_one_line():
    cfg = load_config("unit-digits")
    for info, fragment in [
            (DataInfo("image", (1, 28, 28), 0), "translates between two or more domains, one data stream each, "
                                                "but the config has data.source only; add domain B with --set "
                                                "data.streams.b.source=SOURCE"),
            (_info((1, 28, 28), (1, 32, 32)), "data.source is 28x28 and data.streams.b 32x32; set data.image_size")]:
        with pytest.raises(DataError) as caught:
            build_algorithm(cfg, info)
        assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_the_registered_names_differ_only_in_their_paper_defaults():
    for cls in (UNIT, ComboGAN, XGAN):
        assert cls.train_step is UNIT.train_step and cls.generator_losses is UNIT.generator_losses
    unit, combo, xgan = (cls(_nets(), objective_class("lsgan")(), _info((1, SIZE, SIZE), (1, SIZE, SIZE)),
                             latent_dim=LATENT) for cls in (UNIT, ComboGAN, XGAN))
    assert (unit.gan_weight, unit.recon_weight, unit.kl_weight, unit.pixel_cycle_weight, unit.latent_noise) == (
        10.0, 100.0, 0.1, 100.0, 1.0)
    assert (combo.pixel_cycle_weight, combo.recon_weight, combo.pool_size, combo.pixel_distance, combo.d_weight) == (
        10.0, 0.0, 50, "smooth_l1", 0.5)
    assert (xgan.latent_cycle_weight, xgan.latent_adversary_weight, xgan.latent_adversary, xgan.pixel_cycle_weight) == (
        1.0, 1.0, "reverse", 0.0)
    assert UNIT(_nets(), objective_class("lsgan")(), _info((1, SIZE, SIZE), (1, SIZE, SIZE)), latent_dim=LATENT,
                gan_weight=1.0).gan_weight == 1.0


def test_paper_recipes_hold_the_papers_settings_and_build():
    unit = load_config("unit")
    p = unit.algorithm.params
    assert (p["gan_weight"], p["recon_weight"], p["kl_weight"], p["pixel_cycle_weight"], p["kl_cycle_weight"]) == (
        10.0, 100.0, 0.1, 100.0, 0.1)
    assert unit.optim["G"].lr == 1e-4 and unit.optim["G"].weight_decay == 1e-4 and unit.train.batch_size == 1
    assert unit.objective.name == "nonsaturating"
    algo = build_algorithm(unit, _digits(3, 3, size=256))
    assert algo.nets["E"].share_last == 1 and algo.nets["Dec"].share_first == 1 and algo.nets["E"].latent_dim == 256
    combo = load_config("combogan")
    assert combo.objective.name == "lsgan" and combo.algorithm.params["pool_size"] == 50
    assert combo.optim["G"].lr == 2e-4 and combo.optim["D"].decay_steps * 2 == combo.train.steps
    algo = build_algorithm(combo, _digits(3, 3, 3, 3, size=256))
    assert algo.n_domains == 4 and algo.nets["E"].share_last == 0 and algo.nets["D"].patch_size == 142
    xgan = load_config("xgan")
    assert xgan.algorithm.params["latent_adversary"] == "reverse"
    algo = build_algorithm(xgan, _digits(3, 3, size=64))
    assert algo.latent_cycle_weight == 1.0 and algo.latent_adversary_weight == 1.0
