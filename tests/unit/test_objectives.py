"""The objective family against hand-computed values on fixed scores, their label conventions and gradient signs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import CheckpointError, ConfigError
from ganforge.objectives import objective_class, objective_names
from ganforge.objectives.energy import BEGAN, EBGAN, pullaway_term
from ganforge.objectives.fgan import DIVERGENCES, FGAN, lambert_w_exp
from ganforge.objectives.glsgan import GLSGAN, GLSGANPairwise, pairwise_cost_loss
from ganforge.objectives.hinge import Hinge
from ganforge.objectives.least_squares import LSGAN
from ganforge.objectives.relativistic import RaHinge, RaLSGAN, RaSGAN, RSGAN
from ganforge.objectives.wasserstein import WGAN, WGANGP

# Fixed raw scores used throughout: mean(REAL) = 5/6, mean(FAKE) = -1/6.
REAL = torch.tensor([1.0, -0.5, 2.0])
FAKE = torch.tensor([-1.0, 0.5, 0.0])


def softplus(a: float) -> float:
    return math.log1p(math.exp(a))


def close(actual: torch.Tensor, expected: float, tol: float = 1e-6) -> None:
    assert actual.dim() == 0
    assert float(actual.detach()) == pytest.approx(expected, abs=tol, rel=tol)


def grads(loss_fn, *scores: torch.Tensor) -> list[torch.Tensor]:
    leaves = [s.clone().requires_grad_(True) for s in scores]
    loss_fn(*leaves).backward()
    return [leaf.grad for leaf in leaves]


def test_every_new_objective_is_registered() -> None:
    for name in ("wgan", "wgan-gp", "lsgan", "glsgan", "glsgan-pairwise", "fgan", "rsgan", "rasgan", "ralsgan",
                 "rahinge", "hinge", "ebgan", "began"):
        assert name in objective_names()
        assert objective_class(name)().name == name


# ---------------------------------------------------------------- WGAN

def test_wgan_losses_hand_values() -> None:
    wgan = WGAN()
    close(wgan.d_real_loss(REAL), -5 / 6)
    close(wgan.d_fake_loss(FAKE), -1 / 6)
    close(wgan.d_loss(REAL, FAKE), -1.0)
    close(wgan.g_loss(FAKE), 1 / 6)


def test_wgan_equals_the_books_plus_minus_one_label_forms() -> None:
    wgan = WGAN()
    torch.manual_seed(0)
    real, fake = torch.randn(8), torch.randn(8)
    # seed 000: -mean(y * pred), real +1, fake -1, generator step +1
    book_d = -(torch.ones(8) * real).mean() - (-torch.ones(8) * fake).mean()
    book_g = -(torch.ones(8) * fake).mean()
    # seed 003: mean(y * pred), real -1, fake +1, generator target -1
    seed3_d = (-torch.ones(8) * real).mean() + (torch.ones(8) * fake).mean()
    seed3_g = (-torch.ones(8) * fake).mean()
    for d in (book_d, seed3_d):
        close(wgan.d_loss(real, fake), float(d))
    for g in (book_g, seed3_g):
        close(wgan.g_loss(fake), float(g))


def test_wgan_gradients_raise_real_and_lower_fake_scores() -> None:
    wgan = WGAN()
    d_real, d_fake = grads(wgan.d_loss, REAL, FAKE)
    assert torch.allclose(d_real, torch.full((3,), -1 / 3))   # descending raises D(x)
    assert torch.allclose(d_fake, torch.full((3,), 1 / 3))    # descending lowers D(G(z))
    (g_fake,) = grads(wgan.g_loss, FAKE)
    assert torch.allclose(g_fake, torch.full((3,), -1 / 3))   # the generator raises D(G(z))


def test_wgan_clip_value_and_wgan_gp_defaults() -> None:
    assert WGAN().clip_value == 0.01
    gp = WGANGP()
    assert gp.clip_value is None and gp.gp_weight == 10.0 and gp.gp_center == 1.0
    close(gp.d_loss(REAL, FAKE), -1.0)
    with pytest.raises(ConfigError, match="clip_value"):
        WGAN(clip_value=0.0)
    with pytest.raises(ConfigError, match="gp_weight"):
        WGANGP(gp_weight=-1.0)


def test_wgan_gp_penalty_of_a_linear_critic() -> None:
    w = torch.tensor([3.0, 4.0])                 # ||w|| = 5 everywhere, so GP = (5 - 1)^2 = 16
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    close(WGANGP().d_penalty(lambda x: x @ w, real, fake), 160.0, tol=1e-5)


def test_patch_score_maps_count_every_patch() -> None:
    patches_real, patches_fake = REAL.view(3, 1, 1, 1), FAKE.view(3, 1, 1, 1)
    close(WGAN().d_loss(patches_real, patches_fake), -1.0)
    close(Hinge().d_loss(patches_real.view(3, 1), patches_fake.view(3, 1)), 4 / 3)


# ---------------------------------------------------------------- LSGAN

def test_lsgan_book_coding_hand_values() -> None:
    lsgan = LSGAN()                            # a=0, b=1, c=1, book scaling
    # (r - 1)^2 = [0, 2.25, 1] (mean 13/12); f^2 = [1, 0.25, 0] (mean 5/12); (f - 1)^2 = [4, 2.25, 1] (mean 7/4)
    close(lsgan.d_loss(REAL, FAKE), 0.5 * 13 / 12 + 0.5 * 5 / 12)
    close(lsgan.g_loss(FAKE), 7 / 4)


def test_lsgan_book_scaling_is_keras_mse_over_the_combined_batch() -> None:
    torch.manual_seed(1)
    real, fake = torch.randn(64), torch.randn(64)
    combined = F.mse_loss(torch.cat([real, fake]), torch.cat([torch.ones(64), torch.zeros(64)]))
    close(LSGAN().d_loss(real, fake), float(combined), tol=1e-5)
    close(LSGAN().g_loss(fake), float(F.mse_loss(fake, torch.ones(64))), tol=1e-5)


def test_lsgan_scalings_and_the_pearson_coding() -> None:
    close(LSGAN(scaling="paper").g_loss(FAKE), 7 / 8)
    close(LSGAN(scaling="sum").d_loss(REAL, FAKE), 13 / 12 + 5 / 12)
    pearson = LSGAN(a=-1.0, b=1.0, c=0.0, scaling="paper")
    # (f + 1)^2 = [0, 2.25, 1] (mean 13/12); f^2 mean 5/12
    close(pearson.d_loss(REAL, FAKE), 0.5 * 13 / 12 + 0.5 * 13 / 12)
    close(pearson.g_loss(FAKE), 0.5 * 5 / 12)
    with pytest.raises(ConfigError, match="scaling"):
        LSGAN(scaling="keras")
    with pytest.raises(ConfigError, match="must differ"):
        LSGAN(a=1.0, b=1.0)


def test_lsgan_gradients_pull_scores_to_their_targets() -> None:
    d_real, d_fake = grads(LSGAN().d_loss, REAL, FAKE)
    # d/dr 1/2 mean (r - 1)^2 = (r - 1) / 3: descent moves every real score towards 1, every fake towards 0
    assert torch.allclose(d_real, (REAL - 1) / 3)
    assert torch.allclose(d_fake, FAKE / 3)


# ---------------------------------------------------------------- GLS-GAN

def test_glsgan_slope_one_is_wgan() -> None:
    torch.manual_seed(2)
    real, fake = torch.randn(10), torch.randn(10)
    gls, wgan = GLSGAN(slope=1.0), WGAN()
    close(gls.d_loss(real, fake), float(wgan.d_loss(real, fake)))
    close(gls.g_loss(fake), float(wgan.g_loss(fake)))


def test_glsgan_slope_zero_and_minus_one_hand_values() -> None:
    # slope 0 (ReLU, the loss-sensitive GAN of seed 003 figure 5): relu(real) mean 1, relu(fake) mean 1/6
    close(GLSGAN(slope=0.0).d_loss(REAL, FAKE), -1 + 1 / 6)
    close(GLSGAN(slope=0.0).g_loss(FAKE), -1 / 6)
    # slope -1 (absolute value, "L1" in figure 6): |real| mean 7/6, |fake| mean 1/2
    close(GLSGAN(slope=-1.0).d_loss(REAL, FAKE), -7 / 6 + 1 / 2)
    # s < 0 drives fakes to 0: the fake-score gradient points away from 0 on both sides
    (_, d_fake) = grads(GLSGAN(slope=-1.0).d_loss, REAL, torch.tensor([-2.0, 3.0, 1.0]))
    assert d_fake[0] < 0 < d_fake[1]
    with pytest.raises(ConfigError, match="slope"):
        GLSGAN(slope=1.5)


def test_glsgan_pairwise_reduces_to_wgan_and_ls_gan() -> None:
    torch.manual_seed(3)
    real, fake = torch.randn(10), torch.randn(10)
    close(GLSGANPairwise(slope=1.0).d_loss(real, fake), float(WGAN().d_loss(real, fake)))
    close(GLSGANPairwise(slope=1.0, margin=0.3).d_loss(real, fake), float(WGAN().d_loss(real, fake)) + 0.3)
    # margins 0.5 - r + f = [-1.5, 1.5, -1.5]
    close(GLSGANPairwise(slope=0.0, margin=0.5).d_loss(REAL, FAKE), 0.5)
    close(GLSGANPairwise(slope=0.5, margin=0.5).d_loss(REAL, FAKE), 0.0)
    close(GLSGANPairwise(slope=0.3).g_loss(FAKE), 1 / 6)
    # per-pair margins (Qi's Delta(x_i, G(z_i))) [0.5, 1, 1.5]: Delta - r + f = [-1.5, 2, -0.5] -> relu mean 2/3
    close(pairwise_cost_loss(REAL, FAKE, 0.0, margin=torch.tensor([0.5, 1.0, 1.5])), 2 / 3)
    assert GLSGANPairwise.separable is False
    with pytest.raises(ValueError, match="one to one"):
        GLSGANPairwise().d_loss(REAL, FAKE[:2])


# ---------------------------------------------------------------- f-GAN

# p and q on three atoms, each a multiple of 1/4, so a batch of 4 samples reproduces them exactly.
P = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
Q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)
REAL_ATOMS, FAKE_ATOMS = [0, 0, 1, 2], [0, 1, 2, 2]
U = P / Q   # [2, 1, 0.5]

# For each divergence, written out independently of the implementation: the generator f, the optimal critic
# T* = f'(p/q), and the raw score v with g_f(v) = T*.
OPTIMUM = {
    "kl": (lambda u: u * u.log(), lambda u: u.log() + 1, lambda t: t),
    "reverse_kl": (lambda u: -u.log(), lambda u: -1 / u, lambda t: -torch.log(-t)),
    "pearson": (lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1), lambda t: t),
    "neyman": (lambda u: (1 - u) ** 2 / u, lambda u: 1 - 1 / u ** 2, lambda t: -torch.log(1 - t)),
    "squared_hellinger": (lambda u: (u.sqrt() - 1) ** 2, lambda u: 1 - 1 / u.sqrt(), lambda t: -torch.log(1 - t)),
    "jeffrey": (lambda u: (u - 1) * u.log(), lambda u: u.log() + 1 - 1 / u, lambda t: t),
    "js": (lambda u: -(u + 1) * torch.log((1 + u) / 2) + u * u.log(), lambda u: torch.log(2 * u / (1 + u)),
           lambda t: -torch.log(2 * torch.exp(-t) - 1)),
    "gan": (lambda u: u * u.log() - (u + 1) * torch.log(u + 1), lambda u: torch.log(u / (u + 1)),
            lambda t: -torch.log(torch.exp(-t) - 1)),
    # f' is the sign (a subgradient 0 at u = 1); T* = +-1/2 is reached as tanh saturates
    "total_variation": (lambda u: 0.5 * (u - 1).abs(), lambda u: 0.5 * torch.sign(u - 1),
                        lambda t: 30.0 * torch.sign(t)),
}


def test_every_tabulated_divergence_has_an_optimum_check() -> None:
    assert set(OPTIMUM) == set(DIVERGENCES)


@pytest.mark.parametrize("divergence", sorted(OPTIMUM))
def test_fgan_bound_is_tight_at_the_optimal_critic(divergence: str) -> None:
    f, f_prime, inverse_activation = OPTIMUM[divergence]
    true_divergence = float((Q * f(U)).sum())
    atom_scores = inverse_activation(f_prime(U)).float().requires_grad_(True)
    objective = FGAN(divergence=divergence)
    d_loss = objective.d_loss(atom_scores[REAL_ATOMS], atom_scores[FAKE_ATOMS])
    # the discriminator's loss is minus the variational bound, and the bound equals D_f(P||Q) at T*
    close(d_loss, -true_divergence, tol=1e-5)
    close(objective.divergence_estimate(atom_scores[REAL_ATOMS], atom_scores[FAKE_ATOMS]), true_divergence, tol=1e-5)
    # and T* is a stationary point of the bound
    d_loss.backward()
    assert atom_scores.grad.abs().max() < 1e-5


def test_fgan_divergence_values_by_hand() -> None:
    # KL(P||Q) = 0.5 log 2 + 0.25 log 0.5 = 0.25 log 2; TV = 1/2 sum |p - q| = 1/4; Pearson = sum (p-q)^2/q = 1/4 + 1/8
    for name, expected in (("kl", 0.25 * math.log(2)), ("total_variation", 0.25), ("pearson", 0.375)):
        f, _, _ = OPTIMUM[name]
        assert float((Q * f(U)).sum()) == pytest.approx(expected)


@pytest.mark.parametrize("divergence", sorted(DIVERGENCES))
def test_fgan_stable_composition_equals_conjugate_of_activation(divergence: str) -> None:
    row = DIVERGENCES[divergence]
    v = torch.linspace(-3, 3, 25, dtype=torch.float64)
    assert torch.allclose(row.conjugate_of_activation(v), row.conjugate(row.activation(v)), atol=1e-9)


def test_fgan_gan_divergence_is_the_standard_gan() -> None:
    from ganforge.objectives.classic import Minimax, NonSaturating
    fgan_ns, fgan_sat = FGAN(divergence="gan"), FGAN(divergence="gan", g_form="saturating")
    close(fgan_ns.d_loss(REAL, FAKE), float(NonSaturating().d_loss(REAL, FAKE)))
    close(fgan_ns.g_loss(FAKE), float(NonSaturating().g_loss(FAKE)))
    close(fgan_sat.g_loss(FAKE), float(Minimax().g_loss(FAKE)))


def test_fgan_generator_forms_hand_values() -> None:
    kl_ns, kl_sat = FGAN(divergence="kl"), FGAN(divergence="kl", g_form="saturating")
    close(kl_ns.g_loss(FAKE), 1 / 6)                                                    # -mean(v)
    close(kl_sat.g_loss(FAKE), -sum(math.exp(v - 1) for v in FAKE.tolist()) / 3)       # -mean(exp(v - 1))
    assert FGAN().g_form == "nonsaturating" and FGAN().divergence == "gan"
    with pytest.raises(ConfigError, match="divergence"):
        FGAN(divergence="wasserstein")
    with pytest.raises(ConfigError, match="g_form"):
        FGAN(g_form="minimax")


def test_lambert_w_solves_its_equation_and_has_the_implicit_derivative() -> None:
    s = torch.tensor([-20.0, -1.0, 0.0, 1.0, 3.0, 50.0], dtype=torch.float64, requires_grad=True)
    w = lambert_w_exp(s)
    assert torch.allclose(w + torch.log(w), s.detach(), atol=1e-10)        # w e^w = e^s
    assert w[3].item() == pytest.approx(1.0)                                # W(e) = 1
    w.sum().backward()
    assert torch.allclose(s.grad, (w / (1 + w)).detach(), atol=1e-10)


# ---------------------------------------------------------------- relativistic

def test_rsgan_hand_values() -> None:
    # r - f = [2, -1, 2]
    close(RSGAN().d_loss(REAL, FAKE), (2 * softplus(-2) + softplus(1)) / 3)
    close(RSGAN().g_loss(FAKE, REAL), (2 * softplus(2) + softplus(-1)) / 3)


def test_rasgan_hand_values() -> None:
    real_rel = [r + 1 / 6 for r in REAL.tolist()]    # C(x_r) - E C(x_f)
    fake_rel = [f - 5 / 6 for f in FAKE.tolist()]    # C(x_f) - E C(x_r)
    expected_d = sum(softplus(-a) for a in real_rel) / 3 + sum(softplus(a) for a in fake_rel) / 3
    expected_g = sum(softplus(-a) for a in fake_rel) / 3 + sum(softplus(a) for a in real_rel) / 3
    close(RaSGAN().d_loss(REAL, FAKE), expected_d)
    close(RaSGAN().g_loss(FAKE, REAL), expected_g)
    # the generator's loss is the discriminator's with the roles of real and fake swapped
    close(RaSGAN().g_loss(FAKE, REAL), float(RaSGAN().d_loss(FAKE, REAL)))


def test_ralsgan_and_rahinge_hand_values() -> None:
    # relative scores: real [7/6, -1/3, 13/6], fake [-11/6, -1/3, -5/6]
    close(RaLSGAN().d_loss(REAL, FAKE), 13 / 9)
    close(RaLSGAN().g_loss(FAKE, REAL), 85 / 9)
    close(RaHinge().d_loss(REAL, FAKE), 13 / 18)
    close(RaHinge().g_loss(FAKE, REAL), 4.0)


def test_relativistic_generators_need_reals_and_push_them_down() -> None:
    for objective in (RSGAN(), RaSGAN(), RaLSGAN(), RaHinge()):
        assert objective.g_needs_real and not objective.separable
        with pytest.raises(ValueError, match="real_out"):
            objective.g_loss(FAKE)
        g_fake, g_real = grads(lambda f, r: objective.g_loss(f, r), FAKE, REAL)
        # the generator's loss falls as its fakes' scores rise and as the reals' scores fall (seed 002 part 3 1.2)
        assert g_fake.sum() < 0 < g_real.sum()
    with pytest.raises(ValueError, match="one to one"):
        RSGAN().d_loss(REAL, FAKE[:2])


# ---------------------------------------------------------------- hinge

def test_hinge_hand_values_and_sagan_form() -> None:
    # relu(1 - r) = [0, 1.5, 0], relu(1 + f) = [0, 1.5, 1]
    close(Hinge().d_loss(REAL, FAKE), 0.5 + 2.5 / 3)
    close(Hinge().g_loss(FAKE), 1 / 6)
    sagan_d = -torch.clamp(-1 + REAL, max=0).mean() - torch.clamp(-1 - FAKE, max=0).mean()
    close(Hinge().d_loss(REAL, FAKE), float(sagan_d))
    d_real, d_fake = grads(Hinge().d_loss, REAL, FAKE)
    assert torch.equal(d_real, torch.tensor([0.0, -1 / 3, 0.0]))   # only the real below the margin 1 is pushed up
    assert torch.equal(d_fake, torch.tensor([0.0, 1 / 3, 1 / 3]))  # only fakes above -1 are pushed down


# ---------------------------------------------------------------- energy based

def test_ebgan_losses_hand_values() -> None:
    real_energy, fake_energy = torch.tensor([0.2, 0.4]), torch.tensor([0.5, 1.5])
    ebgan = EBGAN(margin=1.0)
    close(ebgan.d_loss(real_energy, fake_energy), 0.3 + 0.25)   # mean(real) + mean(relu(1 - fake))
    close(ebgan.g_loss(fake_energy), 1.0)
    assert EBGAN().pt_weight == 0.1
    with pytest.raises(ConfigError, match="margin"):
        EBGAN(margin=0.0)


def test_pullaway_term_hand_value_and_direct_computation() -> None:
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # squared cosines: (1,2) 0, (1,3) 1/2, (2,3) 1/2; sum over ordered pairs 2; N(N-1) = 6
    close(pullaway_term(codes), 1 / 3)
    torch.manual_seed(4)
    codes = torch.randn(5, 2, 3)
    flat = codes.flatten(1)
    direct = sum(float(F.cosine_similarity(flat[i], flat[j], dim=0)) ** 2
                 for i in range(5) for j in range(5) if i != j) / 20
    close(pullaway_term(codes), direct, tol=1e-5)
    close(pullaway_term(torch.ones(4, 3) * torch.tensor([[1.0], [2.0], [3.0], [4.0]])), 1.0)   # collapsed: max
    with pytest.raises(ValueError, match="at least 2"):
        pullaway_term(torch.ones(1, 3))


def test_began_k_update_and_convergence_measure() -> None:
    began = BEGAN(gamma=0.5, lambda_k=0.001)
    assert began.k == 0.0
    real_energy, fake_energy = torch.tensor([0.3, 0.5]), torch.tensor([0.05, 0.15])   # means 0.4 and 0.1
    close(began.d_loss(real_energy, fake_energy), 0.4)                                 # k_0 = 0
    logs = began.after_d_step(real_energy, fake_energy)
    # k_1 = 0 + 0.001 * (0.5 * 0.4 - 0.1); M = 0.4 + |0.5 * 0.4 - 0.1|
    assert logs["k_t"] == pytest.approx(1e-4) and began.k == pytest.approx(1e-4)
    assert logs["M"] == pytest.approx(0.5)
    close(began.d_loss(real_energy, fake_energy), 0.4 - 1e-4 * 0.1)
    close(began.g_loss(fake_energy), 0.1)
    assert began.convergence_measure(real_energy, fake_energy) == pytest.approx(0.5)


def test_began_k_is_clipped_to_the_unit_interval_and_checkpointed() -> None:
    began = BEGAN(gamma=1.0, lambda_k=10.0)
    began.after_d_step(torch.tensor([0.0]), torch.tensor([1.0]))   # k would go to -10
    assert began.k == 0.0
    began.after_d_step(torch.tensor([1.0]), torch.tensor([0.0]))   # k would go to +10
    assert began.k == 1.0
    state = began.state_dict()
    assert state == {"k_t": 1.0}
    restored = BEGAN(gamma=1.0, lambda_k=10.0)
    restored.load_state_dict(state)
    assert restored.k == 1.0
    with pytest.raises(CheckpointError, match="k_t"):
        restored.load_state_dict({})
    with pytest.raises(ConfigError, match="gamma"):
        BEGAN(gamma=1.5)
