"""StarGAN: the two-headed discriminator's shapes and refusals, the step's losses against direct computation
(single-label cross-entropy and multi-hot binary cross-entropy), conditions for translate and grids, and the mixed
digit domains of mnist5k?domains=."""
from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.stargan import StarGAN
from ganforge.data import load_source
from ganforge.data.mnist5k import derive, load_mnist5k
from ganforge.errors import ConfigError, DataError
from ganforge.models.resnet_translator import ResnetTranslator
from ganforge.models.stargan import StarGANDiscriminator, StarGANGenerator
from ganforge.objectives import objective_class

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size, layers, final", [(28, 2, 7), (128, 6, 2), (16, 3, 2)])
def test_discriminator_heads(size, layers, final):
    d = StarGANDiscriminator(channels=3, image_size=size, cond_dim=5, filters=4, n_layers=layers)
    out = d(torch.randn(2, 3, size, size))
    assert out.source.shape == (2, 1, final, final) and out.classes.shape == (2, 5)
    assert d.class_head.kernel_size == (final, final) and d.class_head.bias is None
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for m in d.modules())
    assert all(m.negative_slope == 0.01 for m in d.modules() if isinstance(m, torch.nn.LeakyReLU))


def test_discriminator_refuses_a_size_it_cannot_halve_in_one_line():
    with pytest.raises(ConfigError, match="multiple of 8.*n_layers=2"):
        StarGANDiscriminator(channels=1, image_size=28, cond_dim=3, n_layers=3)


def _info(key: str = "domain", n: int = 3) -> DataInfo:
    shapes = {"domain": (), "attributes": (n,)}
    return DataInfo(kind="image", sample_shape=(1, 16, 16), num_classes=10, keys=("image", "label", key),
                    field_shapes={key: shapes[key]})


def _algorithm(key: str = "domain", n_critic: int = 1) -> StarGAN:
    torch.manual_seed(0)
    nets = {"G": StarGANGenerator(1, 16, cond_dim=3, filters=4, n_blocks=1),
            "D": StarGANDiscriminator(1, 16, cond_dim=3, filters=4, n_layers=2)}
    names = {"domains": ["a", "b", "c"]} if key == "domain" else {"attributes": ["x", "y", "z"]}
    return StarGAN(nets, objective_class("wgan")(clip_value=None), _info(key), n_critic=n_critic, **names)


class RecordingContext:
    """Fixed batch, plain SGD updates; records each loss and the networks as they were when it was computed."""

    def __init__(self, algo: StarGAN, batch: Batch, lr: float = 0.05):
        self.algo, self.batch, self.step, self.lr, self.losses, self.nets = algo, batch, 0, lr, [], []

    def real_batch(self, stream: str = "main") -> Batch:
        return self.batch

    def autocast(self):
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.nets.append((group, copy.deepcopy(dict(self.algo.nets))))
        for p in self.algo.parameters():
            p.grad = None
        loss.backward()
        self.losses.append((group, loss.detach().clone()))
        with torch.no_grad():
            for k in self.algo.optimizer_groups[group]:
                for p in self.algo.nets[k].parameters():
                    p -= self.lr * p.grad


