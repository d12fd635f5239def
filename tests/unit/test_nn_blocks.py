"""Spectral normalisation, minibatch discrimination, minibatch stddev and virtual batch norm vs direct computation."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.nn import (MinibatchDiscrimination, MinibatchStdDev, VirtualBatchNorm, apply_spectral_norm,
                         refresh_references, spectral_norm_estimate, weight_as_matrix)
from ganforge.nn.spectral import output_dim


def relative_error(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    return float((estimate - exact).abs() / exact)


@pytest.mark.parametrize("shape", [(16, 32), (8, 4, 3, 3)], ids=["linear", "conv"])
def test_power_iteration_estimate_matches_the_spectral_norm(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    matrix = weight_as_matrix(torch.randn(*shape))
    exact = torch.linalg.matrix_norm(matrix, 2)
    u0 = torch.randn(matrix.shape[0])
    one_step, _, _ = spectral_norm_estimate(matrix, u0, iters=1)
    sigma, u, v = spectral_norm_estimate(matrix, u0, iters=200)
    assert relative_error(sigma, exact) < 1e-3
    assert float(one_step) <= float(exact) * (1 + 1e-6)          # u^T W v with unit u, v never exceeds sigma_1
    assert torch.allclose(matrix @ v, sigma * u, atol=1e-4)       # (u, v) is the top singular pair
    # continuing from the returned u (SNGAN carries u across steps) converges the same way
    continued, _, _ = spectral_norm_estimate(matrix, u, iters=1)
    assert relative_error(continued, exact) < 1e-3


def test_weight_as_matrix_for_transposed_convolutions_uses_dim_one() -> None:
    deconv = nn.ConvTranspose2d(3, 5, 4)       # weight (in=3, out=5, 4, 4)
    assert output_dim(deconv) == 1 and output_dim(nn.Conv2d(3, 5, 4)) == 0
    assert weight_as_matrix(deconv.weight, dim=1).shape == (5, 48)
    with pytest.raises(ValueError, match="2-D"):
        spectral_norm_estimate(deconv.weight, torch.randn(3), iters=1)


def test_apply_spectral_norm_normalises_every_weight_layer() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ConvTranspose2d(4, 3, 3), nn.Flatten(), nn.Linear(3 * 8 * 8, 5),
                        nn.BatchNorm1d(5))
    embedding = nn.Embedding(7, 5)
    model = nn.ModuleDict({"net": net, "embed": embedding})
    assert apply_spectral_norm(model, n_power_iterations=100) is model
    layers = [net[0], net[1], net[3], embedding]
    for layer in layers:
        assert hasattr(layer, "parametrizations") and hasattr(layer.parametrizations, "weight")
        normalised = weight_as_matrix(layer.weight, output_dim(layer))   # training mode: runs the iterations
        assert relative_error(torch.linalg.matrix_norm(normalised.detach(), 2), torch.tensor(1.0)) < 1e-3
    assert not hasattr(net[4], "parametrizations")                       # normalisation gains are left alone
    apply_spectral_norm(model)                                           # idempotent: no second wrapping
    assert len(net[0].parametrizations.weight) == 1
    out = net(torch.randn(2, 2, 8, 8))
    assert out.shape == (2, 5)
    with pytest.raises(ConfigError, match="power iteration"):
        apply_spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


def test_minibatch_discrimination_matches_the_formula() -> None:
    torch.manual_seed(2)
    layer = MinibatchDiscrimination(4, num_kernels=2, kernel_dim=3)
    features = torch.randn(3, 4)
    out = layer(features).detach()
    assert out.shape == (3, 4 + 2)
    assert torch.equal(out[:, :4], features)
    rows = torch.einsum("na,abc->nbc", features, layer.T.detach())                # M_i = f(x_i) T
    for i in range(3):
        for b in range(2):
            expected = sum(torch.exp(-(rows[i, b] - rows[j, b]).abs().sum()) for j in range(3) if j != i)
            assert float(out[i, 4 + b]) == pytest.approx(float(expected), rel=1e-5)


def test_minibatch_discrimination_is_maximal_for_identical_samples() -> None:
    torch.manual_seed(3)
    layer = MinibatchDiscrimination(6, num_kernels=5, kernel_dim=2)
    collapsed = layer(torch.randn(1, 6).expand(4, 6)).detach()
    assert torch.allclose(collapsed[:, 6:], torch.full((4, 5), 3.0))     # n - 1 = 3: every c_b = 1
    varied = layer(torch.randn(4, 6) * 10).detach()
    assert (varied[:, 6:] < 3.0).all()
    assert layer(torch.randn(4, 1, 2, 3)).shape == (4, 11)                # non-flat features are flattened
    assert MinibatchDiscrimination(8).T.shape == (8, 100, 5)              # Salimans et al.'s B = 100, C = 5


def test_minibatch_stddev_hand_value() -> None:
    x = torch.tensor([0.0, 1.0, 2.0, 5.0]).view(4, 1, 1, 1)
    out = MinibatchStdDev(group_size=2)(x)
    # sample i is in group i mod 2: {0, 2} has std 1, {1, 5} has std 2
    assert out.shape == (4, 2, 1, 1)
    assert torch.equal(out[:, :1], x)
    assert torch.allclose(out[:, 1].flatten(), torch.tensor([1.0, 2.0, 1.0, 2.0]))


def test_minibatch_stddev_against_direct_computation() -> None:
    torch.manual_seed(4)
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 4, 2, 2)
    for i in range(8):
        members = x[i % 2::2]                                            # the 4 samples of i's group
        expected = torch.sqrt(members.var(dim=0, unbiased=False) + 1e-8).mean()
        assert torch.allclose(out[i, 3], expected.expand(2, 2))
    assert MinibatchStdDev(group_size=4)(torch.randn(2, 3, 2, 2)).shape == (2, 4, 2, 2)   # small batch: one group
    with pytest.raises(ValueError, match="divisible"):
        MinibatchStdDev(group_size=4)(torch.randn(6, 3, 2, 2))


def batch_norm_of(batch: torch.Tensor) -> torch.Tensor:
    """Plain batch normalisation with the batch's own (biased) statistics, gain 1, shift 0."""
    return F.batch_norm(batch, None, None, training=True, eps=1e-5)


