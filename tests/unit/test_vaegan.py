"""VAE-GAN and the plain VAE: the KL prior, the feature-space and pixel reconstructions, the GAN terms and the
three-class discriminator against direct computation; which network each loss trains (Larsen et al.'s Algorithm 1:
E no GAN gradient, D no reconstruction gradient); the networks' shapes and one-line refusals of bad settings."""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.vaegan import gaussian_kl
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.models.vaegan import VAEGANDecoder, VAEGANDiscriminator, vaegan_encoder

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

INFO = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=0)
TINY = {"networks.E.filters": [4, 8], "networks.E.hidden": 16, "networks.G.filters": [8, 4],
        "networks.D.filters": [4, 4, 8], "networks.D.hidden": 8, "algorithm.latent_dim": 5}


def _algo(recipe: str = "vaegan-digits", **overrides):
    tiny = {k: v for k, v in TINY.items() if recipe != "vae-digits" or not k.startswith("networks.D")}
    return build_algorithm(load_config(recipe, overrides={**tiny, **overrides}), INFO)


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


class BackwardContext:
    """A StepContext over one fixed batch that, for each ``ctx.backward``, records the loss and the gradient it left
    on each network (None where it left none), then clears the gradients; ``optimizer_step`` records the order and
    changes nothing, so the losses can be recomputed from the same weights."""

    def __init__(self, algo, x: torch.Tensor):
        self.algo, self.batch, self.step, self.accumulate, self.phase = algo, Batch(x, None), 0, 1, None
        self.losses, self.grads, self.steps = {}, {}, []

    def real_batch(self, stream: str = "main"):
        return self.batch

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, group: str, loss: torch.Tensor, gain: float = 1.0, retain_graph: bool = False) -> None:
        for p in self.algo.parameters():
            p.grad = None
        (loss * gain).backward(retain_graph=retain_graph)
        self.losses[group] = loss.detach().double()
        self.grads[group] = {k: [None if p.grad is None else p.grad.clone() for p in net.parameters()]
                             for k, net in self.algo.nets.items()}
        for p in self.algo.parameters():
            p.grad = None

    def optimizer_step(self, group: str) -> None:
        self.steps.append(group)


def _replay(algo, x: torch.Tensor, seed: int):
    """The step's forward pass recomputed from the same weights and the same draws (eps, then z_p)."""
    G, E, D = algo.nets["G"], algo.nets["E"], algo.nets["D"]
    torch.manual_seed(seed)
    mu, log_var = E.moments(x)
    x_rec = G(mu + torch.exp(0.5 * log_var) * torch.randn_like(mu))
    x_p = G(torch.randn(len(x), algo.latent_dim))
    (s_real, f_real), (s_rec, f_rec), (s_prior, _) = (D.forward_with_layer(v) for v in (x, x_rec, x_p))
    return mu, log_var, x_rec, s_real, f_real.detach(), s_rec, f_rec, s_prior