@pytest.mark.parametrize("key", ["domain", "attributes"])
def test_losses_equal_direct_computation(key):
    algo = _algorithm(key, n_critic=2)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 16, 16, generator=g) * 2 - 1
    field = torch.tensor([0, 1, 2, 0, 1, 2]) if key == "domain" else (torch.rand(6, 3, generator=g) > 0.5).float()
    ctx = RecordingContext(algo, Batch(x, None, {key: field}))
    torch.manual_seed(7)
    logs = algo.train_step(ctx)
    torch.manual_seed(7)
    perms = [torch.randperm(6) for _ in range(2)]        # the targets each D step drew
    c_org = F.one_hot(field, 3).float() if key == "domain" else field

    def cls(logits, c):
        if key == "domain":
            return F.cross_entropy(logits, c.argmax(1))
        return sum(F.binary_cross_entropy_with_logits(logits[i], c[i], reduction="sum") for i in range(6)) / 6

    assert [grp for grp, _ in ctx.losses] == ["D", "D", "G"]
    for i in range(2):
        nets = ctx.nets[i][1]
        c_trg = c_org[perms[i]]
        fake = nets["G"](x, c_trg)
        real_out, fake_out = nets["D"](x), nets["D"](fake)
        expected = -real_out.source.mean() + fake_out.source.mean() + 1.0 * cls(real_out.classes, c_org)
        torch.testing.assert_close(ctx.losses[i][1], expected.detach(), rtol=1e-5, atol=1e-6)
    nets = ctx.nets[2][1]
    c_trg = c_org[perms[1]]                               # G trains on the last D step's targets
    fake = nets["G"](x, c_trg)
    out = nets["D"](fake)
    rec = nets["G"](fake, c_org)
    expected = -out.source.mean() + cls(out.classes, c_trg) + 10.0 * (x - rec).abs().mean()
    torch.testing.assert_close(ctx.losses[2][1], expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logs["g_loss"], expected.detach(), rtol=1e-5, atol=1e-6)
    assert set(logs) >= {"d_loss", "d_adv", "d_cls", "d_cls_acc", "g_adv", "g_cls", "rec"}


def test_gradient_penalty_comes_from_the_objective_on_the_source_head():
    algo = _algorithm()
    algo.objective = objective_class("wgan-gp")()
    from ganforge.algorithms.needs import check_needs
    algo.needs = check_needs(algo.name, algo.objective, algo.supported_needs)
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    logs = algo.train_step(RecordingContext(algo, Batch(x, None, {"domain": torch.tensor([0, 1, 2, 1])})))
    assert float(logs["gp"]) > 0


def test_translate_conditions_and_panels():
    algo = _algorithm()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    c = algo.target_condition(2, torch.device("cpu"), to="c")
    assert c.tolist() == [[0, 0, 1], [0, 0, 1]]
    assert torch.equal(algo.target_condition(2, torch.device("cpu"), to=1), F.one_hot(torch.tensor([1, 1]), 3).float())
    with torch.no_grad():
        assert algo.translate(x, to="b").shape == (2, 1, 16, 16)
        inputs = algo.sample_inputs(2, torch.Generator(), torch.device("cpu"),
                                    batch={"image": x, "domain": torch.tensor([0, 2])})
        assert inputs["c_trg"].argmax(1).tolist() == [1, 0]           # the next domain
        panels = algo.grid_panels(inputs, algo.nets)
    assert list(panels) == ["input", "to a", "to b", "to c"]
    for bad, fragment in (({"to": "z"}, "unknown domain"), ({"attrs": ["a"]}, "give to=DOMAIN"), ({}, "needs to=")):
        with pytest.raises(ConfigError, match=fragment):
            algo.translate(x, **bad)
    multi = _algorithm("attributes")
    assert multi.target_condition(1, torch.device("cpu"), attrs=["x", "z"]).tolist() == [[1, 0, 1]]
    with pytest.raises(ConfigError, match="unknown attribute"):
        multi.translate(x, attrs=["q"])


def test_domain_names_are_required_and_checked():
    nets = {"G": StarGANGenerator(1, 16, cond_dim=3, filters=4, n_blocks=1),
            "D": StarGANDiscriminator(1, 16, cond_dim=3, filters=4, n_layers=2)}
    with pytest.raises(ConfigError, match="algorithm.domains"):
        StarGAN(nets, objective_class("wgan-gp")(), _info())
    none = DataInfo(kind="image", sample_shape=(1, 16, 16), num_classes=0, keys=("image",))
    with pytest.raises(DataError, match="no domain field"):
        StarGAN(nets, objective_class("wgan-gp")(), none)


def test_mixed_digit_domains_are_unpaired_and_exact():
    ds = load_source("mnist5k?domains=plain,negative,edges", seed=0)
    raw = load_mnist5k()
    domain = ds.fields["domain"]
    assert ds.meta["domains"] == ["plain", "negative", "edges"] and set(domain.tolist()) == {0, 1, 2}
    counts = torch.bincount(domain)
    assert int(counts.max() - counts.min()) <= 1                   # dealt round-robin
    for index, name in enumerate(["plain", "negative", "edges"]):
        rows = torch.nonzero(domain == index).flatten()
        expected = raw.x[rows] if name == "plain" else derive(raw.x[rows], name)
        assert torch.equal(ds.x[rows], expected)
    assert torch.equal(ds.y, raw.y)
    colour = load_source("mnist5k?domains=plain,colour", seed=0)
    assert colour.x.shape[1] == 3
    for bad in ("mnist5k?domains=plain", "mnist5k?domains=plain,blue", "mnist5k?domains=plain,edges&domain=thin"):
        with pytest.raises(DataError, match="domains"):
            load_source(bad, seed=0)