@pytest.mark.parametrize("shape", [(5, 3), (5, 3, 2, 2)], ids=["features", "images"])
def test_vbn_equals_batch_norm_of_reference_plus_the_example(shape: tuple[int, ...]) -> None:
    torch.manual_seed(5)
    reference, batch = torch.randn(*shape) * 2 + 1, torch.randn(4, *shape[1:])
    vbn = VirtualBatchNorm(shape[1])
    vbn.set_reference(reference)
    out = vbn(batch)
    for i in range(4):
        # new stats = 1/(N+1) * example + N/(N+1) * reference: the statistics of the N+1 batch [reference; x_i]
        expected = batch_norm_of(torch.cat([reference, batch[i:i + 1]]))[-1]
        assert torch.allclose(out[i], expected, atol=1e-5)
        assert torch.allclose(vbn(batch[i:i + 1])[0], out[i], atol=1e-6)   # independent of the other examples


def test_vbn_first_call_becomes_the_reference_and_state_is_saved() -> None:
    torch.manual_seed(6)
    reference = torch.randn(6, 2)
    vbn = VirtualBatchNorm(2)
    assert not vbn.has_reference
    assert torch.allclose(vbn(reference), batch_norm_of(reference), atol=1e-5)
    assert vbn.has_reference and int(vbn.ref_count) == 6
    state = vbn.state_dict()
    assert {"ref_mean", "ref_mean_sq", "ref_count", "weight", "bias"} <= set(state)
    restored = VirtualBatchNorm(2)
    restored.load_state_dict(state)
    x = torch.randn(3, 2)
    assert torch.allclose(restored(x), vbn(x))
    with pytest.raises(ValueError, match="expects"):
        vbn(torch.randn(3, 4))


def test_refresh_references_records_each_layers_own_input() -> None:
    torch.manual_seed(7)
    first = nn.Linear(3, 4)
    model = nn.Sequential(first, VirtualBatchNorm(4), nn.ReLU(), nn.Linear(4, 2), VirtualBatchNorm(2))
    reference = torch.randn(8, 3)
    model(torch.randn(5, 3))                              # the first call fixes some reference ...
    refresh_references(model, reference)                  # ... which this replaces for every layer
    hidden = first(reference).detach()
    assert torch.allclose(model[1].ref_mean, hidden.mean(0), atol=1e-6)
    assert torch.allclose(model[1].ref_mean_sq, hidden.square().mean(0), atol=1e-6)
    assert int(model[4].ref_count) == 8 and not model[1].recording


def test_a_keep_graph_refresh_trains_through_the_reference_statistics() -> None:
    """keep_graph: the loss of a batch normalised with the reference statistics back-propagates through them into the
    earlier layer (the gradient of batch norm over [reference; x_i], computed directly); a plain refresh keeps them
    constants (another gradient); release_graphs drops the graph and keeps the values."""
    from ganforge.nn.vbn import release_graphs
    torch.manual_seed(8)
    first = nn.Linear(3, 4)
    model = nn.Sequential(first, VirtualBatchNorm(4))
    reference, batch = torch.randn(8, 3), torch.randn(5, 3)

    def loss_of(out: torch.Tensor) -> torch.Tensor:
        return (out * torch.arange(1.0, 5.0)).square().sum()

    refresh_references(model, reference, keep_graph=True)
    loss_of(model(batch)).backward()
    through = first.weight.grad.clone()
    first.weight.grad = None
    direct = torch.stack([batch_norm_of(first(torch.cat([reference, batch[i:i + 1]])))[-1] for i in range(5)])
    loss_of(direct).backward()
    assert torch.allclose(through, first.weight.grad, atol=1e-4), (through, first.weight.grad)
    first.weight.grad = None
    release_graphs(model)
    assert model[1]._live is None and torch.allclose(model[1].ref_mean, first(reference).detach().mean(0), atol=1e-6)
    refresh_references(model, reference)                  # constants: the statistics' share of the gradient is gone
    loss_of(model(batch)).backward()
    assert not torch.allclose(first.weight.grad, through, atol=1e-3)