# ------------------------------------------------------------------------------------------------- the losses
def test_kl_is_the_closed_form_of_the_gaussian_divergence():
    g = torch.Generator().manual_seed(1)
    mu, log_var = (torch.randn(7, 4, generator=g, dtype=torch.float64) for _ in range(2))
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    direct = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    assert torch.allclose(gaussian_kl(mu, log_var), direct)
    assert float(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0      # q = p


def test_step_losses_match_direct_computation():
    algo = _algo(**{"algorithm.gamma": 0.3, "algorithm.sigma": 2.0})
    x = _images()
    ctx = BackwardContext(algo, x)
    torch.manual_seed(7)
    logs = algo.train_step(ctx)
    with torch.no_grad():
        mu, log_var, x_rec, s_real, f_real, s_rec, f_rec, s_prior = _replay(algo, x, 7)
    kl = (0.5 * (mu ** 2 + log_var.exp() - 1 - log_var)).sum(1).mean()
    llike = ((f_real - f_rec) ** 2).sum(1).mean() / (2 * 2.0 ** 2)        # -log N(Dis_l(x) | Dis_l(x~), 4 I)
    gan_g = F.softplus(-s_rec).mean() + F.softplus(-s_prior).mean()      # -log Dis of both kinds of fake
    gan_d = F.softplus(-s_real).mean() + F.softplus(s_rec).mean() + F.softplus(s_prior).mean()   # -L_GAN
    assert list(ctx.losses) == ["E", "G", "D"] and ctx.steps == ["E", "G", "D"]
    assert torch.allclose(ctx.losses["E"], (kl + llike).double(), rtol=1e-5)
    assert torch.allclose(ctx.losses["G"], (0.3 * llike + gan_g).double(), rtol=1e-5)
    assert torch.allclose(ctx.losses["D"], gan_d.double(), rtol=1e-5)
    assert torch.allclose(logs["kl"], kl, rtol=1e-5) and torch.allclose(logs["rec"], llike, rtol=1e-5)
    assert torch.allclose(logs["pixel_mse"], ((x_rec - x) ** 2).mean(), rtol=1e-5)


def test_each_network_is_trained_by_its_own_loss_only():
    """Algorithm 1: grad E = d(L_prior + L_llike)/dE (no GAN gradient), grad G = d(gamma L_llike - L_GAN)/dG, grad D
    = d(-L_GAN)/dD (no reconstruction gradient); each backward pass leaves nothing on the other networks."""
    algo = _algo(**{"algorithm.gamma": 0.5})
    x = _images()
    ctx = BackwardContext(algo, x)
    torch.manual_seed(3)
    algo.train_step(ctx)
    mu, log_var, _, s_real, f_real, s_rec, f_rec, s_prior = _replay(algo, x, 3)
    kl = gaussian_kl(mu, log_var)
    llike = 0.5 * ((f_real - f_rec) ** 2).sum(1).mean()
    gan_g = F.softplus(-s_rec).mean() + F.softplus(-s_prior).mean()
    gan_d = F.softplus(-s_real).mean() + F.softplus(s_rec).mean() + F.softplus(s_prior).mean()

    def grad(loss, net):
        return torch.autograd.grad(loss, list(algo.nets[net].parameters()), retain_graph=True, allow_unused=True)

    def same(got, want):
        return all(w is None and g is None or g is not None and torch.allclose(g, w, rtol=1e-4, atol=1e-7)
                   for g, w in zip(got, want))

    for group, loss, wrong in [("E", kl + llike, kl + llike + gan_g), ("G", 0.5 * llike + gan_g, gan_g),
                               ("D", gan_d, gan_d + llike)]:
        got = ctx.grads[group]
        assert same(got[group], grad(loss, group)), group
        assert not same(got[group], grad(wrong, group)), f"{group}: the excluded term would have changed nothing"
        assert all(g is None for net, gs in got.items() if net != group for g in gs), group


def test_three_class_discriminator_losses():
    algo = _algo(**{"algorithm.three_class": True})
    assert algo.nets["D"].outputs == 3
    x = _images()
    ctx = BackwardContext(algo, x)
    torch.manual_seed(5)
    algo.train_step(ctx)
    with torch.no_grad():
        mu, log_var, _, s_real, f_real, s_rec, f_rec, s_prior = _replay(algo, x, 5)
    assert s_real.shape == (6, 3)
    logp = [F.log_softmax(s, 1) for s in (s_real, s_rec, s_prior)]
    d = -(logp[0][:, 0].mean() + logp[1][:, 1].mean() + logp[2][:, 2].mean())   # real 0, rec 1, generated 2
    g = -(logp[1][:, 0].mean() + logp[2][:, 0].mean())                          # both fakes called real
    llike = 0.5 * ((f_real - f_rec) ** 2).sum(1).mean()
    assert torch.allclose(ctx.losses["D"], d.double(), rtol=1e-5)
    assert torch.allclose(ctx.losses["G"], (0.1 * llike + g).double(), rtol=1e-5)   # the recipe's gamma 0.1
    assert torch.allclose(ctx.losses["E"], (gaussian_kl(mu, log_var) + llike).double(), rtol=1e-5)


def test_plain_vae_minimises_the_negative_elbo_with_bernoulli_pixels():
    algo = _algo("vae-digits")
    assert set(algo.nets) == {"E", "G"}
    x = _images()
    ctx = BackwardContext(algo, x)
    torch.manual_seed(2)
    algo.train_step(ctx)
    torch.manual_seed(2)
    with torch.no_grad():
        mu, log_var = algo.nets["E"].moments(x)
        x_rec = algo.nets["G"](mu + torch.exp(0.5 * log_var) * torch.randn_like(mu))
    bce = -(x * x_rec.log() + (1 - x) * (1 - x_rec).log()).flatten(1).sum(1).mean()
    elbo = gaussian_kl(mu, log_var) + bce
    assert torch.allclose(ctx.losses["E"], elbo.double(), rtol=1e-5)
    assert torch.allclose(ctx.losses["G"], bce.double(), rtol=1e-5)     # KL does not depend on the decoder
    assert all(g is None for g in ctx.grads["E"]["G"]) and all(g is None for g in ctx.grads["G"]["E"])


def test_pixel_reconstruction_in_vaegan_is_the_gaussian_of_the_image():
    algo = _algo(**{"algorithm.reconstruction": "pixels", "algorithm.sigma": 0.5})
    a, b = _images(4, 1), _images(4, 2)
    assert torch.allclose(algo.reconstruction_loss(a, b), ((a - b) ** 2).flatten(1).sum(1).mean() / (2 * 0.25))


# ------------------------------------------------------------------------------------------------- networks
def test_network_shapes_and_the_feature_layer():
    E = vaegan_encoder(latent_dim=7, channels=3, image_size=32, filters=(4, 8, 8), hidden=16)
    mu, log_var = E.moments(torch.rand(2, 3, 32, 32))
    assert mu.shape == log_var.shape == (2, 7) and E.stochastic
    G = VAEGANDecoder(latent_dim=7, image_size=32, channels=3, filters=(8, 8, 4))
    assert G(torch.randn(2, 7)).shape == (2, 3, 32, 32) and G.value_range == (-1.0, 1.0)
    D = VAEGANDiscriminator(image_size=28, channels=1, filters=(4, 6, 8), hidden=8, feature_layer=2)
    scores, features = D.forward_with_layer(torch.rand(3, 1, 28, 28))
    assert scores.shape == (3,) and features.shape == (3, 6 * 14 * 14)       # block 2: 6 channels at 14 px
    assert VAEGANDiscriminator(image_size=28, channels=1, filters=(4, 6, 8)).forward_with_layer(
        torch.rand(3, 1, 28, 28))[1].shape == (3, 8 * 7 * 7)                # default: the last conv block


@pytest.mark.parametrize("overrides,fragment", [
    ({"algorithm.likelihood": "bernoulli"}, "pixel likelihood of images in [0, 1]"),
    ({"algorithm.three_class": True, "objective.name": "lsgan"}, "3-way cross-entropy"),
    ({"networks.E.stochastic": False}, "needs a stochastic encoder"),
    ({"networks.D.feature_layer": 4}, "feature_layer must be a conv block 1..3"),
    ({"networks.D.outputs": 3}, "remove networks.D.outputs"),
    ({"algorithm.gamma": 0}, "gamma and algorithm.sigma must be > 0"),
    ({"objective.name": "wgan-gp"}, "does not provide"),
    ({"networks.G.filters": [8, 4, 4]}, "divisible by 8"),
])
def test_bad_settings_are_refused_in_one_line(overrides, fragment):
    with pytest.raises(ConfigError) as e:
        _algo(**overrides)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("overrides,fragment", [
    ({"algorithm.reconstruction": "features"}, "no discriminator to measure features"),
    ({"objective.name": "lsgan"}, "objective 'lsgan' would be ignored"),
    ({"algorithm.likelihood": "gaussian", "networks.G.out_activation": "tanh"}, None),   # fine: a Gaussian of pixels
    ({"networks.G.out_activation": "tanh"}, "pixel likelihood of images in [0, 1]"),
])
def test_vae_refuses_what_needs_a_discriminator_or_another_range(overrides, fragment):
    if fragment is None:
        assert _algo("vae-digits", **overrides).likelihood == "gaussian"
        return
    with pytest.raises(ConfigError) as e:
        _algo("vae-digits", **overrides)
    assert fragment in str(e.value) and "\n" not in str(e.value)
