"""StackGAN and StackGAN++: conditioning augmentation and its KL term, the colour-consistency term and the per-scale
losses against direct computation, the networks' scales and stages, a stage-II step that leaves stage I untouched,
and one-line refusals of bad settings."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.stackgan import colour_consistency, colour_statistics, real_scales
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.errors import ConfigError
from ganforge.models.stackgan import MultiScaleDiscriminator, StackedGenerator, TreeGenerator, scale_sizes
from ganforge.nn.conditioning_augmentation import ConditioningAugmentation, kl_to_standard_normal

from conftest import RecordingContext

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)


# ------------------------------------------------------------------------------------ conditioning augmentation
def test_conditioning_augmentation_is_mu_plus_sigma_eps_from_one_fc_layer():
    torch.manual_seed(0)
    ca = ConditioningAugmentation(embed_dim=12, cond_dim=5)
    phi, eps = torch.randn(4, 12), torch.randn(4, 5)
    c, mu, logvar = ca(phi, eps)
    out = phi @ ca.fc.weight.T + ca.fc.bias                       # one FC layer to 2 x cond_dim, split in two
    assert torch.allclose(mu, out[:, :5]) and torch.allclose(logvar, out[:, 5:])
    assert torch.allclose(c, out[:, :5] + torch.exp(out[:, 5:] / 2) * eps)
    # drawn eps: c is N(mu, sigma^2) around each embedding's mean
    many = ca(phi[:1].expand(20000, -1))[0]
    assert torch.allclose(many.mean(0), mu[0], atol=0.05)
    assert torch.allclose(many.std(0), torch.exp(logvar[0] / 2), rtol=0.05)
    relu = ConditioningAugmentation(12, 5, activation="relu")   # the authors' v1 code: logvar >= 0
    assert float(relu.moments(phi)[1].detach().min()) >= 0
    with pytest.raises(ConfigError, match="ca_activation"):
        ConditioningAugmentation(12, 5, activation="glu")


def test_kl_term_is_the_closed_form_kl_to_the_standard_normal():
    torch.manual_seed(1)
    mu, logvar = torch.randn(6, 8), torch.randn(6, 8)
    q = torch.distributions.Normal(mu, torch.exp(logvar / 2))
    p = torch.distributions.Normal(torch.zeros(8), torch.ones(8))
    direct = torch.distributions.kl_divergence(q, p).sum(1).mean()      # summed over dims, mean over the batch
    assert torch.allclose(kl_to_standard_normal(mu, logvar), direct, atol=1e-5)
    assert float(kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0   # spec 20: 0 at N(0, I)


# ------------------------------------------------------------------------------------ colour consistency
def test_colour_consistency_is_the_papers_mean_and_covariance_term():
    torch.manual_seed(2)
    fine, coarse = torch.rand(3, 3, 8, 8) * 2 - 1, torch.rand(3, 3, 4, 4) * 2 - 1
    expected = []
    for f, c in zip(fine.numpy(), coarse.numpy()):
        pf, pc = f.reshape(3, -1), c.reshape(3, -1)
        mean_gap = ((pf.mean(1) - pc.mean(1)) ** 2).sum()
        cov_gap = ((np.cov(pf, bias=True) - np.cov(pc, bias=True)) ** 2).sum()    # squared Frobenius norm
        expected.append(1.0 * mean_gap + 5.0 * cov_gap)
    assert float(colour_consistency(fine, coarse, 1.0, 5.0)) == pytest.approx(np.mean(expected), rel=1e-4)
    mean, cov = colour_statistics(fine)
    assert mean.shape == (3, 3) and cov.shape == (3, 3, 3)
    # the same colours at another size cost nothing: the term ties statistics, not pixels
    assert float(colour_consistency(fine, F.interpolate(fine, scale_factor=2, mode="nearest"))) == pytest.approx(
        0.0, abs=1e-6)


# ------------------------------------------------------------------------------------ networks
def test_the_tree_shares_hidden_features_and_each_scale_has_its_discriminator():
    assert scale_sizes(64, 3) == (16, 32, 64) and scale_sizes(256, 3) == (64, 128, 256)
    torch.manual_seed(3)
    g = TreeGenerator(latent_dim=10, image_size=32, channels=3, branches=3, width=8)
    images, mu, logvar = g.forward_all(torch.randn(2, 10))
    assert [tuple(i.shape) for i in images] == [(2, 3, 8, 8), (2, 3, 16, 16), (2, 3, 32, 32)] and mu is None
    assert len(g.branches) == 2 and len(g.heads) == 3             # one trunk, a head per scale
    cond = TreeGenerator(latent_dim=10, image_size=32, channels=1, branches=2, text_dim=6, ca_dim=4, width=8)
    images, mu, logvar = cond.forward_all(torch.randn(2, 10), torch.randn(2, 6))
    assert [i.shape[-1] for i in images] == [16, 32] and mu.shape == logvar.shape == (2, 4)
    d = MultiScaleDiscriminator((8, 16, 32), channels=3, text_dim=6, width=4)
    u, c = d(2, torch.randn(2, 3, 32, 32), torch.randn(2, 6))
    assert u.shape == c.shape == (2,)
    assert d(0, torch.randn(2, 3, 8, 8))[1] is None               # no text, no conditional score


def test_stage_two_refines_the_stage_one_image_with_its_own_ca():
    torch.manual_seed(4)
    g = StackedGenerator(latent_dim=10, image_size=32, channels=1, text_dim=6, stage2_scale=2, ca_dim=4, width=8,
                         stage2_width=4, down=2, res_blocks=1)
    assert g.sizes == (16, 32) and g.stage2.ca is not g.ca        # errata 25: stage II has its own CA
    phi = torch.randn(3, 6)
    low, mu, _ = g.stage_one(torch.randn(3, 10), phi)
    high, mu2, _ = g.stage_two(low, phi)
    assert low.shape == (3, 1, 16, 16) and high.shape == (3, 1, 32, 32) and not torch.equal(mu, mu2)
    with pytest.raises(ConfigError, match="stage2_scale"):
        StackedGenerator(latent_dim=10, image_size=32, text_dim=6, stage2_scale=3)
    with pytest.raises(ConfigError, match="down"):
        StackedGenerator(latent_dim=10, image_size=32, text_dim=6, stage2_scale=2, down=3)


# ------------------------------------------------------------------------------------ StackGAN++'s step
TINY2 = {"networks.G.width": 8, "networks.D.width": 4, "networks.D.max_width": 8, "algorithm.latent_dim": 8,
         "networks.G.res_blocks": 1}


def _colour_algo(**over):
    info = DataInfo(kind="image", sample_shape=(3, 32, 32), num_classes=0, keys=("image", "label", "text"))
    return build_algorithm(load_config("stackgan2-colour", {**TINY2, **over}), info)


def test_the_unconditional_step_sums_each_scales_losses_and_the_colour_term():
    algo = _colour_algo()
    assert algo.sizes == (8, 16, 32) and not algo.conditional and algo.nets["G"].ca is None
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    ctx = RecordingContext(Batch(x, None))
    torch.manual_seed(5)
    logs = algo.train_step(ctx)
    (_, d_loss), (_, g_loss) = ctx.updates
    # direct computation with the same draws: the non-saturating losses of every scale's D, summed
    torch.manual_seed(5)
    G, D = algo.nets["G"], algo.nets["D"]
    z = torch.randn(4, 8)
    fakes = G.forward_all(z)[0]
    reals = [F.avg_pool2d(x, 4), F.avg_pool2d(x, 2), x]
    d_direct = sum(F.softplus(-D(i, r)[0]).mean() + F.softplus(D(i, f)[0]).mean()
                   for i, (r, f) in enumerate(zip(reals, fakes)))
    g_direct = sum(F.softplus(-D(i, f)[0]).mean() for i, f in enumerate(fakes))
    colour = colour_consistency(fakes[1], fakes[0]) + colour_consistency(fakes[2], fakes[1])
    assert float(d_loss) == pytest.approx(float(d_direct.detach()), rel=1e-5)
    assert float(g_loss) == pytest.approx(float((g_direct + colour).detach()), rel=1e-5)
    assert float(logs["colour"]) == pytest.approx(float(colour.detach()), rel=1e-5)
    assert [tuple(r.shape[-2:]) for r in real_scales(x, algo.sizes)] == [(8, 8), (16, 16), (32, 32)]
    off = _colour_algo(**{"algorithm.colour_mean_weight": 0.0, "algorithm.colour_cov_weight": 0.0})
    assert "colour" not in off.train_step(RecordingContext(Batch(x, None)))


def test_bad_settings_are_one_line_refusals():
    with pytest.raises(ConfigError, match="branches"):
        _colour_algo(**{"algorithm.branches": 4})                  # 32 px over 4 scales: a 4 px coarsest scale
    with pytest.raises(ConfigError, match="colour_cov_weight"):
        _colour_algo(**{"algorithm.colour_cov_weight": -1.0})
    with pytest.raises(ConfigError, match="objective"):
        _colour_algo(**{"objective.name": "wgan-gp"})


# ------------------------------------------------------------------------------------ the text-conditional steps
TEXT_LEN = 7


def _text_info(size: int = 32) -> DataInfo:
    return DataInfo(kind="image", sample_shape=(1, size, size), num_classes=10, keys=("image", "label", "text"),
                    field_shapes={"text": (TEXT_LEN,)})


def _text_batch(n: int = 4, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(9)
    tokens = torch.randint(1, 40, (n, TEXT_LEN), generator=g)
    return Batch(torch.rand(n, 1, size, size, generator=g) * 2 - 1, torch.arange(n), {"text": tokens})


TEXT_TINY = {"networks.G.width": 8, "networks.G.ca_dim": 6, "networks.D.width": 4, "networks.D.max_width": 8,
             "networks.D.compress_dim": 5, "algorithm.latent_dim": 8, "algorithm.text_dim": 12,
             "networks.T.word_dim": 8}


def test_the_conditional_tree_adds_the_matching_aware_term_and_the_kl_term():
    algo = build_algorithm(load_config("stackgan2-digits", TEXT_TINY), _text_info())
    assert algo.conditional and "T" in algo.nets and "T" not in algo.optimizer_groups["G"] + algo.optimizer_groups["D"]
    batch = _text_batch()
    ctx = RecordingContext(batch)
    torch.manual_seed(11)
    algo.train_step(ctx)
    (_, d_loss), (_, g_loss) = ctx.updates
    from ganforge.algorithms.text_conditioning import wrong_indices
    with torch.no_grad():
        torch.manual_seed(11)
        tokens = batch["text"]
        right = algo.text_encoder(tokens)
        wrong = algo.text_encoder(tokens[wrong_indices(tokens)])
        z = torch.randn(4, 8)
        G, D = algo.nets["G"], algo.nets["D"]
        fakes, mu, logvar = G.forward_all(z, right)
        reals = [F.avg_pool2d(batch.x, 4), F.avg_pool2d(batch.x, 2), batch.x]
        sp = F.softplus
        d_direct = g_direct = 0.0
        for i, (r, f) in enumerate(zip(reals, fakes)):
            ur, cr = D(i, r, right)
            uf, cf = D(i, f, right)
            _, cw = D(i, r, wrong)
            # unconditional: -log D(x) - log(1 - D(s));
            # GAN-CLS: -log D(x, phi) - (log(1 - D(x, phi')) + log(1 - D(s, phi))) / 2
            d_direct += sp(-ur).mean() + sp(uf).mean() + sp(-cr).mean() + 0.5 * (sp(cw).mean() + sp(cf).mean())
            g_direct += 0.5 * (sp(-uf).mean() + sp(-cf).mean())
        g_direct += algo.kl_weight * kl_to_standard_normal(mu, logvar)     # no colour term for text
    assert float(d_loss) == pytest.approx(float(d_direct.detach()), rel=1e-5)
    assert float(g_loss) == pytest.approx(float(g_direct), rel=1e-5)


class SGDContext(RecordingContext):
    """RecordingContext that also applies plain SGD to the group's parameters that received a gradient."""

    def __init__(self, batch, algo, phase=None):
        super().__init__(batch)
        self.algo, self.phase = algo, phase

    def update(self, group: str, loss: torch.Tensor) -> None:
        super().update(group, loss)
        params = [p for k in self.algo.optimizer_groups[group] for p in self.algo.nets[k].parameters()]
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p -= 0.1 * p.grad


