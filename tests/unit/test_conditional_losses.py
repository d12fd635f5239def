"""CGAN, projection-D CGAN and ACGAN: one step on a tiny batch computes the losses the texts define (checked against a
direct computation from what G and D were given and returned), the book's networks have the book's parameter
counts, and the sampling controls (--label, --labels rows, --share-noise, npz labels) do what they say."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from conftest import RecordingContext, run_cli
from ganforge.algorithms import Batch, DataInfo
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range
from ganforge.errors import ConfigError, DataError

INFO = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10)
TINY = {"networks.G.filters": [16, 8, 4], "networks.D.filters": [4, 8, 8, 16]}
B = 16


def tiny(recipe: str, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_algorithm(load_config(recipe, {**TINY, **changes}), INFO)


def record_calls(module: torch.nn.Module) -> list:
    """(inputs, output) of every forward call of ``module``, detached."""
    calls = []

    def hook(_, args, out):
        det = tuple(a.detach().clone() for a in args)
        calls.append((det, tuple(o.detach().clone() for o in out) if isinstance(out, tuple) else out.detach().clone()))

    module.register_forward_hook(hook)
    return calls


@pytest.fixture(scope="module")
def digits() -> Batch:
    ds = load_source("mnist5k")
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1))[:B]
    return Batch(x=to_model_range(ds.x[idx], (0.0, 1.0)), y=ds.y[idx])


def bce_real(s):   # -log sigmoid(s), written out
    return -torch.log(torch.sigmoid(s.double())).mean()


def bce_fake(s):   # -log(1 - sigmoid(s))
    return -torch.log(1 - torch.sigmoid(s.double())).mean()


def cross_entropy(logits, labels):   # -log softmax(logits)[label], written out
    p = torch.exp(logits.double()) / torch.exp(logits.double()).sum(1, keepdim=True)
    return -torch.log(p[torch.arange(len(labels)), labels]).mean()


def run_step(algo, digits):
    g_calls, d_calls = record_calls(algo.nets["G"]), record_calls(algo.nets["D"])
    ctx = RecordingContext(digits)
    torch.manual_seed(3)
    logs = algo.train_step(ctx)
    return ctx.updates, g_calls, d_calls, logs


# ------------------------------------------------------------------------------------------------ CGAN
@pytest.mark.parametrize("recipe", ["cgan-mnist", "cgan-projection-mnist"])
def test_cgan_combined_step_is_the_books_loss(recipe, digits):
    algo = tiny(recipe)
    updates, g_calls, d_calls, logs = run_step(algo, digits)
    assert [g for g, _ in updates] == ["D", "G"]
    (z_d, cond_d), fake_d = g_calls[0]
    assert z_d.shape == (B, 100) and z_d.min() >= -1 and z_d.max() <= 1          # z ~ U(-1, 1)
    y_fake = cond_d.argmax(1)
    assert torch.equal(cond_d, F.one_hot(y_fake, 10).float()) and len(set(y_fake.tolist())) > 3
    # D sees [real; fake] with [dataset labels; the labels G was given], one update on the 2B batch
    (x_seen, c_seen), out = d_calls[0]
    assert torch.equal(x_seen, torch.cat([digits.x, fake_d]))
    assert torch.equal(c_seen.argmax(1), torch.cat([digits.y, y_fake]))
    expected = 0.5 * (bce_real(out[:B]) + bce_fake(out[B:]))                     # Keras mean over 128 samples
    assert torch.allclose(updates[0][1], expected, atol=1e-6)
    # the scores are D(x | y) for the right y: recompute the real half directly
    with torch.no_grad():
        direct = algo.nets["D"](digits.x, F.one_hot(digits.y, 10).float())
    assert torch.allclose(direct, out[:B], atol=1e-5)
    # G step: fresh z and uniform labels; D judges G(z | y) with the same y; loss -E log D(G(z|y)|y)
    (z_g, cond_g), fake_g = g_calls[1]
    (x_g, c_g), out_g = d_calls[1]
    assert not torch.equal(z_g, z_d) and torch.equal(x_g, fake_g) and torch.equal(c_g, cond_g)
    assert torch.allclose(updates[1][1], bce_real(out_g), atol=1e-6)
    assert abs(float(logs["g_loss"]) - float(bce_real(out_g))) < 1e-5


def test_cgan_sum_and_separate_updates(digits):
    updates, _, d_calls, _ = run_step(tiny("cgan-mnist", **{"algorithm.d_update": "sum"}), digits)
    out = d_calls[0][1]
    assert torch.allclose(updates[0][1], bce_real(out[:B]) + bce_fake(out[B:]), atol=1e-6)

    updates, g_calls, d_calls, _ = run_step(tiny("cgan-mnist", **{"algorithm.d_update": "separate"}), digits)
    assert [g for g, _ in updates] == ["D", "D", "G"]
    (x_r, c_r), out_r = d_calls[0]
    (x_f, c_f), out_f = d_calls[1]
    assert torch.equal(x_r, digits.x) and torch.equal(c_r.argmax(1), digits.y)
    assert torch.equal(x_f, g_calls[0][1]) and torch.equal(c_f, g_calls[0][0][1])
    assert torch.allclose(updates[0][1], bce_real(out_r), atol=1e-6)
    assert torch.allclose(updates[1][1], bce_fake(out_f), atol=1e-6)


def test_seed002_mismatch_term_pairs_real_images_with_wrong_labels(digits):
    algo = tiny("cgan-mnist", **{"algorithm.d_update": "sum", "algorithm.mismatch_weight": 1.0})
    updates, _, d_calls, logs = run_step(algo, digits)
    (x_seen, c_seen), out = d_calls[0]
    assert len(out) == 3 * B
    wrong = c_seen[2 * B:].argmax(1)
    assert torch.equal(x_seen[2 * B:], digits.x) and bool((wrong != digits.y).all())
    expected = bce_real(out[:B]) + bce_fake(out[B:2 * B]) + bce_fake(out[2 * B:])   # the three terms of seed 002 1.3
    assert torch.allclose(updates[0][1], expected, atol=1e-6)
    assert "d_mismatch" in logs
    combined = tiny("cgan-mnist", **{"algorithm.mismatch_weight": 1.0})
    updates, _, d_calls, _ = run_step(combined, digits)
    out = d_calls[0][1]
    # combined: one mean over the 3B pairs
    expected = (bce_real(out[:B]) + bce_fake(out[B:2 * B]) + bce_fake(out[2 * B:])) / 3
    assert torch.allclose(updates[0][1], expected, atol=1e-6)


# ------------------------------------------------------------------------------------------------ ACGAN
@pytest.mark.parametrize("d_update,scale", [("combined", 0.5), ("sum", 1.0)])
def test_acgan_step_is_eq_531_and_532(d_update, scale, digits):
    algo = tiny("acgan-mnist", **{"algorithm.d_update": d_update})
    updates, g_calls, d_calls, logs = run_step(algo, digits)
    assert [g for g, _ in updates] == ["D", "G"]
    (_, cond_d), fake_d = g_calls[0]
    y_fake = cond_d.argmax(1)
    (x_seen,), (src, logits) = d_calls[0]
    assert torch.equal(x_seen, torch.cat([digits.x, fake_d]))                    # D sees the image only
    src_loss = bce_real(src[:B]) + bce_fake(src[B:])
    aux_loss = cross_entropy(logits[:B], digits.y) + cross_entropy(logits[B:], y_fake)   # real AND fake classified
    assert torch.allclose(updates[0][1], scale * (src_loss + aux_loss), atol=1e-6)
    assert abs(float(logs["d_aux_loss"]) - scale * float(aux_loss)) < 1e-5
    acc_real = float((logits[:B].argmax(1) == digits.y).double().mean())
    assert abs(float(logs["d_aux_acc_real"]) - acc_real) < 1e-6
    # G: fool the source head and make D classify G(z|y) as y
    (_, cond_g), fake_g = g_calls[1]
    (x_g,), (src_g, logits_g) = d_calls[1]
    assert torch.equal(x_g, fake_g)
    expected = bce_real(src_g) + cross_entropy(logits_g, cond_g.argmax(1))
    assert torch.allclose(updates[1][1], expected, atol=1e-6)


def test_acgan_aux_weight_scales_only_the_class_terms(digits):
    updates, g_calls, d_calls, _ = run_step(tiny("acgan-mnist", **{"algorithm.aux_weight": 0.25}), digits)
    (_, (src, logits)), y_fake = d_calls[0], g_calls[0][0][1].argmax(1)
    expected = 0.5 * (bce_real(src[:B]) + bce_fake(src[B:])) + 0.25 * 0.5 * (
        cross_entropy(logits[:B], digits.y) + cross_entropy(logits[B:], y_fake))
    assert torch.allclose(updates[0][1], expected, atol=1e-6)


class SteppingContext(RecordingContext):
    """Performs each update with plain SGD and records which networks' weights it moved."""

    def __init__(self, batch: Batch, algo):
        super().__init__(batch)
        self.algo = algo
        self.opts = {k: torch.optim.SGD(n.parameters(), lr=0.1) for k, n in algo.nets.items()}
        self.moved = []

    def update(self, group: str, loss: torch.Tensor) -> None:
        nets = self.algo.nets
        before = {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}
        self.opts[group].zero_grad()
        loss.backward()
        self.opts[group].step()
        self.moved.append((group, {k for k, n in nets.items()
                                   if any(not torch.equal(a, p) for a, p in zip(before[k], n.parameters()))}))