def test_a_generator_that_ignores_the_condition_is_refused():
    # resnet-translator with instance norm: reflection padding keeps the condition planes constant, instance norm
    # removes constants, so G(x, c) is the same for every c (what kept the digit recipe from learning)
    erased = ResnetTranslator(1, 16, cond_dim=3, filters=4, n_blocks=1, norm="instance")
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert torch.allclose(erased(x, torch.eye(3)[[0, 0]]), erased(x, torch.eye(3)[[2, 2]]), atol=1e-5)
    D = StarGANDiscriminator(1, 16, cond_dim=3, filters=4, n_layers=2)
    with pytest.raises(ConfigError, match="ignores its condition.*arch=stargan"):
        StarGAN({"G": erased, "D": D}, objective_class("wgan-gp")(), _info(), domains=["a", "b", "c"])
    G = StarGANGenerator(1, 16, cond_dim=3, filters=4, n_blocks=1)
    with torch.no_grad():
        assert float((G(x, torch.eye(3)[[0, 0]]) - G(x, torch.eye(3)[[2, 2]])).abs().max()) > 1e-3
    StarGAN({"G": G, "D": D}, objective_class("wgan-gp")(), _info(), domains=["a", "b", "c"])


def test_generator_is_the_papers_table_4():
    G = StarGANGenerator(3, 128, cond_dim=5)
    convs = [m for m in G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]) for m in convs] == \
        [(8, 64, 7, 1, 3), (64, 128, 4, 2, 1), (128, 256, 4, 2, 1)] + [(256, 256, 3, 1, 1)] * 12 + \
        [(256, 128, 4, 2, 1), (128, 64, 4, 2, 1), (64, 3, 7, 1, 3)]
    assert all(m.bias is None and m.padding_mode == "zeros" for m in convs)
    norms = [m for m in G.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 2 + 1 + 12 + 2 and all(m.affine and not m.track_running_stats for m in norms)
    assert G(torch.zeros(1, 3, 128, 128), torch.zeros(1, 5)).shape == (1, 3, 128, 128)
    with pytest.raises(ConfigError, match="divisible by 4"):
        StarGANGenerator(1, 30, cond_dim=2)


# -- the mask vector: two datasets with different label sets (Choi et al. 2018 section 3.2) -------------------------
def _two_sets_info(second: str = "domain") -> DataInfo:
    """Main: a domain field with 2 domains; stream b: a domain field (3 domains) or 3 multi-hot attributes."""
    shape = {"domain": (), "attributes": (3,)}[second]
    b = DataInfo(kind="image", sample_shape=(1, 16, 16), num_classes=10, keys=("image", "label", second),
                 field_shapes={second: shape})
    return DataInfo(kind="image", sample_shape=(1, 16, 16), num_classes=10, keys=("image", "label", "domain"),
                    field_shapes={"domain": ()}, streams={"b": b})


def _two_sets(second: str = "domain", n_critic: int = 1) -> StarGAN:
    torch.manual_seed(0)
    nets = {"G": StarGANGenerator(1, 16, cond_dim=2 + 3 + 2, filters=4, n_blocks=1),
            "D": StarGANDiscriminator(1, 16, cond_dim=2 + 3, filters=4, n_layers=2)}
    labels = {"domains": ["p", "q", "r"]} if second == "domain" else {"attributes": ["x", "y", "z"]}
    datasets = [{"stream": "main", "name": "one", "domains": ["a", "b"]}, {"stream": "b", "name": "two", **labels}]
    return StarGAN(nets, objective_class("wgan")(clip_value=None), _two_sets_info(second), n_critic=n_critic,
                   datasets=datasets)


def test_mask_condition_is_both_label_sets_and_the_mask():
    algo = _two_sets()
    ctx = StarGAN.network_context({"datasets": [{"stream": "main", "domains": ["a", "b"]},
                                                {"stream": "b", "domains": ["p", "q", "r"]}]}, _two_sets_info())
    assert ctx["G"]["cond_dim"] == 7 and ctx["D"]["cond_dim"] == 5          # [c1 (2) | c2 (3) | mask (2)]; D: 2 + 3
    one, two = algo.sets
    main = algo.condition({"domain": torch.tensor([1, 0])}, one)
    other = algo.condition({"domain": torch.tensor([2, 0])}, two)
    assert main.tolist() == [[0, 1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1, 0]]
    assert other.tolist() == [[0, 0, 0, 0, 1, 0, 1], [0, 0, 1, 0, 0, 0, 1]]
    # translate reaches the domains of either dataset, the condition carrying that dataset's mask
    dev = torch.device("cpu")
    assert algo.target_condition(1, dev, to="q").tolist() == [[0, 0, 0, 1, 0, 0, 1]]
    assert algo.target_condition(1, dev, to="b").tolist() == [[0, 1, 0, 0, 0, 1, 0]]
    assert algo.target_condition(1, dev, to=4).tolist() == [[0, 0, 0, 0, 1, 0, 1]]     # the 5th domain: r
    attrs = _two_sets("attributes")
    assert attrs.target_condition(1, dev, attrs=["x", "z"]).tolist() == [[0, 0, 1, 0, 1, 0, 1]]
    assert attrs.condition({"attributes": torch.tensor([[1.0, 1.0, 0.0]])}, attrs.sets[1]).tolist() == \
        [[0, 0, 1, 1, 0, 0, 1]]
    with pytest.raises(ConfigError, match="unknown domain 'z'.*a, b, p, q, r"):
        algo.target_condition(1, dev, to="z")


def test_masked_classification_loss_sees_only_the_known_labels():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 5, generator=g, requires_grad=True)
    algo = _two_sets()
    one, two = algo.sets
    c = algo.condition({"domain": torch.tensor([2, 0, 1, 2])}, two)
    loss = algo.classification_loss(logits, c, two)
    torch.testing.assert_close(loss, F.cross_entropy(logits[:, 2:5], torch.tensor([2, 0, 1, 2])))
    loss.backward()
    assert torch.equal(logits.grad[:, :2], torch.zeros(4, 2))             # dataset one's logits: unknown, untouched
    c1 = algo.condition({"domain": torch.tensor([1, 0, 0, 1])}, one)
    torch.testing.assert_close(algo.classification_loss(logits, c1, one),
                               F.cross_entropy(logits[:, :2], torch.tensor([1, 0, 0, 1])))
    attrs = _two_sets("attributes")
    a = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    ca = attrs.condition({"attributes": a}, attrs.sets[1])
    expected = sum(F.binary_cross_entropy_with_logits(logits[i, 2:5], a[i], reduction="sum") for i in range(4)) / 4
    torch.testing.assert_close(attrs.classification_loss(logits, ca, attrs.sets[1]), expected)
    assert float(attrs.classification_accuracy(logits, ca, attrs.sets[1])) == \
        float(((logits[:, 2:5] > 0).float() == a).float().mean())


