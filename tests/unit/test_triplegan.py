"""Triple-GAN: the step's losses against direct computation from the paper's formulas, the labelled subset
(deterministic, class-balanced, checkpointed), labels outside the subset never read, resume, bad input."""
from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.triplegan import TripleGAN, choose_labelled
from ganforge.build import build
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range
from ganforge.errors import ConfigError, DataError
from ganforge.models.triplegan import TripleGANClassifier, TripleGANGenerator, TripleGANPairDiscriminator
from ganforge.objectives import objective_class
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer

INFO = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10)
# Tiny networks for recipe-level runs (the recipe's own sizes are the authors').
TINY = {"networks.G.hidden": [32], "networks.D.hidden": [32, 16], "networks.C.filters": [4, 4, 4, 8, 8],
        "train.batch_size": 16, "train.log_every": 2, "train.sample_every": 100, "train.checkpoint_every": 100,
        "train.grid_size": 4, "train.threads": 1, "algorithm.labelled": 20}


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


def _digits(n: int = 300):
    train = load_source("mnist5k?split=train")      # sorted by class: take a random part
    return train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n])


def _algorithm(objective: str = "nonsaturating", **params) -> TripleGAN:
    torch.manual_seed(0)
    # No noise in D and no dropout in C: their forward passes are then functions of the inputs, so the direct
    # computation below sees exactly what the step saw.
    nets = {"G": TripleGANGenerator(8, (1, 28, 28), cond_dim=10, hidden=(16,)),
            "C": TripleGANClassifier(10, (1, 28, 28), filters=(4, 4, 4, 8, 8), dropout=0.0),
            "D": TripleGANPairDiscriminator((1, 28, 28), 10, hidden=(16, 8), input_noise=0.0, hidden_noise=0.0)}
    params = {"latent_dim": 8, "labelled": 20, **params}
    return TripleGAN(nets, objective_class(objective)(), INFO, **params)


class RecordingContext:
    """A StepContext that applies plain SGD updates and records each loss, the gradients it produced and a copy
    of the networks as they were when that loss was computed (i.e. just before its update)."""

    def __init__(self, algo: TripleGAN, x: torch.Tensor, y: torch.Tensor, step: int = 0, lr: float = 0.05):
        self.algo, self.batch, self.step, self.lr = algo, Batch(x=x, y=y), step, lr
        self.losses, self.grads, self.nets = {}, {}, {}
        self.groups = {g: [p for k in keys for p in algo.nets[k].parameters()]
                       for g, keys in algo.optimizer_groups.items()}

    def real_batch(self) -> Batch:
        return self.batch

    def autocast(self):
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.nets[group] = {k: copy.deepcopy(self.algo.nets[k]) for k in ("G", "C", "D")}
        params = self.groups[group]
        for p in params:
            p.grad = None
        loss.backward()
        self.losses[group] = loss.detach().clone()
        self.grads[group] = [p.grad.clone() for p in params]
        with torch.no_grad():
            for p in params:
                p -= self.lr * p.grad


def _log_sigmoid_terms(score):
    d = torch.sigmoid(score.double())
    return torch.log(d), torch.log(1 - d)


def _run_step(algo, ds, seed, step=0):
    algo.setup(ds, torch.device("cpu"))
    x = to_model_range(ds.x[:24], algo.value_range)
    ctx = RecordingContext(algo, x, ds.y[:24], step=step)
    torch.manual_seed(seed)
    logs = algo.train_step(ctx)
    return ctx, x, logs


def _draws(algo, n, seed):
    """The step's random draws, in its order: labelled batch indices, then z (uniform latent)."""
    torch.manual_seed(seed)
    _, xs, ys = algo.labelled_data()
    pick = torch.randint(len(ys), (n,))
    z = torch.rand(n, algo.latent_dim) * 2 - 1
    return to_model_range(xs[pick], algo.value_range), ys[pick], z