def test_generator_step_leaves_discriminator_untouched_and_updates_generator(digits):
    """With a real optimizer: the D update moves only D, the G update only G (D frozen, gradients through it)."""
    algo = tiny("acgan-mnist")
    ctx = SteppingContext(digits, algo)
    algo.train_step(ctx)
    assert ctx.moved == [("D", {"D"}), ("G", {"G"})]


def test_conditional_wgan_clips_the_critic_after_each_iteration(digits):
    algo = tiny("cgan-mnist", **{"objective.name": "wgan", "algorithm.n_critic": 2, "algorithm.d_update": "separate"})
    ctx = SteppingContext(digits, algo)
    algo.train_step(ctx)
    assert [g for g, _ in ctx.moved] == ["D", "D", "D", "D", "G"]
    assert max(float(p.detach().abs().max()) for p in algo.nets["D"].parameters()) <= 0.01
    algo = tiny("cgan-mnist", **{"objective.name": "wgan-gp"})      # penalty on interpolated (image, label) pairs
    logs = algo.train_step(SteppingContext(digits, algo))
    assert float(logs["gp"]) > 0


# ------------------------------------------------------------------------------------------------ networks
def test_book_parameter_counts():
    counts = {}
    for recipe in ("cgan-mnist", "cgan-projection-mnist", "acgan-mnist"):
        algo = build_algorithm(load_config(recipe, {}), INFO)
        counts[recipe] = {k: sum(p.numel() for p in n.parameters()) for k, n in algo.nets.items()}
    assert counts["acgan-mnist"] == {"G": 1_363_521, "D": 1_606_283}     # spec 0.3 (d_in 110) and 0.4 (ACGAN D)
    # book CGAN D: trunk on 2 channels (1,077,280) + Dense(10 -> 784) (8,624) + Dense(4096 -> 1) (4,097)
    assert counts["cgan-mnist"] == {"G": 1_363_521, "D": 1_090_001}
    # projection: the 1,080,577 of the book D + a 10 x 4096 class embedding
    assert counts["cgan-projection-mnist"] == {"G": 1_363_521, "D": 1_080_577 + 40_960}