class StreamsContext(RecordingContext):
    """RecordingContext with one fixed batch per stream, recording which stream each update's batch came from."""

    def __init__(self, algo: StarGAN, batches: dict[str, Batch], lr: float = 0.05):
        super().__init__(algo, batches["main"], lr)
        self.batches, self.drawn = batches, []

    def real_batch(self, stream: str = "main") -> Batch:
        self.drawn.append(stream)
        return self.batches[stream]


def test_two_dataset_step_alternates_datasets_and_equals_direct_computation():
    algo = _two_sets(n_critic=2)
    g = torch.Generator().manual_seed(1)
    x1, x2 = (torch.rand(4, 1, 16, 16, generator=g) * 2 - 1 for _ in range(2))
    d1, d2 = torch.tensor([0, 1, 1, 0]), torch.tensor([2, 0, 1, 2])
    ctx = StreamsContext(algo, {"main": Batch(x1, None, {"domain": d1}), "b": Batch(x2, None, {"domain": d2})})
    torch.manual_seed(7)
    logs = algo.train_step(ctx)
    torch.manual_seed(7)
    perms = [torch.randperm(4) for _ in range(4)]       # the targets each D update drew: main, b, main, b
    # the official train_multi: per round one D update per dataset; G after each dataset's D in the last round
    assert ctx.drawn == ["main", "b", "main", "b"]
    assert [grp for grp, _ in ctx.losses] == ["D", "D", "D", "G", "D", "G"]

    def cond(d, n, offset, index):
        c = torch.zeros(len(d), 7)
        c[:, offset:offset + n] = F.one_hot(d, n).float()
        c[:, 5 + index] = 1
        return c

    sets = [(x1, d1, 2, 0, 0, slice(0, 2)), (x2, d2, 3, 2, 1, slice(2, 5))]
    for update, draw in zip((0, 1, 2, 4), range(4)):       # the D updates
        x, d, n, offset, index, part = sets[draw % 2]
        nets = ctx.nets[update][1]
        fake = nets["G"](x, cond(d[perms[draw]], n, offset, index))
        real_out, fake_out = nets["D"](x), nets["D"](fake)
        expected = -real_out.source.mean() + fake_out.source.mean() + F.cross_entropy(real_out.classes[:, part], d)
        torch.testing.assert_close(ctx.losses[update][1], expected.detach(), rtol=1e-5, atol=1e-6)
    g_losses = []
    for update, draw in ((3, 2), (5, 3)):                   # the G updates, on the last round's batches and targets
        x, d, n, offset, index, part = sets[draw % 2]
        nets = ctx.nets[update][1]
        c_trg, c_org = cond(d[perms[draw]], n, offset, index), cond(d, n, offset, index)
        fake = nets["G"](x, c_trg)
        out = nets["D"](fake)
        expected = (-out.source.mean() + F.cross_entropy(out.classes[:, part], d[perms[draw]])
                    + 10.0 * (x - nets["G"](fake, c_org)).abs().mean())
        torch.testing.assert_close(ctx.losses[update][1], expected.detach(), rtol=1e-5, atol=1e-6)
        g_losses.append(expected.detach())
    torch.testing.assert_close(logs["g_loss"], sum(g_losses) / 2, rtol=1e-5, atol=1e-6)
    assert {"d_cls_acc_one", "d_cls_acc_two", "g_cls_one", "g_cls_two"} <= set(logs)