def test_stage_two_trains_with_stage_one_fixed_and_stage_one_alone_first():
    from ganforge.train.phases import phase_at
    algo = build_algorithm(load_config("stackgan-digits", {**TEXT_TINY, "networks.G.stage2_width": 4}), _text_info())
    phases = load_config("stackgan-digits").train.phases
    assert algo.sizes == (16, 32) and algo.stage(phase_at(phases, 0)) == 1 and algo.stage(phase_at(phases, phases[0].steps)) == 2
    G, D = algo.nets["G"], algo.nets["D"]

    def snapshot():
        return {k: v.clone() for k, v in {**{f"G.{k}": v for k, v in G.state_dict().items()},
                                          **{f"D.{k}": v for k, v in D.state_dict().items()}}.items()}

    def changed(before, after, prefix):
        return {k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])}

    before = snapshot()
    logs = algo.train_step(SGDContext(_text_batch(), algo, phase_at(phases, 0)))
    after = snapshot()
    assert logs["stage"] == 1.0
    assert all(changed(before, after, prefix) for prefix in ("G.root.", "G.ca.", "D.scales.0."))
    assert not changed(before, after, "G.stage2.") and not changed(before, after, "D.scales.1.")

    logs = algo.train_step(SGDContext(_text_batch(), algo, phase_at(phases, phases[0].steps)))
    final = snapshot()
    assert logs["stage"] == 2.0
    assert changed(after, final, "G.stage2.ca.") and changed(after, final, "G.stage2.ups.")
    # stage I fixed: its weights and its BatchNorm statistics, and its discriminator, as stage I left them
    for prefix in ("G.root.", "G.ca.", "G.head.", "D.scales.0."):
        assert not changed(after, final, prefix), prefix
    # samples: stage I's image enlarged during stage I; both stages' columns in stage II
    inputs = algo.sample_inputs(3, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert set(inputs) == {"z", "text_emb", "eps", "eps_2"}
    assert list(algo.grid_panels(inputs, algo.nets)) == ["stage I (16 px)", "stage II (32 px)"]
    algo.enter_phase(phase_at(phases, 0))
    assert list(algo.grid_panels(inputs, algo.nets)) == ["stage I (16 px)"]
    assert algo.generate(inputs).shape == (3, 1, 32, 32)


def test_text_settings_are_refused_in_one_line():
    from ganforge.errors import DataError
    with pytest.raises(DataError, match="text"):
        build_algorithm(load_config("stackgan-digits", TEXT_TINY), DataInfo(kind="image", sample_shape=(1, 32, 32),
                                                                            num_classes=10, keys=("image", "label")))
    with pytest.raises(ConfigError, match="image_size=24"):
        algo = build_algorithm(load_config("stackgan-digits", TEXT_TINY), _text_info())
        algo.check_phases([type("P", (), {"image_size": 24})()])