def test_projection_score_is_linear_head_plus_inner_product(digits):
    D = tiny("cgan-projection-mnist").nets["D"]
    with torch.no_grad():
        phi = D.trunk(digits.x)
        for label in (0, 7):
            cond = F.one_hot(torch.full((B,), label), 10).float()
            direct = D.head(phi).squeeze(1) + phi @ D.embed.weight[label]
            assert torch.allclose(D(digits.x, cond), direct, atol=1e-5)


def test_cgan_label_enters_as_an_image_plane(digits):
    D = tiny("cgan-mnist").nets["D"]
    assert D.trunk[1].in_channels == 2 and D.label_plane.out_features == 28 * 28
    with torch.no_grad():
        a = D(digits.x, F.one_hot(torch.zeros(B, dtype=torch.long), 10).float())
        b = D(digits.x, F.one_hot(torch.ones(B, dtype=torch.long), 10).float())
    assert not torch.allclose(a, b)


def test_networks_that_cannot_take_the_label_are_refused():
    with pytest.raises(ConfigError, match="acgan-book"):
        tiny("acgan-mnist", **{"networks.D.arch": "cgan-book"})
    with pytest.raises(ConfigError, match="cgan-book or projection-book"):
        tiny("cgan-mnist", **{"networks.D.arch": "dcgan-book", "networks.D.filters": [4, 8, 8, 16]})
    with pytest.raises(ConfigError, match="mismatch_weight"):
        tiny("cgan-mnist", **{"algorithm.mismatch_weight": -1.0})
    with pytest.raises(ConfigError, match="needs images"):
        build_algorithm(load_config("acgan-mnist", TINY), DataInfo(kind="vector", sample_shape=(2,), num_classes=8))
    with pytest.raises(DataError, match="labelled"):
        build_algorithm(load_config("cgan-mnist", TINY), DataInfo(kind="image", sample_shape=(1, 28, 28),
                                                                   num_classes=0))