def test_two_dataset_grid_and_refusals():
    algo = _two_sets()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        inputs = algo.sample_inputs(2, torch.Generator(), torch.device("cpu"),
                                    batch={"image": x, "domain": torch.tensor([0, 1])})
        assert inputs["c_org"].tolist() == [[1, 0, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1, 0]]
        assert inputs["c_trg"].argmax(1).tolist() == [1, 0]             # the next domain of the held-out's dataset
        panels = algo.grid_panels(inputs, algo.nets)
        assert list(panels) == ["input", "to a", "to b", "to p", "to q", "to r"]
        assert algo.translate(x, to="r").shape == (2, 1, 16, 16)
    attrs = _two_sets("attributes")
    with torch.no_grad():
        panels = attrs.grid_panels(attrs.sample_inputs(2, torch.Generator(), torch.device("cpu"),
                                                       batch={"image": x, "domain": torch.tensor([0, 1])}), attrs.nets)
    assert list(panels) == ["input", "to a", "to b", "set x", "set y", "set z"]
    with pytest.raises(ConfigError, match="not both"):
        attrs.translate(x, to="a", attrs=["x"])
    info = _two_sets_info()
    nets = {"G": StarGANGenerator(1, 16, cond_dim=7, filters=4, n_blocks=1),
            "D": StarGANDiscriminator(1, 16, cond_dim=5, filters=4, n_layers=2)}
    wgan = objective_class("wgan-gp")()
    for datasets, err, fragment in (
            ([{"stream": "main", "domains": ["a", "b"]}], ConfigError, "two or more"),
            ([{"stream": "main", "domains": ["a", "b"]}, {"stream": "c", "domains": ["p", "q", "r"]}], DataError,
             "data.streams.c.source"),
            ([{"stream": "main", "domains": ["a", "b"]}, {"stream": "main", "domains": ["p", "q"]}], ConfigError,
             "stream 'main' twice"),
            ([{"stream": "b", "domains": ["p", "q", "r"]}, {"stream": "b", "name": "x", "domains": ["p", "q", "r"]}],
             ConfigError, "stream 'b' twice"),
            ([{"stream": "main", "domains": ["a", "b"]}, {"stream": "b", "labels": ["p"]}], ConfigError,
             "unknown key 'labels'"),
            ([{"stream": "main", "domains": ["a", "b"]}, {"stream": "held_out", "domains": ["p"]}], ConfigError,
             "never trained on")):
        with pytest.raises(err, match=fragment):
            StarGAN(nets, wgan, info, datasets=datasets)
    with pytest.raises(ConfigError, match="remove algorithm.domains"):
        StarGAN(nets, wgan, info, domains=["a", "b"], datasets=[{"stream": "main", "domains": ["a", "b"]},
                                                                {"stream": "b", "domains": ["p", "q", "r"]}])


