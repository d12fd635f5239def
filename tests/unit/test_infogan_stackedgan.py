"""InfoGAN and StackedGAN (seed 004 sections 10.2-10.4): networks as the book's listings size them, each training
step's losses against a direct computation from the text's formulas, and the sampling controls."""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms import Batch, DataInfo
from ganforge.algorithms.infogan import book_mi_loss, gaussian_code_loss
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source
from ganforge.errors import ConfigError, DataError
from ganforge.metrics.code_purity import code_purity

# Small networks so every step here runs in milliseconds; the book sizes are checked separately.
TINY_INFO = {"networks.G.filters": [16, 8, 4], "networks.D.filters": [4, 8, 16, 16], "algorithm.latent_dim": 6}
TINY_STACKED = {"networks.G0.filters": [16, 8, 4], "networks.D0.filters": [4, 8, 16, 16], "networks.E0.filters": 8,
                "networks.G1.hidden": [32, 32], "networks.D1.hidden": [32, 32], "algorithm.latent_dim": 5,
                "algorithm.feature_dim": 12}


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


class RecordingContext:
    """A StepContext that hands out fixed batches and records each update's loss without stepping: the weights
    stay as they were, so the losses can be recomputed directly afterwards."""

    def __init__(self, batch: Batch):
        self.step, self.batch, self.updates = 0, batch, []

    def real_batch(self) -> Batch:
        return self.batch

    def autocast(self):
        return contextlib.nullcontext()

    def update(self, group, loss):
        self.updates.append((group, loss.detach().clone()))


def digits(n: int, seed: int = 0) -> Batch:
    ds = load_source("mnist5k")
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    return Batch(x=ds.x[idx].float() / 255.0, y=ds.y[idx])


def bce_probs(p: torch.Tensor, target: float) -> torch.Tensor:
    """Keras binary_crossentropy on probabilities."""
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(target * p.log() + (1 - target) * (1 - p).log()).mean()


DIGITS = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10)


def algorithm(recipe: str, overrides: dict):
    torch.manual_seed(0)
    return build_algorithm(load_config(recipe, overrides), DIGITS)


# ------------------------------------------------------------------------------------------------- networks
def test_book_networks_have_the_listed_parameter_counts():
    """Spec 0.3/0.4/5.6/6.3: trainable parameters of the book's Keras models."""
    count = lambda m: sum(p.numel() for p in m.parameters())   # noqa: E731
    info = build_algorithm(load_config("infogan-mnist"), DIGITS)
    assert count(info.nets["G"]) == 1_137_729          # 62 + 10 + 1 + 1 = 74 inputs
    assert count(info.nets["D"]) == 1_606_541
    info100 = build_algorithm(load_config("infogan-mnist", {"algorithm.latent_dim": 100}), info.data)
    assert count(info100.nets["G"]) == 1_376_065       # the listing's 112 inputs
    stacked = build_algorithm(load_config("stackedgan-mnist"), info.data)
    expected = {"E0": 840_640, "E1": 2_570, "G1": 427_264, "G0": 2_592_833, "D1": 144_691, "D0": 1_285_427}
    assert {k: count(stacked.nets[k]) for k in expected} == expected


# ------------------------------------------------------------------------------------------------- InfoGAN
def test_book_mi_loss_is_the_listing_formula():
    c = torch.tensor([[0.7], [-0.4], [1.3], [-2.0]])
    s = torch.tensor([[0.2], [-1.5], [3.0], [-20.0]])
    q = 1 / (1 + np.exp(-s.numpy()))
    expected = np.mean(-np.sum(np.log(q + 1e-7) * c.numpy(), axis=1))
    assert book_mi_loss(c, s).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # the quirk the spec notes: a negative code makes the loss negative, bounded by the Keras epsilon
    assert book_mi_loss(torch.tensor([-1.0]), torch.tensor([-60.0])).item() == pytest.approx(math.log(1e-7), rel=1e-4)
    mean = torch.tensor([0.5, -0.5])
    assert gaussian_code_loss(torch.tensor([1.0, 1.0]), mean).item() == pytest.approx((0.125 + 1.125) / 2)


