"""The regularizers and training techniques as wired into the adversarial step, the networks that carry them, and the
spectral-norm switch of the builder: each checked against a direct computation on tiny networks."""
from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ganforge.algorithms import Batch
from ganforge.build import build
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.models.autoencoder import ConvAutoEncoderDiscriminator, MLPAutoEncoderDiscriminator
from ganforge.models.dcgan import BookDCGANDiscriminator, BookDCGANGenerator
from ganforge.models.mlp import MLPGenerator
from ganforge.nn import VirtualBatchNorm, weight_as_matrix
from ganforge.nn.spectral import output_dim
from ganforge.objectives.classic import NonSaturating
from ganforge.objectives.energy import pullaway_term
from ganforge.regularizers import HistoricalAverageBuffers, feature_matching_loss, orthogonal_regularization

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


TINY_TOY = {"train.batch_size": 16, "networks.G.hidden": [16, 16], "networks.D.hidden": [16, 16]}


class RecordingContext:
    """A StepContext that records every (group, loss) update and, if given optimizers, applies it."""

    def __init__(self, batch: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer] | None = None):
        self.step, self.batch, self.optimizers = 0, batch, optimizers or {}
        self.updates: list[tuple[str, float]] = []

    def real_batch(self) -> Batch:
        return Batch(self.batch, None)

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def update(self, group: str, loss: torch.Tensor) -> None:
        self.updates.append((group, float(loss.detach())))
        if group in self.optimizers:
            self.optimizers[group].zero_grad(set_to_none=True)
            loss.backward()
            self.optimizers[group].step()


def make(recipe: str, **overrides: Any):
    """The built algorithm of ``recipe`` (tiny toy networks) and a real batch of 16 points."""
    cfg = load_config(recipe, {**TINY_TOY, **overrides})
    built = build(cfg)
    real = built.dataset.x[:16].float()
    return built.algorithm, real


def largest(net: nn.Module) -> float:
    return max(float(p.detach().abs().max()) for p in net.parameters())


def optimizers(algo, lr: float = 1e-2) -> dict[str, torch.optim.Optimizer]:
    return {g: torch.optim.SGD([p for k in keys for p in algo.nets[k].parameters()], lr=lr)
            for g, keys in algo.optimizer_groups.items()}


# ---------------------------------------------------------------------------------------------------- clipping
def test_weight_clipping_bounds_every_critic_weight_after_a_step() -> None:
    algo, real = make("wgan-toy")
    D = algo.nets["D"]
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(10.0)                                     # far outside [-0.01, 0.01]
    assert largest(D) > 0.01
    algo.train_step(RecordingContext(real, optimizers(algo)))
    assert largest(D) <= float(torch.tensor(0.01))            # c in float32
    assert largest(algo.nets["G"]) > 0.01                       # only the critic is clipped


def test_weight_clip_for_any_objective_and_its_conflict_with_the_objective() -> None:
    algo, real = make("hinge-sn-toy", **{"algorithm.weight_clip": 0.05})
    algo.train_step(RecordingContext(real, optimizers(algo, lr=1.0)))
    assert largest(algo.nets["D"]) <= float(torch.tensor(0.05))
    with pytest.raises(ConfigError, match="disagree"):
        make("wgan-toy", **{"algorithm.weight_clip": 0.05})
    algo, _ = make("wgan-toy", **{"algorithm.weight_clip": 0.05, "objective.clip_value": None})
    assert algo.weight_clip == 0.05


# ---------------------------------------------------------------------------------------------------- penalties
def test_wgan_gp_penalty_is_added_to_every_critic_loss() -> None:
    algo, real = make("wgan-gp-toy")
    ctx = RecordingContext(real)
    logs, _ = algo.discriminator_step(ctx)
    (group, loss), = ctx.updates
    assert group == "D" and float(logs["gp"]) > 0
    assert loss == pytest.approx(float(logs["d_loss"]) + float(logs["gp"]), rel=1e-6)