def test_shared_domain_names_are_qualified_by_dataset():
    info = _two_sets_info()
    nets = {"G": StarGANGenerator(1, 16, cond_dim=7, filters=4, n_blocks=1),
            "D": StarGANDiscriminator(1, 16, cond_dim=5, filters=4, n_layers=2)}
    algo = StarGAN(nets, objective_class("wgan-gp")(), info,
                   datasets=[{"stream": "main", "domains": ["plain", "edges"]},
                             {"stream": "b", "domains": ["plain", "thick", "thin"]}])
    assert algo.all_names() == ["main/plain", "edges", "b/plain", "thick", "thin"]
    assert algo.target_condition(1, torch.device("cpu"), to="b/plain").tolist() == [[0, 0, 1, 0, 0, 0, 1]]
    with pytest.raises(ConfigError, match="in datasets main, b; give to=main/plain"):
        algo.target_condition(1, torch.device("cpu"), to="plain")


def test_identity_term_equals_direct_computation():
    algo = _algorithm(n_critic=1)
    algo.lambda_id = 2.5
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    field = torch.tensor([0, 1, 2, 1])
    ctx = RecordingContext(algo, Batch(x, None, {"domain": field}))
    torch.manual_seed(5)
    logs = algo.train_step(ctx)
    torch.manual_seed(5)
    perm = torch.randperm(4)
    c_org = F.one_hot(field, 3).float()
    nets = ctx.nets[1][1]
    fake = nets["G"](x, c_org[perm])
    out = nets["D"](fake)
    identity = (x - nets["G"](x, c_org)).abs().mean()
    expected = (-out.source.mean() + F.cross_entropy(out.classes, field[perm])
                + 10.0 * (x - nets["G"](fake, c_org)).abs().mean() + 2.5 * identity)
    torch.testing.assert_close(ctx.losses[1][1], expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logs["identity"], identity.detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="lambda_id"):
        StarGAN(dict(algo.nets), objective_class("wgan-gp")(), _info(), domains=["a", "b", "c"], lambda_id=-1.0)


def test_eval_sweeps_the_first_datasets_domains_and_averages_them():
    """`ganforge eval` of a StarGAN with no --to translates to each domain of the held-out set's dataset in turn; the
    figures every domain has are averaged, each domain's kept beside them."""
    from ganforge.metrics.translation import mean_over_targets
    assert _algorithm().evaluation_targets() == ["a", "b", "c"]
    assert _algorithm("attributes").evaluation_targets() is None        # attributes: the user gives attrs=
    assert _two_sets().evaluation_targets() == ["a", "b"]
    per = {"a": {"target": "r", "step": 5, "to": "a", "content": 0.5, "fid": 10.0, "content_classifier": "x"},
           "b": {"target": "r", "step": 5, "to": "b", "content": 0.9, "fid": 30.0, "content_classifier": "y"}}
    mean = mean_over_targets(per)
    assert mean["content"] == pytest.approx(0.7) and mean["fid"] == pytest.approx(20.0) and mean["step"] == 5
    assert "content_classifier" not in mean and mean["per_domain"]["b"]["fid"] == 30.0
    assert mean["to"] == "each of a, b (the mean)"