def _info_direct_d(algo, batch, seed):
    """Listing 6.1.4's discriminator loss, drawing the same random numbers in the same order."""
    torch.manual_seed(seed)
    n, k = len(batch.x), algo.num_categories
    z = torch.rand(n, algo.latent_dim) * 2 - 1
    fake_label = torch.randint(k, (n,))
    fake_codes = torch.randn(n, 2) * 0.5
    real_codes = torch.randn(n, 2) * 0.5
    G, D = algo.nets["G"], algo.nets["D"]
    with torch.no_grad():
        fake = G(z, torch.cat([F.one_hot(fake_label, k), fake_codes], 1))
        out = D(torch.cat([batch.x, fake]))
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    p = torch.sigmoid(out.source)
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    labels = torch.cat([batch.y, fake_label])
    cce = -(F.softmax(out.label, 1).log().gather(1, labels[:, None])).mean()
    codes = torch.cat([real_codes, fake_codes])
    q = torch.sigmoid(out.code)
    mi = [(-(torch.log(q[:, j] + 1e-7) * codes[:, j])).mean() for j in range(2)]
    return bce + cce + 0.5 * mi[0] + 0.5 * mi[1], cce, mi


def test_infogan_steps_compute_the_books_losses():
    algo = algorithm("infogan-mnist", TINY_INFO)
    batch = digits(8)
    batch = Batch(batch.x, batch.y)
    ctx = RecordingContext(batch)
    torch.manual_seed(5)
    logs = algo.train_step(ctx)
    (g_d, d_loss), (g_g, g_loss) = ctx.updates
    assert (g_d, g_g) == ("D", "G")
    direct, cce, mi = _info_direct_d(algo, batch, seed=5)
    assert d_loss.item() == pytest.approx(direct.item(), rel=1e-5, abs=1e-6)
    assert logs["d_label_loss"].item() == pytest.approx(cce.item(), rel=1e-5, abs=1e-6)
    assert logs["d_c1_loss"].item() == pytest.approx(mi[0].item(), rel=1e-5, abs=1e-6)
    # the generator step: fresh z, label and codes drawn after the discriminator's, fakes labelled real
    torch.manual_seed(5)
    n = len(batch.x)
    torch.rand(n, algo.latent_dim), torch.randint(10, (n,)), torch.randn(n, 2), torch.randn(n, 2)   # D's draws
    z = torch.rand(n, algo.latent_dim) * 2 - 1
    label = torch.randint(10, (n,))
    codes = torch.randn(n, 2) * 0.5
    with torch.no_grad():
        out = algo.nets["D"](algo.nets["G"](z, torch.cat([F.one_hot(label, 10), codes], 1)))
    q = torch.sigmoid(out.code)
    expected = (bce_probs(torch.sigmoid(out.source), 1.0)
                + -(F.log_softmax(out.label, 1).gather(1, label[:, None])).mean()
                + sum(0.5 * (-(torch.log(q[:, j] + 1e-7) * codes[:, j])).mean() for j in range(2)))
    assert g_loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


def test_infogan_unsupervised_and_gaussian_options_change_the_losses_as_documented():
    algo = algorithm("infogan-mnist", {**TINY_INFO, "algorithm.supervised": False,
                                          "algorithm.code_loss_on_real": False, "algorithm.code_loss": "gaussian"})
    batch = digits(6, seed=1)
    batch = Batch(batch.x, None)    # unsupervised: no labels needed
    ctx = RecordingContext(batch)
    torch.manual_seed(2)
    logs = algo.train_step(ctx)
    torch.manual_seed(2)
    n = 6
    z = torch.rand(n, algo.latent_dim) * 2 - 1
    fake_label = torch.randint(10, (n,))
    fake_codes = torch.randn(n, 2) * 0.5
    with torch.no_grad():
        fake = algo.nets["G"](z, torch.cat([F.one_hot(fake_label, 10), fake_codes], 1))
        out = algo.nets["D"](torch.cat([batch.x, fake]))
    ce_fake = F.cross_entropy(out.label[n:], fake_label)
    gauss = [0.5 * (fake_codes[:, j] - out.code[n:, j]).pow(2).mean() for j in range(2)]
    assert logs["d_label_loss"].item() == pytest.approx(ce_fake.item(), rel=1e-5, abs=1e-6)
    assert logs["d_c2_loss"].item() == pytest.approx(gauss[1].item(), rel=1e-5, abs=1e-6)