@pytest.mark.parametrize("objective, c_adversarial, pseudo_label, d_real_pseudo, d_labelled_batch", [
    ("nonsaturating", "minimax", "sample", False, 0),          # the recipe's default
    ("minimax", "nonsaturating", "argmax", True, 0),
    ("nonsaturating", "nonsaturating", "expectation", False, 0),
    ("nonsaturating", "minimax", "sample", True, 3),           # triplegan-mnist-quick: D's reals mostly C-labelled
])
def test_step_losses_match_the_paper_formulas(objective, c_adversarial, pseudo_label, d_real_pseudo, d_labelled_batch):
    alpha, alpha_p = 0.3, 0.25
    algo = _algorithm(objective, alpha=alpha, alpha_p=alpha_p, pseudo_label=pseudo_label, c_adversarial=c_adversarial,
                      d_real_pseudo=d_real_pseudo, d_labelled_batch=d_labelled_batch)
    ds = _digits()
    ctx, x_c, logs = _run_step(algo, ds, seed=5)
    n = len(x_c)
    x_d, y_d, z = _draws(algo, n, seed=5)
    y_g = torch.arange(n) % 10
    oh = lambda y: F.one_hot(y, 10).float()  # noqa: E731

    # --- D: -(1/m) sum log D(x_d, y_d) - alpha E_pc log(1 - D(x_c, y_c)) - (1 - alpha)(1/m) sum log(1 - D(x_g, y_g))
    nets = ctx.nets["D"]
    G, C, D = nets["G"], nets["C"], nets["D"]
    with torch.no_grad():
        x_g = G(z, oh(y_g))
        p = F.softmax(C(x_c), 1).double()
    if pseudo_label == "sample":
        torch.manual_seed(5)
        torch.randint(20, (n,)), torch.rand(n, algo.latent_dim)          # the draws made before y_c
        y_c = torch.multinomial(p.float(), 1).squeeze(1)
    else:
        y_c = p.argmax(1)
    x_real, y_real = x_d, y_d
    if d_labelled_batch:   # D's labelled pairs: the first d_labelled_batch of the (randomly drawn) labelled batch
        x_real, y_real = x_d[:d_labelled_batch], y_d[:d_labelled_batch]
    if d_real_pseudo:      # the authors' code: unlabelled x with C's argmax label are real pairs too
        with torch.no_grad():
            x_real, y_real = torch.cat([x_real, x_c]), torch.cat([y_real, C(x_c).argmax(1)])
    with torch.no_grad():
        log_d_real, _ = _log_sigmoid_terms(D(x_real, oh(y_real)))
        _, log_1m_d_g = _log_sigmoid_terms(D(x_g, oh(y_g)))
        if pseudo_label == "expectation":
            log_1m_d_c = torch.stack([_log_sigmoid_terms(D(x_c, oh(torch.full((n,), k))))[1] for k in range(10)], 1)
            c_term = (p * log_1m_d_c).sum(1).mean()
        else:
            c_term = _log_sigmoid_terms(D(x_c, oh(y_c)))[1].mean()
    want_d = -(log_d_real.mean() + alpha * c_term + (1 - alpha) * log_1m_d_g.mean())
    assert math.isclose(float(ctx.losses["D"]), float(want_d), rel_tol=1e-5, abs_tol=1e-6)

    # --- C, with the D that the D step just updated: alpha E[p_c(y|x) l(D(x, y))] + R_L + alpha_P R_P
    nets = ctx.nets["C"]
    G, C, D = nets["G"], nets["C"], nets["D"]
    C.zero_grad()

    def ell(score, form=c_adversarial):
        """log(1 - D) (minimax: Algorithm 1) or -log D (non-saturating)."""
        log_d, log_1m_d = _log_sigmoid_terms(score)
        return log_1m_d if form == "minimax" else -log_d

    with torch.no_grad():
        x_g = G(z, oh(y_g))
        if pseudo_label == "expectation":
            ell_c = torch.stack([ell(D(x_c, oh(torch.full((n,), k)))) for k in range(10)], 1)
        else:
            ell_c = ell(D(x_c, oh(y_c)))
    p = F.softmax(C(x_c).double(), 1)
    adv = (p * ell_c).sum(1).mean() if pseudo_label == "expectation" else (p[torch.arange(n), y_c] * ell_c).mean()
    r_l = -torch.log_softmax(C(x_d).double(), 1)[torch.arange(n), y_d].mean()
    r_p = -torch.log_softmax(C(x_g).double(), 1)[torch.arange(n), y_g].mean()
    want_c = alpha * adv + r_l + alpha_p * r_p
    assert math.isclose(float(ctx.losses["C"]), float(want_c.detach()), rel_tol=1e-5, abs_tol=1e-6)
    want_c.backward()
    for got, param in zip(ctx.grads["C"], C.parameters()):     # C learns through p_c's weights only
        torch.testing.assert_close(got, param.grad.float(), rtol=1e-4, atol=1e-6)
    assert math.isclose(float(logs["c_ce_labelled"]), float(r_l.detach()), rel_tol=1e-5)
    assert math.isclose(float(logs["c_ce_generated"]), float(r_p.detach()), rel_tol=1e-5)

    # --- G, against the updated D: (1 - alpha) (1/m) sum l(D(G(z, y), y))
    nets = ctx.nets["G"]
    with torch.no_grad():
        want_g = (1 - alpha) * ell(nets["D"](nets["G"](z, oh(y_g)), oh(y_g)), objective).mean()
    assert math.isclose(float(ctx.losses["G"]), float(want_g), rel_tol=1e-5, abs_tol=1e-6)


