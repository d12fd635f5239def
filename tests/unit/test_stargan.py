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
from ganforge.models.stargan import StarGANDiscriminator
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
    nets = {"G": ResnetTranslator(1, 16, cond_dim=3, filters=4, n_blocks=1),
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
    nets = {"G": ResnetTranslator(1, 16, cond_dim=3, filters=4, n_blocks=1),
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
