"""Regularizers against analytic cases: linear and quadratic critics, hand matrices, exact running means."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from ganforge.errors import ConfigError
from ganforge.nn import apply_spectral_norm
from ganforge.regularizers import (clip_weights_, feature_matching_loss, gradient_penalty, orthogonal_regularization,
                                   r1_penalty)

W = torch.tensor([1.0, 2.0, 2.0, 4.0])   # ||W|| = 5


def linear_critic(x: torch.Tensor) -> torch.Tensor:
    """D(x) = w . x: its input gradient is w at every point."""
    return x.flatten(1) @ W


def quadratic_critic(x: torch.Tensor) -> torch.Tensor:
    """D(x) = ||x||^2 per sample: its input gradient is 2x."""
    return x.flatten(1).square().sum(dim=1, keepdim=True)


def test_gradient_penalty_of_a_linear_critic_is_exact() -> None:
    torch.manual_seed(0)
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    assert gradient_penalty(linear_critic, real, fake).item() == pytest.approx((5 - 1) ** 2)
    assert gradient_penalty(linear_critic, real, fake, center=0.0).item() == pytest.approx(25.0)


def test_gradient_penalty_is_differentiable_in_the_critic_parameters() -> None:
    weight = torch.tensor([3.0, 4.0], requires_grad=True)
    penalty = gradient_penalty(lambda x: x @ weight, torch.randn(4, 2), torch.randn(4, 2))
    penalty.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 1.6 w
    assert torch.allclose(weight.grad, 1.6 * weight.detach())


def test_gradient_penalty_interpolates_with_per_sample_uniform_eps_from_the_generator() -> None:
    torch.manual_seed(1)
    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    penalty = gradient_penalty(quadratic_critic, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand(6, generator=torch.Generator().manual_seed(7)).unsqueeze(1)
    x_hat = eps * real + (1 - eps) * fake                           # x_hat = eps x_real + (1 - eps) x_fake
    expected = ((2 * x_hat.norm(dim=1) - 1) ** 2).mean()            # ||grad|| = ||2 x_hat||
    assert penalty.item() == pytest.approx(float(expected), rel=1e-5)
    again = gradient_penalty(quadratic_critic, real, fake, generator=torch.Generator().manual_seed(7))
    other = gradient_penalty(quadratic_critic, real, fake, generator=torch.Generator().manual_seed(8))
    assert again.item() == penalty.item() != other.item()
    with pytest.raises(ValueError, match="one to one"):
        gradient_penalty(quadratic_critic, real, fake[:3])


def test_conditional_gradient_penalty_interpolates_the_condition_with_the_same_eps() -> None:
    """critic(x, c) = (w . x) * c_0: its x-gradient is c_0 w, so with c_0 = 1 for real and 0 for fake pairs the
    gradient norm at x_hat is 5 eps, and with real x = 1, fake x = 0 each x_hat equals eps too."""
    seen = []

    def critic(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        seen.append((x.detach().clone(), c.clone()))
        return (x.flatten(1) @ W) * c[:, 0]

    real, fake = torch.ones(6, 4), torch.zeros(6, 4)
    cond = (torch.tensor([[1.0, 0.0]]).repeat(6, 1), torch.tensor([[0.0, 1.0]]).repeat(6, 1))
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3), cond=cond)
    eps = torch.rand(6, generator=torch.Generator().manual_seed(3))
    (x_hat, c_hat), = seen
    assert torch.allclose(x_hat, eps.unsqueeze(1).expand(6, 4))
    assert torch.allclose(c_hat, torch.stack([eps, 1 - eps], 1))
    assert penalty.item() == pytest.approx(float(((5 * eps - 1) ** 2).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="one condition per sample"):
        gradient_penalty(critic, real, fake, cond=(cond[0], cond[1][:3]))


def test_gradient_penalty_detaches_its_inputs_and_runs_in_fp32() -> None:
    real = torch.randn(3, 4, requires_grad=True)
    fake = torch.randn(3, 4, requires_grad=True)
    weight = W.clone().requires_grad_(True)
    seen = []

    def critic(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.dtype)
        return x @ weight

    gradient_penalty(critic, real.bfloat16(), fake.bfloat16()).backward()
    assert seen == [torch.float32]
    assert real.grad is None and fake.grad is None
    assert weight.grad is not None


def test_r1_penalty_hand_values() -> None:
    real = torch.randn(4, 1, 2, 2)
    assert r1_penalty(linear_critic, real, gamma=10.0).item() == pytest.approx(10 / 2 * 25)
    expected = 0.5 * 2.0 * (4 * real.flatten(1).square().sum(dim=1)).mean()   # ||2x||^2 = 4 ||x||^2
    assert r1_penalty(quadratic_critic, real, gamma=2.0).item() == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ConfigError, match="gamma"):
        r1_penalty(linear_critic, real, gamma=-1.0)


def test_clip_weights_bounds_every_parameter_and_keeps_small_ones() -> None:
    torch.manual_seed(2)
    critic = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.randn_like(p) * 0.02)
    before = [p.detach().clone() for p in critic.parameters()]
    clip_weights_(critic, 0.01)
    for old, new in zip(before, critic.parameters()):
        assert new.abs().max() <= 0.01
        inside = old.abs() <= 0.01
        assert torch.equal(new[inside], old[inside])
        assert torch.equal(new[~inside], 0.01 * old[~inside].sign())
    assert torch.equal(critic[1].running_var, torch.ones(4))   # buffers are not parameters
    with pytest.raises(ConfigError, match="clipping"):
        clip_weights_(critic, 0.0)


def test_orthogonal_regularization_hand_matrix() -> None:
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]))
        layer.bias.fill_(100.0)   # biases are excluded
    # filter Gram matrix [[5, 2], [2, 2]]: off-diagonal squares 4 + 4
    assert orthogonal_regularization(layer, beta=0.5).item() == pytest.approx(4.0)
    net = nn.Sequential(layer, nn.Embedding(10, 4), nn.BatchNorm1d(2))
    assert orthogonal_regularization(net, beta=0.5).item() == pytest.approx(4.0)


def test_orthogonal_regularization_of_orthogonal_filters_is_zero_and_sums_layers() -> None:
    conv = nn.Conv2d(1, 2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]], [[[0.0, 2.0], [0.0, 0.0]]]]))
    assert orthogonal_regularization(conv).item() == 0.0   # orthogonal filters, norms unconstrained
    deconv = nn.ConvTranspose2d(2, 1, 1, bias=False)       # weight (in=2, out=1, 1, 1): one filter
    with torch.no_grad():
        deconv.weight.copy_(torch.tensor([[[[1.0]]], [[[1.0]]]]))
    assert orthogonal_regularization(deconv).item() == 0.0  # a single filter has no off-diagonal
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 0.0]]))   # Gram off-diagonal 1
    both = nn.Sequential(conv, nn.Flatten(), linear)
    assert orthogonal_regularization(both, beta=1e-4).item() == pytest.approx(2e-4)


def test_orthogonal_regularization_uses_the_raw_weight_under_spectral_norm() -> None:
    torch.manual_seed(3)
    layer = nn.Linear(4, 3)
    raw = layer.weight.detach().clone()
    apply_spectral_norm(layer)
    u_before = layer.parametrizations.weight[0]._u.clone()
    gram = raw @ raw.T
    expected = (gram - torch.diag(torch.diag(gram))).square().sum()
    assert orthogonal_regularization(layer, beta=1.0).item() == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(layer.parametrizations.weight[0]._u, u_before)   # no power iteration was run


def test_feature_matching_hand_value_and_gradient_only_to_fakes() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)   # mean [2, 3]
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)   # mean [1, 1]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(1.0 + 4.0)
    loss.backward()
    assert real.grad is None
    # d/dfake_i ||m_r - m_f||^2 = -2 (m_r - m_f) / N
    assert torch.allclose(fake.grad, torch.tensor([[-1.0, -2.0], [-1.0, -2.0]]))
    assert feature_matching_loss(torch.ones(3, 2, 2), torch.ones(5, 2, 2)).item() == 0.0