def test_pseudo_discriminative_loss_starts_at_pseudo_start():
    ds = _digits()
    before, _, logs_before = _run_step(_algorithm(pseudo_start=10), ds, seed=1, step=9)
    after, _, logs_after = _run_step(_algorithm(pseudo_start=10), ds, seed=1, step=10)
    assert float(logs_before["c_ce_generated"]) == 0.0 and float(logs_after["c_ce_generated"]) > 0.5
    # the only difference between the two C losses is alpha_P R_P
    gap = float(after.losses["C"] - before.losses["C"])
    assert math.isclose(gap, 0.1 * float(logs_after["c_ce_generated"]), rel_tol=1e-4)


def test_labelled_subset_is_deterministic_and_class_balanced():
    y = _digits(2000).y
    a = choose_labelled(y, 100, 10, torch.Generator().manual_seed(3))
    b = choose_labelled(y, 100, 10, torch.Generator().manual_seed(3))
    c = choose_labelled(y, 100, 10, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 100
    assert torch.bincount(y[a], minlength=10).tolist() == [10] * 10
    odd = torch.bincount(y[choose_labelled(y, 25, 10, torch.Generator().manual_seed(0))], minlength=10)
    assert odd.sum() == 25 and set(odd.tolist()) == {2, 3}
    with pytest.raises(DataError, match="algorithm.labelled"):
        choose_labelled(y[:30], 100, 10, torch.Generator().manual_seed(0))


def test_subset_follows_the_run_seed_and_is_checkpointed(tmp_path):
    runs = {name: ganforge.train("triplegan-mnist", steps=1, seed=seed, out=tmp_path / name, progress=False,
                                 overrides=TINY) for name, seed in (("a", 0), ("b", 0), ("c", 1))}
    subsets = {k: ganforge.load(r.run_dir).algorithm.labelled_data() for k, r in runs.items()}
    assert torch.equal(subsets["a"][0], subsets["b"][0]) and not torch.equal(subsets["a"][0], subsets["c"][0])
    train = load_source("mnist5k?split=train")
    index, x, y = subsets["a"]
    assert torch.equal(x, train.x[index]) and torch.equal(y, train.y[index])
    assert torch.bincount(y, minlength=10).tolist() == [2] * 10
    weights, _, _ = read_checkpoint(latest_checkpoint(runs["a"].run_dir))
    assert torch.equal(weights["algorithm.labelled.index"], index)


def test_labels_outside_the_subset_are_never_used(tmp_path):
    """The trainer hands labels of every example with each batch; scrambling all of them changes nothing."""
    finals = []
    for name, scramble in (("true", False), ("scrambled", True)):
        cfg = load_config("triplegan-mnist", {**TINY, "train.steps": 3})
        built = build(cfg)
        (tmp_path / name).mkdir()
        trainer = Trainer(built, tmp_path / name, progress=False)
        if scramble:
            g = torch.Generator().manual_seed(9)
            trainer.data_y = (trainer.data_y + torch.randint(1, 10, trainer.data_y.shape, generator=g)) % 10
            assert (trainer.data_y != built.dataset.y).all()
        trainer.fit()
        finals.append({k: v.clone() for k, v in trainer.algorithm.nets.state_dict().items()})
    assert finals[0].keys() == finals[1].keys()
    for k in finals[0]:
        assert torch.equal(finals[0][k], finals[1][k]), k


def test_resume_is_bit_identical(tmp_path):
    over = {**TINY, "train.ema.enabled": True, "train.ema.decay": 0.9}
    straight = ganforge.train("triplegan-mnist", steps=4, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train("triplegan-mnist", steps=2, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=4, progress=False)
    wa, ta, _ = read_checkpoint(latest_checkpoint(straight.run_dir))
    wb, tb, _ = read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert wa.keys() == wb.keys() and any(k.startswith("ema.C.") for k in wa)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert torch.equal(ta["rng"]["torch"], tb["rng"]["torch"])


def test_sampling_controls_lay_out_labels():
    algo = _algorithm()
    inputs = algo.sample_inputs(20, torch.Generator().manual_seed(0), torch.device("cpu"), labels=[3, 7], per_row=10)
    assert inputs["y"].tolist() == [3] * 10 + [7] * 10
    assert torch.equal(algo.sample_labels(inputs), inputs["y"])
    shared = algo.sample_inputs(20, torch.Generator().manual_seed(0), torch.device("cpu"), labels=[3, 7],
                                per_row=10, share_noise=True)
    assert torch.equal(shared["z"][:10], shared["z"][10:])
    with torch.no_grad():
        images = algo.generate(shared)
    assert images.shape == (20, 1, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1
    with pytest.raises(ConfigError, match="traverse"):
        algo.sample_inputs(4, torch.Generator(), torch.device("cpu"), traverse=("c1", -1.0, 1.0))
    with pytest.raises(ConfigError, match="out of range"):
        algo.sample_inputs(4, torch.Generator(), torch.device("cpu"), label=12)


@pytest.mark.parametrize("override, error, match", [
    ({"objective.name": "wgan"}, ConfigError, "triplegan"),
    ({"algorithm.labelled": 5}, ConfigError, "algorithm.labelled"),
    ({"algorithm.alpha": 1.5}, ConfigError, "algorithm.alpha"),
    ({"algorithm.pseudo_label": "mode"}, ConfigError, "pseudo_label"),
    ({"algorithm.alpha_p": -1}, ConfigError, "alpha_p"),
    ({"algorithm.labelled_batch": 8, "algorithm.d_labelled_batch": 9}, ConfigError, "d_labelled_batch"),
    ({"networks.D.arch": "dcgan-book"}, ConfigError, "pair_discriminator"),
    ({"data.source": "toy:ring8"}, ConfigError, "images"),
])
def test_bad_settings_are_one_line_errors(override, error, match):
    with pytest.raises(error, match=match) as e:
        build(load_config("triplegan-mnist", override))
    assert "\n" not in str(e.value)
