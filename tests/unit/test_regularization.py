"""The recipe's `regularize:` section (algorithms/regularization.py): each term against direct computation, the lazy
schedule, conditional critics, the one place every family applies them, and one-line refusals."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import ganforge
from ganforge.algorithms.regularization import Regularization, SamplePenalty, parse_regularize
from ganforge.build import build
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.regularizers import gradient_penalty, orthogonal_regularization, r1_penalty
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer

from conftest import assert_same_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

ROLES = {"G": "generator", "D": "discriminator"}


class Critic(nn.Module):
    """A small nonlinear critic (scores per sample), conditional when called with a second argument."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 1)

    def forward(self, x, cond=None):
        h = torch.tanh(x.flatten(1) * 1.7)
        if cond is not None:
            h = h + cond.sum(1, keepdim=True)
        return self.lin(h) + (h ** 2).sum(1, keepdim=True)


def grad_norms_sq(f, x):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g.flatten(1).square().sum(1)


def test_r1_r2_and_dragan_equal_their_formulas():
    torch.manual_seed(0)
    D, real, fake = Critic(), torch.randn(5, 6), torch.randn(5, 6)
    reg = parse_regularize({"r1": {"gamma": 4.0}, "r2": {"gamma": 2.0}, "dragan": {"weight": 3.0, "c": 0.5}}, ROLES,
                           "x")
    logs = {}
    torch.manual_seed(7)
    total = reg.d_terms(torch.zeros(()), D, real, fake, logs)
    assert float(logs["r1"]) == pytest.approx(float(2.0 * grad_norms_sq(D, real).mean()), rel=1e-5)
    assert float(logs["r2"]) == pytest.approx(float(1.0 * grad_norms_sq(D, fake).mean()), rel=1e-5)
    # DRAGAN, from the same random draws: noise c * std(x) * U[0, 1), then one interpolation coefficient per sample
    torch.manual_seed(7)
    noisy = real + 0.5 * real.std() * torch.rand(real.shape)
    eps = torch.rand(5).view(5, 1)
    x_hat = eps * real + (1 - eps) * noisy
    direct = 3.0 * (grad_norms_sq(D, x_hat).sqrt() - 1).square().mean()
    assert float(logs["dragan"]) == pytest.approx(float(direct), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float(logs["r1"] + logs["r2"] + logs["dragan"]), rel=1e-6)
    # differentiable in D's weights (they train D)
    total.backward()
    assert D.lin.weight.grad is not None and float(D.lin.weight.grad.abs().sum()) > 0


def test_lazy_penalty_applies_every_k_steps_with_gain_k():
    D, real, fake = Critic(), torch.randn(4, 6), torch.randn(4, 6)
    reg = parse_regularize({"r1": {"gamma": 10, "every": 4}}, ROLES, "x")
    seen = []
    for step in range(8):
        reg.step, logs = step, {}
        reg.d_terms(torch.zeros(()), D, real, fake, logs, key="gp_B")
        seen.append(float(logs["r1_B"]) if "r1_B" in logs else None)
    once = float(r1_penalty(D, real, 10.0).detach())
    assert [s is not None for s in seen] == [True, False, False, False] * 2
    assert seen[0] == pytest.approx(4 * once, rel=1e-6)     # the average strength is the eager one's


def test_conditional_critic_keeps_each_side_s_condition():
    D, real, fake = Critic(), torch.randn(4, 6), torch.randn(4, 6)
    c_real, c_fake = torch.eye(4)[:, :3], torch.zeros(4, 3)
    logs = {}
    Regularization((SamplePenalty("r1", 2.0), SamplePenalty("r2", 2.0))).d_terms(
        torch.zeros(()), D, real, fake, logs, cond=(c_real, c_fake))
    assert float(logs["r1"]) == pytest.approx(float(grad_norms_sq(lambda x: D(x, c_real), real).mean()), rel=1e-5)
    assert float(logs["r2"]) == pytest.approx(float(grad_norms_sq(lambda x: D(x, c_fake), fake).mean()), rel=1e-5)


def test_orthogonal_term_is_the_biggan_formula_of_the_listed_networks_only():
    nets = {"G": nn.Sequential(nn.Linear(3, 4), nn.Conv2d(2, 3, 3)), "D": nn.Linear(3, 2)}
    reg = parse_regularize({"orthogonal": {"G": 1e-2}}, ROLES, "x")
    term = reg.parameter_terms(nets)
    assert float(term.detach()) == pytest.approx(float(orthogonal_regularization(nets["G"], 1e-2).detach()), rel=1e-6)
    assert set(reg.logs) == {"ortho_G"} and reg.parameter_terms({"D": nets["D"]}) is None