# ------------------------------------------------------------------------------------------------ controls
def test_sampling_controls():
    algo = tiny("acgan-mnist")
    gen = lambda: torch.Generator().manual_seed(0)   # noqa: E731
    assert algo.sample_inputs(12, gen(), torch.device("cpu"), label=7)["y"].tolist() == [7] * 12
    rows = algo.sample_inputs(30, gen(), torch.device("cpu"), labels=list(range(10)), per_row=10)
    assert rows["y"].tolist() == [0] * 10 + [1] * 10 + [2] * 10
    shared = algo.sample_inputs(30, gen(), torch.device("cpu"), labels=list(range(10)), share_noise=True)
    z = shared["z"].view(3, 10, -1)
    assert torch.equal(z[0], z[1]) and torch.equal(z[0], z[2]) and not torch.equal(z[0, 0], z[0, 1])
    free = algo.sample_inputs(30, gen(), torch.device("cpu"), labels=list(range(10)))["z"].view(3, 10, -1)
    assert not torch.equal(free[0], free[1])
    assert algo.sample_labels(rows).tolist() == rows["y"].tolist()
    with pytest.raises(ConfigError, match="does not take sampling control"):
        algo.sample_inputs(4, gen(), torch.device("cpu"), traverse=("c1", -1.0, 1.0))
    with pytest.raises(ConfigError, match="out of range"):
        algo.sample_inputs(4, gen(), torch.device("cpu"), label=10)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cgan") / "run"
    ganforge.train("cgan-projection-mnist", steps=2, out=out, progress=False,
                   overrides={**TINY, "train.batch_size": 8, "train.grid_size": 4, "train.threads": 1})
    return out


def test_cli_sample_label_controls_and_npz_labels(tiny_run, tmp_path, capsys):
    code, _, _ = run_cli(["sample", tiny_run, "--n", "20", "--label", "7", "--out", tmp_path / "sevens.npz"], capsys)
    sevens = np.load(tmp_path / "sevens.npz")
    assert code == 0 and sevens["arr_0"].shape == (20, 28, 28, 1) and sevens["labels"].tolist() == [7] * 20
    # a row per requested class (10 per row): --n 20 fills the two rows of --labels 0-1; with 0-9 it would not
    code, _, err = run_cli(["sample", tiny_run, "--n", "20", "--labels", "0-9", "--out", tmp_path / "no.npz"], capsys)
    assert code == 2 and "--n 100" in err and not (tmp_path / "no.npz").exists()
    code, _, _ = run_cli(["sample", tiny_run, "--n", "20", "--labels", "0-1", "--share-noise",
                          "--out", tmp_path / "rows.npz"], capsys)
    rows = np.load(tmp_path / "rows.npz")
    assert code == 0 and rows["labels"].tolist() == [0] * 10 + [1] * 10
    # same z down each column, different label per row: the images differ only through the label
    model = ganforge.load(tiny_run)
    a, _ = model.sample_with_inputs(20, seed=0, labels=[3, 3], share_noise=True)
    # equal up to rounding: with AVX2 kernels a sample's floats depend slightly on its place in the batch
    torch.testing.assert_close(a[:10], a[10:], atol=1e-5, rtol=0)
    code, _, err = run_cli(["sample", tiny_run, "--n", "4", "--code", "c1=-1:1", "--out", tmp_path / "x.png"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