def test_infogan_traversal_rows_vary_only_the_code():
    algo = algorithm("infogan-mnist", TINY_INFO)
    gen = torch.Generator().manual_seed(0)
    inp = algo.sample_inputs(20, gen, torch.device("cpu"), traverse=("c1", -2.0, 2.0), per_row=5, fix={"c2": 0.0})
    z, label, codes = (inp[k].view(4, 5, -1) for k in ("z", "label", "codes"))
    assert torch.equal(z, z[:, :1].expand_as(z)) and torch.equal(label, label[:, :1].expand_as(label))
    assert torch.allclose(codes[..., 0], torch.linspace(-2, 2, 5).float().expand(4, 5))
    assert torch.all(codes[..., 1] == 0)
    assert len(set(z[:, 0, 0].tolist())) == 4          # rows differ from each other
    # --labels 0-9: a row per code value; sample_labels gives the categorical code (npz 'labels')
    inp = algo.sample_inputs(30, gen, torch.device("cpu"), labels=list(range(10)), per_row=3)
    assert algo.sample_labels(inp).tolist() == [v for v in range(10) for _ in range(3)]
    with pytest.raises(ConfigError, match="c3"):
        algo.sample_inputs(4, gen, torch.device("cpu"), traverse=("c3", -1.0, 1.0))
    with pytest.raises(ConfigError, match="stage"):
        algo.sample_inputs(4, gen, torch.device("cpu"), stage="z0")
    with pytest.raises(ConfigError, match="out of range"):
        algo.sample_inputs(4, gen, torch.device("cpu"), label=12)


def test_infogan_refuses_inconsistent_settings():
    with pytest.raises(ConfigError, match="num_codes"):
        algorithm("infogan-mnist", {**TINY_INFO, "networks.D.num_codes": 3})
    with pytest.raises(ConfigError, match="Q network"):
        algorithm("infogan-mnist", {**TINY_INFO, "networks.D.arch": "dcgan-book"})
    with pytest.raises(ConfigError, match="code_loss"):
        algorithm("infogan-mnist", {**TINY_INFO, "algorithm.code_loss": "mse"})
    with pytest.raises(DataError, match="image"):
        build_algorithm(load_config("infogan-mnist", TINY_INFO), DataInfo(kind="vector", sample_shape=(2,), num_classes=8))
    with pytest.raises(DataError, match="labels"):
        build_algorithm(load_config("infogan-mnist", TINY_INFO), DataInfo(kind="image", sample_shape=(1, 28, 28),
                                                                          num_classes=0))


def test_code_purity_finds_the_best_one_to_one_mapping():
    codes = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    pred = torch.tensor([5, 5, 4, 4, 4, 4, 5, 5, 3])
    res = code_purity(codes, pred, num_codes=3, num_classes=6)
    # 1 -> 4 (3 hits) + 0 -> 5 (2) + 2 -> 3 (1) beats the greedy 1 -> 4, 2 -> 5 (5 hits in all)
    assert res.mapping == {0: 5, 1: 4, 2: 3} and res.purity == pytest.approx(6 / 9)
    perm = code_purity(torch.arange(10).repeat(5), (torch.arange(10).repeat(5) + 3) % 10)
    assert perm.purity == 1.0 and perm.identity_accuracy == 0.0