@pytest.mark.parametrize("raw, fragment", [
    ({"r3": {}}, "unknown regularizer 'regularize.r3'"),
    ({"r1": {"gama": 1}}, "unknown key 'regularize.r1.gama'"),
    ({"r1": {"gamma": -1}}, "regularize.r1.gamma must be > 0"),
    ({"r1": {"every": 0}}, "regularize.r1.every must be an integer >= 1"),
    ({"dragan": {"c": 0}}, "regularize.dragan.c must be > 0"),
    ({"orthogonal": {"E": 1e-4}}, "algorithm 'x' has no network E"),
    ({"orthogonal": 0.1}, "regularize.orthogonal must map networks to beta"),
    ([1, 2], "regularize must be a mapping"),
])
def test_bad_sections_are_one_line(raw, fragment):
    with pytest.raises(ConfigError, match=".") as e:
        parse_regularize(raw, ROLES, "x")
    assert fragment in str(e.value) and "\n" not in str(e.value)


# ---- the families apply them through the one place (needs.penalty / the trainer's optimizer step)
CGAN = {"train.threads": 1, "train.batch_size": 8, "train.log_every": 1, "train.sample_every": 1000,
        "train.checkpoint_every": 1000, "train.grid_size": 4}


def logged(run_dir):
    import json
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("recipe, extra, keys", [
    ("cgan-mnist", {"regularize": {"r1": {"gamma": 10, "every": 2}, "orthogonal": {"G": 1e-4}}}, {"r1", "ortho_G"}),
    ("acgan-mnist", {"regularize": {"dragan": {}}}, {"dragan"}),
    ("cyclegan-digits", {"regularize": {"r1": {"gamma": 1}},
                         "networks.G_AB.filters": 4, "networks.G_BA.filters": 4, "networks.G_AB.n_blocks": 1,
                         "networks.G_BA.n_blocks": 1, "networks.D_A.filters": 4, "networks.D_B.filters": 4},
     {"r1_A", "r1_B"}),
])
def test_families_that_had_no_r1_now_apply_the_section(tmp_path, recipe, extra, keys):
    overrides = {**CGAN, **{k: v for k, v in extra.items() if k != "regularize"}}
    for name, params in extra["regularize"].items():
        overrides[f"regularize.{name}"] = params
    run = ganforge.train(recipe, steps=2, out=tmp_path / "r", progress=False, overrides=overrides).run_dir
    rows = logged(run)
    for key in keys:
        assert any(key in row for row in rows), (key, rows[-1].keys())
    assert "regularize" in (run / "config.yaml").read_text()


def test_regularize_r1_in_adversarial_is_its_r1_gamma_bit_for_bit(tmp_path):
    base = {**CGAN, "train.batch_size": 8}
    a = ganforge.train("dcgan-mnist-quick", steps=3, out=tmp_path / "a", progress=False,
                       overrides={**base, "algorithm.r1_gamma": 5.0}).run_dir
    b = ganforge.train("dcgan-mnist-quick", steps=3, out=tmp_path / "b", progress=False,
                       overrides={**base, "regularize.r1": {"gamma": 5.0}}).run_dir
    wa, wb = read_checkpoint(latest_checkpoint(a))[0], read_checkpoint(latest_checkpoint(b))[0]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_resume_with_a_lazy_random_penalty_is_bit_exact(tmp_path):
    over = {**CGAN, "regularize.dragan": {"every": 2}, "regularize.orthogonal": {"D": 1e-3}}
    straight = ganforge.train("cgan-mnist", steps=4, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train("cgan-mnist", steps=3, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=4, progress=False)
    assert_same_checkpoint(read_checkpoint(latest_checkpoint(straight.run_dir)),
                           read_checkpoint(latest_checkpoint(resumed.run_dir)))


@pytest.mark.parametrize("recipe, over, fragment", [
    ("dcgan-mnist-quick", {"algorithm.r1_gamma": 1.0, "regularize.r1": {"gamma": 1.0}}, "R1 is given twice"),
    ("triplegan-mnist", {"regularize.r1": {}}, "algorithm 'triplegan' has no discriminator loss"),
    ("cgan-mnist", {"regularize.orthogonal": {"C": 1e-4}}, "has no network C"),
])
def test_refusals_at_build_time(recipe, over, fragment):
    with pytest.raises(ConfigError) as e:
        build(load_config(recipe, {**CGAN, **over}))
    assert fragment in str(e.value)


def test_no_section_changes_nothing(tmp_path):
    """Without the section the trainer draws no extra random number: the default recipe's weights are those of the
    same run with an empty section."""
    trained = []
    for name, over in (("a", CGAN), ("b", {**CGAN, "regularize": {}})):
        t = Trainer(build(load_config("cgan-mnist", over)), tmp_path / name, progress=False)
        t.train_step()
        t.train_step()
        trained.append(t)
    a, b = trained
    for key, value in a.algorithm.nets.state_dict().items():
        assert torch.equal(value, b.algorithm.nets.state_dict()[key]), key


def test_gradient_penalty_reuse_matches_the_wgan_gp_helper():
    """DRAGAN is WGAN-GP's penalty between a real batch and its noisy copy (same eps draw)."""
    D, real = Critic(), torch.randn(4, 6)
    torch.manual_seed(3)
    got = SamplePenalty("dragan", 1.0, c=0.5)(D, real, real, None)
    torch.manual_seed(3)
    noisy = real + 0.5 * real.std() * torch.rand(real.shape)
    assert float(got.detach()) == pytest.approx(float(gradient_penalty(D, real, noisy).detach()), rel=1e-6)