def test_gradient_penalty_value_is_lambda_times_the_squared_norm_gap_on_interpolates() -> None:
    algo, real = make("wgan-gp-toy")
    D, fake = algo.nets["D"], torch.randn(16, 2)
    torch.manual_seed(3)
    penalty = algo.objective.d_penalty(D, real, fake)
    torch.manual_seed(3)
    eps = torch.rand(16).view(16, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    expected = 10.0 * (grad.norm(dim=1) - 1.0).square().mean()
    assert float(penalty.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_general_gradient_penalty_and_r1_enter_the_loss() -> None:
    algo, real = make("hinge-sn-toy", **{"algorithm.gp_weight": 5.0, "algorithm.r1_gamma": 2.0})
    ctx = RecordingContext(real)
    logs, _ = algo.discriminator_step(ctx)
    (_, loss), = ctx.updates
    assert float(logs["gp"]) > 0 and float(logs["r1"]) > 0
    assert loss == pytest.approx(float(logs["d_loss"] + logs["gp"] + logs["r1"]), rel=1e-6)
    with pytest.raises(ConfigError, match="already adds its gradient penalty"):
        make("wgan-gp-toy", **{"algorithm.gp_weight": 10.0})


def test_separate_updates_put_r1_on_the_real_update_and_gp_on_the_fake_update() -> None:
    algo, real = make("lsgan-toy", **{"algorithm.d_update": "separate", "algorithm.gp_weight": 1.0,
                                      "algorithm.r1_gamma": 1.0})
    ctx = RecordingContext(real)
    logs, _ = algo.discriminator_step(ctx)
    (_, loss_real), (_, loss_fake) = ctx.updates
    assert loss_real + loss_fake == pytest.approx(2 * float(logs["d_loss"]) + float(logs["gp"] + logs["r1"]), rel=1e-5)
    D = algo.nets["D"]
    assert loss_real == pytest.approx(float(algo.objective.d_real_loss(D(real)).detach() + logs["r1"]), rel=1e-5)


def test_orthogonal_regularisation_is_added_per_network() -> None:
    algo, real = make("hinge-sn-toy", **{"algorithm.orthogonal_reg": {"G": 1e-2, "D": 1e-3}})
    ctx = RecordingContext(real)
    logs = algo.train_step(ctx)
    with torch.no_grad():
        expected = float(orthogonal_regularization(algo.nets["G"], 1e-2))
    assert float(logs["ortho_G"]) == pytest.approx(expected, rel=1e-5)
    assert float(logs["ortho_D"]) > 0
    with pytest.raises(ConfigError, match="unknown network"):
        make("hinge-sn-toy", **{"algorithm.orthogonal_reg": {"Q": 1.0}})


def test_historical_average_buffers_track_the_exact_mean_and_penalise_the_distance() -> None:
    net = nn.Linear(2, 1)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    history = HistoricalAverageBuffers(net)                  # theta[1] = 1
    for value in (2.0, 6.0):
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(value)
        history.update(net)
    assert int(history.steps) == 3 and torch.allclose(history.mean_0, torch.full((1, 2), 3.0))
    penalty = history.penalty(net)
    assert float(penalty.detach()) == pytest.approx(3 * (6.0 - 3.0) ** 2)
    penalty.backward()
    assert torch.allclose(net.weight.grad, torch.full((1, 2), 6.0))   # 2 (theta - mean); the mean is a constant
    assert set(history.state_dict()) == {"steps", "mean_0", "mean_1"}
    with pytest.raises(ValueError, match="different network"):
        history.penalty(nn.Linear(3, 1))


def test_historical_averaging_is_wired_into_both_players_and_kept_as_algorithm_state() -> None:
    algo, real = make("hinge-sn-toy", **{"algorithm.historical_averaging": {"G": 0.5, "D": 0.5}})
    G, D = algo.nets["G"], algo.nets["D"]
    state = algo.state_tensors()
    assert "historical_average.D.steps" in state and "historical_average.G.mean_0" in state
    assert not any("historical_average" in k for k in [*D.state_dict(), *G.state_dict()])   # not in the weights
    logs = algo.train_step(RecordingContext(real, optimizers(algo)))
    assert int(algo.history("D").steps) == 2 and int(algo.history("G").steps) == 2
    assert float(logs["hist_D"]) == 0.0                       # theta equals its mean before the first update
    logs = algo.train_step(RecordingContext(real, optimizers(algo)))
    assert float(logs["hist_D"]) > 0 and float(logs["hist_G"]) > 0


# ---------------------------------------------------------------------------------------------------- label smoothing
def test_one_sided_label_smoothing_changes_only_the_real_target_of_d() -> None:
    scores = torch.tensor([2.0, -1.0, 0.5])
    smooth, plain = NonSaturating(real_label=0.9), NonSaturating()
    expected_real = -(0.9 * F.logsigmoid(scores) + 0.1 * F.logsigmoid(-scores)).mean()
    assert float(smooth.d_real_loss(scores)) == pytest.approx(float(expected_real), rel=1e-6)
    assert float(smooth.d_fake_loss(scores)) == pytest.approx(float(plain.d_fake_loss(scores)))   # fakes: target 0
    assert float(smooth.g_loss(scores)) == pytest.approx(float(plain.g_loss(scores)))             # G: target 1
    with pytest.raises(ConfigError):
        NonSaturating(real_label=1.5)


# ---------------------------------------------------------------------------------------------------- feature matching
def test_feature_matching_replaces_the_generator_loss() -> None:
    algo, real = make("gan-toy", **{"algorithm.generator_loss": "feature_matching"})
    G, D = algo.nets["G"], algo.nets["D"]
    ctx = RecordingContext(real)
    torch.manual_seed(7)
    logs = algo.generator_step(ctx, real)
    torch.manual_seed(7)
    z = algo.noise(len(real), real.device)
    expected = feature_matching_loss(D.features(real), D.features(G(z)))
    assert ctx.updates == [("G", pytest.approx(float(expected.detach()), rel=1e-6))]
    assert float(logs["g_loss"]) == pytest.approx(float(expected.detach()), rel=1e-6)
    torch.manual_seed(7)
    plain_algo, _ = make("gan-toy")
    plain = plain_algo.generator_step(RecordingContext(real), real)
    assert float(plain["g_loss"]) != pytest.approx(float(expected.detach()), rel=1e-3)


def test_feature_matching_added_to_the_objective_and_needs_features() -> None:
    algo, real = make("gan-toy", **{"algorithm.generator_loss": "objective+feature_matching",
                                    "algorithm.feature_matching_weight": 2.0})
    logs = algo.generator_step(RecordingContext(real), real)
    assert float(logs["g_loss"]) == pytest.approx(float(logs["g_adv"] + 2.0 * logs["g_fm"]), rel=1e-6)


def test_forward_with_features_is_the_forward_plus_the_layer_before_the_head() -> None:
    torch.manual_seed(0)
    D = BookDCGANDiscriminator(filters=(4, 4, 4, 8), minibatch_kernels=3, minibatch_kernel_dim=2)
    x = torch.rand(5, 1, 28, 28)
    scores, features = D.forward_with_features(x)
    assert torch.equal(scores, D(x)) and torch.equal(features, D.features(x))
    assert features.shape == (5, 8 * 4 * 4) and D.head.in_features == 8 * 4 * 4 + 3
    # minibatch discrimination: sample 0's score depends on the other samples of the batch
    assert not torch.allclose(D(x)[:1], D(x[:1]))
    plain = BookDCGANDiscriminator(filters=(4, 4, 4, 8))
    assert torch.allclose(plain(x)[:1], plain(x[:1]), atol=1e-6)


# ---------------------------------------------------------------------------------------------------- VBN
@pytest.mark.parametrize("arch", ["dcgan-book", "mlp"])
def test_virtual_batch_norm_generator_output_does_not_depend_on_the_rest_of_the_batch(arch: str) -> None:
    torch.manual_seed(0)
    if arch == "dcgan-book":
        G = BookDCGANGenerator(latent_dim=8, filters=(8, 4, 4), norm="virtual", vbn_reference_size=6)
    else:
        G = MLPGenerator(latent_dim=8, sample_shape=(2,), hidden=(16, 16), norm="virtual", vbn_reference_size=6)
    assert G.uses_virtual_batch_norm and any(isinstance(m, VirtualBatchNorm) for m in G.modules())
    G.set_vbn_reference(torch.randn(6, 8))
    z = torch.randn(5, 8)
    together = G(z)
    alone = torch.cat([G(z[i:i + 1]) for i in range(5)])
    assert torch.allclose(together, alone, atol=1e-5)
    # refreshing with the same weights records the same statistics; a changed network records new ones
    layer = next(m for m in G.modules() if isinstance(m, VirtualBatchNorm))
    before = layer.ref_mean.clone()
    G.refresh_virtual_batch_norm()
    assert torch.allclose(layer.ref_mean, before)
    assert "vbn_reference" in G.state_dict()
    plain = BookDCGANGenerator(latent_dim=8, filters=(8, 4, 4))
    assert not plain.uses_virtual_batch_norm


def test_vbn_reference_is_fixed_by_setup_from_the_latent_distribution() -> None:
    algo, real = make("gan-toy", **{"networks.G.norm": "virtual", "networks.G.vbn_reference_size": 32})
    G = algo.nets["G"]
    facts = algo.setup(None, torch.device("cpu"))
    assert facts == {"vbn_reference_size": 32}
    assert bool(G.vbn_reference_set) and G.vbn_reference.abs().sum() > 0
    ref = G.vbn_reference.clone()
    algo.train_step(RecordingContext(real, optimizers(algo)))
    assert torch.equal(G.vbn_reference, ref)                   # the reference batch is chosen once


# ---------------------------------------------------------------------------------------------------- spectral norm
def test_spectral_norm_switch_normalises_every_weight_layer_of_any_architecture() -> None:
    algo, real = make("gan-toy", **{"networks.D.spectral_norm": True})
    D, G = algo.nets["D"], algo.nets["G"]
    layers = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(parametrize.is_parametrized(m, "weight") for m in G.modules() if isinstance(m, nn.Linear))
    for _ in range(30):                                       # power iterations run in every training forward
        D(real)
    for layer in layers:
        sigma = torch.linalg.matrix_norm(weight_as_matrix(layer.weight.detach(), output_dim(layer)), 2)
        assert float(sigma) == pytest.approx(1.0, abs=1e-3)
    plain, _ = make("gan-toy")
    assert not any(parametrize.is_parametrized(m, "weight") for m in plain.nets["D"].modules())


def test_spectral_norm_keys_are_validated_and_unknown_keys_still_rejected() -> None:
    with pytest.raises(ConfigError, match="spectral_norm must be bool"):
        make("gan-toy", **{"networks.D.spectral_norm": "yes"})
    with pytest.raises(ConfigError, match="spectral_norm is not true"):
        make("gan-toy", **{"networks.D.spectral_norm_iterations": 2})
    with pytest.raises(ConfigError, match="spectral_norm_iterations must be >= 1"):
        make("gan-toy", **{"networks.D.spectral_norm": True, "networks.D.spectral_norm_iterations": 0})
    with pytest.raises(ConfigError, match="unknown config key 'networks.D.spectral_nrom'"):
        make("gan-toy", **{"networks.D.spectral_nrom": True})
    algo, _ = make("gan-toy", **{"networks.D.spectral_norm": True, "networks.D.spectral_norm_iterations": 3})
    layer = next(m for m in algo.nets["D"].modules() if isinstance(m, nn.Linear))
    assert layer.parametrizations.weight[0].n_power_iterations == 3


# ---------------------------------------------------------------------------------------------------- energy-based
def test_autoencoder_discriminators_output_the_reconstruction_energy() -> None:
    torch.manual_seed(0)
    conv = ConvAutoEncoderDiscriminator(filters=(4, 4, 8), embedding_dim=6, energy="mse")
    x = torch.rand(3, 1, 28, 28)
    energy, code = conv.forward_with_features(x)
    assert energy.shape == (3,) and code.shape == (3, 6) and bool((energy >= 0).all())
    assert torch.allclose(energy, (conv.reconstruct(x) - x).square().flatten(1).mean(1), atol=1e-6)
    mlp = MLPAutoEncoderDiscriminator(sample_shape=(2,), hidden=(8,), embedding_dim=3, energy="l1")
    v = torch.randn(4, 2)
    assert torch.allclose(mlp(v), (mlp.reconstruct(v) - v).abs().mean(1), atol=1e-6)


def test_ebgan_pullaway_term_is_added_on_the_encoder_codes_of_the_fakes() -> None:
    algo, real = make("ebgan-toy", **{"networks.D.hidden": [16], "algorithm.ae_pretrain_steps": 0})
    G, D = algo.nets["G"], algo.nets["D"]
    ctx = RecordingContext(real)
    torch.manual_seed(5)
    logs = algo.generator_step(ctx, real)
    torch.manual_seed(5)
    fake = G(algo.noise(len(real), real.device))
    energy, codes = D.forward_with_features(fake)
    assert float(logs["g_pt"]) == pytest.approx(float(pullaway_term(codes).detach()), rel=1e-5)
    assert ctx.updates[0][1] == pytest.approx(float((energy.mean() + 0.1 * pullaway_term(codes)).detach()), rel=1e-5)


def test_began_k_t_and_convergence_measure_are_logged_from_the_critic_energies() -> None:
    algo, real = make("began-toy", **{"networks.D.hidden": [16]})
    algo.objective.k = 0.25
    logs, _ = algo.discriminator_step(RecordingContext(real))
    real_e, fake_e = float(logs["d_real"]), float(logs["d_fake"])
    balance = 0.5 * real_e - fake_e
    assert float(logs["k_t"]) == pytest.approx(min(max(0.25 + 0.001 * balance, 0.0), 1.0), rel=1e-6)
    assert float(logs["M"]) == pytest.approx(real_e + abs(balance), rel=1e-6)
    assert algo.extra_state() == {"objective": {"k_t": algo.objective.k}}


def test_energy_objectives_need_an_autoencoder_and_pretraining_lowers_the_energy() -> None:
    with pytest.raises(ConfigError, match="networks.D.arch=autoencoder"):
        make("ebgan-toy", **{"networks.D": {"arch": "mlp", "hidden": [8]}})
    with pytest.raises(ConfigError, match="pre-trains an auto-encoder"):
        make("gan-toy", **{"algorithm.ae_pretrain_steps": 5})
    cfg = load_config("ebgan-toy", {**TINY_TOY, "algorithm.ae_pretrain_steps": 60, "networks.D.hidden": [32]})
    built = build(cfg)
    torch.manual_seed(0)
    facts = built.algorithm.setup(built.dataset, torch.device("cpu"))
    assert facts["ae_pretrain_steps"] == 60 and facts["ae_energy_last"] < 0.5 * facts["ae_energy_first"]


def test_feature_matching_without_features_is_a_config_error() -> None:
    class Plain(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(1)

    from ganforge.algorithms.adversarial import Adversarial
    from ganforge.algorithms.base import DataInfo
    info = DataInfo("vector", (2,), 0)
    G = MLPGenerator(latent_dim=4, sample_shape=(2,), hidden=(4,), out_activation="none")
    with pytest.raises(ConfigError, match="forward_with_features"):
        Adversarial({"G": G, "D": Plain()}, NonSaturating(), info, latent_dim=4, generator_loss="feature_matching")


# ---------------------------------------------------------------------------------------------------- reuse_fake
def test_reuse_fake_trains_g_through_the_critic_noise_with_one_forward() -> None:
    """With reuse_fake the G step's loss and G's update are those of a fresh G forward on the critic's noise
    through the updated D (computed directly here), G runs once per step instead of twice, and one noise batch is
    drawn instead of two; without it the G step draws its own noise."""
    import copy
    for reuse in (True, False):
        algo, real = make("gan-toy", **{"algorithm.reuse_fake": reuse})
        G, D = algo.nets["G"], algo.nets["D"]
        draws, forwards = [], [0]
        noise = algo.noise
        algo.noise = lambda n, device, generator=None: draws.append(noise(n, device, generator)) or draws[-1]
        G.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
        G_before = copy.deepcopy(G)
        opts = optimizers(algo)
        ctx = RecordingContext(real, opts)
        algo.train_step(ctx)
        assert (len(draws), forwards[0]) == ((1, 1) if reuse else (2, 2))
        # Direct: the G loss through the D that the critic update left, on the noise the G step used.
        z_g = draws[-1]
        with torch.no_grad():
            expected = NonSaturating().g_loss(D(G_before(z_g)))
        assert ctx.updates[-1][0] == "G"
        assert ctx.updates[-1][1] == pytest.approx(float(expected), rel=1e-6)
        if reuse:
            assert torch.equal(draws[0], z_g)     # the critic's noise


def test_reuse_fake_refuses_eval_mode_fakes() -> None:
    with pytest.raises(ConfigError, match="reuse_fake"):
        make("gan-toy", **{"algorithm.reuse_fake": True, "algorithm.fake_bn": "eval"})