# ------------------------------------------------------------------------------------------------- StackedGAN
@pytest.mark.parametrize("recipe, ent1, q_on_real", [
    ("stackedgan-mnist", 1.0, True),              # the listing: stage 1's entropy weight 1, Q fitted on both halves
    ("stackedgan-mnist-quick", 10.0, False),      # the text's weight 10 on both stages, Q fitted on fakes only
])
def test_stackedgan_steps_compute_the_books_losses(recipe, ent1, q_on_real):
    algo = algorithm(recipe, TINY_STACKED)
    batch = digits(8, seed=3)
    batch = Batch(batch.x, batch.y)
    ctx = RecordingContext(batch)
    torch.manual_seed(11)
    logs = algo.train_step(ctx)
    assert [g for g, _ in ctx.updates] == ["D1", "D0", "G1", "G0"]     # the listing's order
    d1, d0, g1, g0 = (loss.item() for _, loss in ctx.updates)
    E0, E1, G0, G1, D0, D1 = (algo.nets[k] for k in ("E0", "E1", "G0", "G1", "D0", "D1"))
    n, zd = len(batch.x), algo.z_dim
    y = F.one_hot(batch.y, 10)
    torch.manual_seed(11)
    draws = [(torch.randn(n, zd) * 0.5) for _ in range(4)]   # fake_z1, fake_z0, z1, z0 in listing order
    mse = lambda a, b: ((a - b) ** 2).mean()                          # noqa: E731  Keras 'mse'
    # the listing's Q target on [real; fake] is concat(fake_z, fake_z); without it Q sees only the fake half
    q_mse = lambda code, z: mse(code, torch.cat([z, z])) if q_on_real else mse(code[n:], z)   # noqa: E731
    with torch.no_grad():
        f1 = E0(batch.x)
        out = D1(torch.cat([f1, G1(draws[0], y)]))
        p = torch.sigmoid(out.source)
        direct_d1 = bce_probs_pair(p, n) + ent1 * q_mse(out.code, draws[0])
        out = D0(torch.cat([batch.x, G0(draws[1], f1)]))
        direct_d0 = bce_probs_pair(torch.sigmoid(out.source), n) + 10.0 * q_mse(out.code, draws[1])
        f1_fake = G1(draws[2], y)
        out = D1(f1_fake)
        probs = F.softmax(E1(f1_fake), 1)
        direct_g1 = (bce_probs(torch.sigmoid(out.source), 1.0) + ent1 * mse(out.code, draws[2])
                     + 1.0 * -(probs.log().gather(1, batch.y[:, None])).mean())
        x_fake = G0(draws[3], f1)
        out = D0(x_fake)
        direct_g0 = (bce_probs(torch.sigmoid(out.source), 1.0) + 10.0 * mse(out.code, draws[3])
                     + 1.0 * mse(E0(x_fake), f1))
    assert d1 == pytest.approx(direct_d1.item(), rel=1e-5, abs=1e-6)
    assert d0 == pytest.approx(direct_d0.item(), rel=1e-5, abs=1e-6)
    assert g1 == pytest.approx(direct_g1.item(), rel=1e-5, abs=1e-6)
    assert g0 == pytest.approx(direct_g0.item(), rel=1e-5, abs=1e-6)
    assert logs["g0_cond_loss"].item() > 0 and 0 <= logs["enc1_acc"].item() <= 1


def bce_probs_pair(p: torch.Tensor, n: int) -> torch.Tensor:
    """BCE over the concatenated [real; fake] batch with targets [1; 0] (one Keras train_on_batch)."""
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    p = p
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def test_stackedgan_generator_steps_leave_encoder_and_discriminators_without_gradients():
    algo = algorithm("stackedgan-mnist", TINY_STACKED)
    grads = {}

    class Ctx(RecordingContext):
        def update(self, group, loss):
            for p in algo.parameters():
                p.grad = None
            loss.backward()
            grads[len(grads)] = {k: any(p.grad is not None for p in algo.nets[k].parameters()) for k in algo.nets}

    batch = digits(4)
    algo.train_step(Ctx(Batch(batch.x, batch.y)))
    assert grads[0] == {"E0": False, "E1": False, "G1": False, "G0": False, "D1": True, "D0": False}
    assert grads[1] == {"E0": False, "E1": False, "G1": False, "G0": False, "D1": False, "D0": True}
    assert grads[2] == {"E0": False, "E1": False, "G1": True, "G0": False, "D1": False, "D0": False}
    assert grads[3] == {"E0": False, "E1": False, "G1": False, "G0": True, "D1": False, "D0": False}


