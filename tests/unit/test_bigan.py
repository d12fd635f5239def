"""BiGAN / ALI: the joint discriminator's and the G/E losses against direct computation, which networks each update
trains, the stochastic encoder's reparameterisation, the networks' shapes and one-line refusals of bad settings."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.models.bigan import conv_encoder, conv_joint_discriminator, mlp_encoder

from conftest import RecordingContext

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

INFO = DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=0)
TINY = {"networks.G.hidden": [16], "networks.E.hidden": [16], "networks.D.hidden": [16],
        "networks.D.z_hidden": [8], "networks.D.joint_hidden": [8], "algorithm.latent_dim": 6}


def _algo(recipe: str = "bigan-digits", **overrides):
    return build_algorithm(load_config(recipe, overrides={**(TINY if recipe == "bigan-digits" else {}), **overrides}),
                           INFO)


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------- the losses
@pytest.mark.parametrize("ge_loss", ["swapped", "negated"])
def test_step_losses_match_direct_computation(ge_loss):
    # BiGAN's own uniform noise, and no dropout in D so that its scores can be recomputed exactly
    algo = _algo(**{"algorithm.ge_loss": ge_loss, "algorithm.latent_dist": "uniform", "networks.D.dropout": 0.0})
    G, E, D = algo.nets["G"], algo.nets["E"], algo.nets["D"]
    x = _images()
    ctx = RecordingContext(Batch(x, None))
    torch.manual_seed(7)
    logs = algo.train_step(ctx)
    torch.manual_seed(7)
    z = torch.rand(len(x), 6) * 2 - 1                       # the step's U(-1, 1) noise, drawn first
    with torch.no_grad():
        s_real, s_fake = D(x, E(x)).double(), D(G(z), z).double()
    # D: encoder pairs real, decoder pairs fake (the value function's log-loss)
    d_loss = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
    # G and E: inverted labels (-log D(G(z), z) - log(1 - D(x, E(x)))) or the game itself (-L_D)
    ge = F.softplus(-s_fake).mean() + F.softplus(s_real).mean() if ge_loss == "swapped" else -d_loss
    (g_d, loss_d), (g_ge, loss_ge) = ctx.updates
    assert (g_d, g_ge) == ("D", "G")
    assert torch.allclose(loss_d, d_loss, atol=1e-5) and torch.allclose(loss_ge, ge, atol=1e-5)
    if ge_loss == "swapped":   # G's part and E's part of the swapped loss
        assert torch.allclose(logs["g_part"].double(), F.softplus(-s_fake).mean(), atol=1e-5)
        assert torch.allclose(logs["e_part"].double(), F.softplus(s_real).mean(), atol=1e-5)


def test_least_squares_swaps_the_targets():
    algo = _algo(**{"objective.name": "lsgan"})
    real, fake = torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.5])
    obj = algo.objective
    assert torch.allclose(algo.discriminator_losses(real, fake)["d_loss"], obj.d_loss(real, fake))
    # E wants its pairs scored as fakes, G its pairs as reals
    assert torch.allclose(algo.generator_losses(real, fake)["ge_loss"],
                          obj.d_real_loss(fake) + obj.d_fake_loss(real))


class GradientContext(RecordingContext):
    """Backpropagates each update and records which networks got a gradient, then clears them (no step)."""

    def __init__(self, algo, batch):
        super().__init__(batch)
        self.algo, self.got = algo, {}

    def update(self, group: str, loss: torch.Tensor) -> None:
        for p in self.algo.parameters():
            p.grad = None
        loss.backward()
        self.got[group] = {key: any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())
                           for key, net in self.algo.nets.items()}


@pytest.mark.parametrize("recipe", ["bigan-digits", "ali"])
def test_each_update_trains_only_its_networks(recipe):
    overrides = {} if recipe == "bigan-digits" else {
        "networks.E.filters": [4, 8], "networks.E.hidden": 16, "networks.D.filters": [4, 8],
        "networks.D.z_hidden": [8], "networks.D.joint_hidden": [8], "networks.G.filters": [8, 8, 4],
        "algorithm.latent_dim": 6}
    algo = _algo(recipe, **overrides)
    ctx = GradientContext(algo, Batch(_images(), None))
    algo.train_step(ctx)
    assert ctx.got["D"] == {"G": False, "E": False, "D": True}
    assert ctx.got["G"] == {"G": True, "E": True, "D": False}
    assert algo.optimizer_groups == {"G": ("G", "E"), "D": ("D",)}


# ------------------------------------------------------------------------------------------------- the networks
def test_stochastic_encoder_reparameterises():
    torch.manual_seed(0)
    E = mlp_encoder(latent_dim=5, sample_shape=(1, 28, 28), hidden=[16], stochastic=True)
    x = _images(4)
    mean, log_var = E.moments(x)
    assert mean.shape == log_var.shape == (4, 5)
    eps = torch.randn(4, 5)
    z = E(x, eps)
    assert torch.allclose(z, mean + torch.exp(0.5 * log_var) * eps)
    assert torch.equal(E.mean(x), mean) and not torch.equal(E(x), E(x))    # fresh noise each call
    z.sum().backward()     # the gradient reaches the log-variance through the sample: the trick
    log_var_rows = E.head.weight.grad[5:]
    assert bool(log_var_rows.abs().sum() > 0)
    D = mlp_encoder(latent_dim=5, sample_shape=(1, 28, 28), hidden=[16])
    assert D.moments(x)[1] is None and torch.equal(D(x), D.mean(x)) and D.head.out_features == 5


def test_conv_networks_and_encode_translate():
    E = conv_encoder(latent_dim=7, filters=[4, 8], hidden=16)
    D = conv_joint_discriminator(latent_dim=7, filters=[4, 8], z_hidden=[8], joint_hidden=[8], dropout=0.2)
    x = _images(3)
    assert E(x).shape == (3, 7) and D(x, E(x)).shape == (3,)
    with pytest.raises(ConfigError, match="divisible by 8"):
        conv_encoder(latent_dim=7, filters=[4, 8, 8], image_size=28)
    algo = _algo()
    rec = algo.translate(x)
    with torch.no_grad():
        algo.eval()
        assert torch.equal(rec, algo.nets["G"](algo.nets["E"](x)))
    assert algo.encode(x).shape == (3, 6)


def test_refusals_are_one_line():
    with pytest.raises(ConfigError, match="stochastic encoder.*networks.E.stochastic=true"):
        _algo("ali", **{"networks.E.stochastic": False})
    with pytest.raises(ConfigError, match="ge_loss must be one of"):
        _algo(**{"algorithm.ge_loss": "flipped"})
    with pytest.raises(ConfigError, match="objective 'ebgan'"):
        _algo(**{"objective.name": "ebgan"})
    plain = build_algorithm(load_config("dcgan-mnist-quick"), INFO)
    with pytest.raises(ConfigError, match="has no encoder"):
        plain.encode(_images(1))