def test_stackedgan_stage_rows_keep_the_label_and_the_other_code():
    algo = algorithm("stackedgan-mnist", TINY_STACKED)
    gen = torch.Generator().manual_seed(0)
    cpu = torch.device("cpu")
    inp = algo.sample_inputs(30, gen, cpu, labels=list(range(10)), stage="z0", per_row=3)
    label, z0, z1 = inp["label"].view(10, 3), inp["z0"].view(10, 3, -1), inp["z1"].view(10, 3, -1)
    assert torch.equal(label[:, 0], torch.arange(10)) and torch.equal(label, label[:, :1].expand_as(label))
    assert torch.equal(z1, z1[:, :1].expand_as(z1))                         # z1 shared along each row
    assert not torch.equal(z0[:, 0], z0[:, 1]) and not torch.equal(z0[:, 1], z0[:, 2])   # z0 varies along it
    inp = algo.sample_inputs(12, gen, cpu, stage="z1", per_row=4)          # labels: random, one per row
    label, z0, z1 = inp["label"].view(3, 4), inp["z0"].view(3, 4, -1), inp["z1"].view(3, 4, -1)
    assert torch.equal(label, label[:, :1].expand_as(label)) and torch.equal(z0, z0[:, :1].expand_as(z0))
    assert not torch.equal(z1[:, 0], z1[:, 1])
    # the book's figure 10.17: z0 a constant vector swept from -4 to 4, z1 the zero vector
    inp = algo.sample_inputs(10, gen, cpu, label=8, traverse=("z0", -4.0, 4.0), fix={"z1": 0.0}, per_row=5)
    assert torch.allclose(inp["z0"][:5], torch.linspace(-4, 4, 5)[:, None].expand(5, algo.z_dim))
    assert torch.all(inp["z1"] == 0) and torch.all(inp["label"] == 8)
    assert torch.equal(algo.sample_labels(inp), inp["label"])
    with pytest.raises(ConfigError, match="z2"):
        algo.sample_inputs(4, gen, cpu, stage="z2")
    with pytest.raises(ConfigError, match="--stage and --code"):
        algo.sample_inputs(4, gen, cpu, stage="z0", traverse=("z1", -1.0, 1.0))
    with pytest.raises(ConfigError, match="feature_dim"):
        algorithm("stackedgan-mnist", {**TINY_STACKED, "networks.E0.feature_dim": 7})


def test_stackedgan_encoder_pretraining_is_deterministic_held_out_and_frozen():
    ds = load_source("mnist5k")
    small = ds.subset(torch.arange(0, 5000, 5), "mnist5k/1000")     # 100 digits per class
    over = {**TINY_STACKED, "algorithm.feature_dim": 32, "algorithm.encoder_epochs": 3}
    runs = []
    for _ in range(2):
        algo = algorithm("stackedgan-mnist", over)
        torch.manual_seed(0)
        facts = algo.setup(small, torch.device("cpu"))
        runs.append((facts, {k: v.clone() for k, v in algo.nets["E0"].state_dict().items()}))
    (facts, w), (facts2, w2) = runs
    assert all(torch.equal(w[k], w2[k]) for k in w)                  # deterministic
    assert facts == {**facts2, "encoder_seconds": facts["encoder_seconds"]}
    assert facts["encoder_train_size"] == 800 and facts["encoder_test_size"] == 200   # 20% of each class held out
    assert facts["encoder_test_accuracy"] > 0.4      # 39 Adam steps on 800 digits (0.65 measured); chance is 0.1
    assert not any(p.requires_grad for k in ("E0", "E1") for p in algo.nets[k].parameters())


@pytest.mark.parametrize("recipe,tiny,generators", [("infogan-mnist", TINY_INFO, ("G",)),
                                                    ("stackedgan-mnist", TINY_STACKED, ("G1", "G0"))])
def test_fake_bn_eval_makes_the_discriminator_fakes_like_keras_predict(recipe, tiny, generators):
    """``fake_bn: eval``: the D-step fakes come from G with BN in inference mode (Keras ``generator.predict``);
    the G step always runs G in training mode. The default (train) uses batch statistics for both."""
    for mode, expected in (("eval", [False, True]), ("train", [True, True])):
        algo = algorithm(recipe, {**tiny, "algorithm.fake_bn": mode})
        seen = {g: [] for g in generators}
        for g in generators:
            algo.nets[g].register_forward_hook(lambda m, i, o, g=g: seen[g].append(m.training))
        batch = digits(4)
        algo.train_step(RecordingContext(batch))
        assert all(seen[g] == expected for g in generators), (mode, seen)
