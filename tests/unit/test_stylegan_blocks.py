"""StyleGAN's blocks against direct computation: AdaIN, the per-layer noise input, the mapping network's learning-rate
multiplier, style mixing at the crossover layer, truncation in W (psi and cutoff), the style-mixing grid's layout,
fixed noise, StyleGAN2's weight demodulation and the tanh output option."""
from __future__ import annotations

import pytest
import torch

from ganforge.algorithms.latent_walk import w_space_inputs
from ganforge.errors import ConfigError
from ganforge.models.stylegan import StyleGANGenerator
from ganforge.nn.adain import AdaIN, ModulatedConv2d, demodulated
from ganforge.nn.equalized import EqualizedLinear
from ganforge.nn.noise_input import NoiseInput

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_generator(**kw) -> StyleGANGenerator:
    args = dict(latent_dim=8, image_size=16, channels=3, w_dim=6, mapping_layers=3, fmap_base=16, fmap_max=4)
    return StyleGANGenerator(**{**args, **kw})


def test_adain_is_the_styles_scale_and_bias_on_instance_normalised_maps():
    torch.manual_seed(1)
    ada = AdaIN(3, 4)
    with torch.no_grad():
        ada.affine.bias.normal_()
    x, w = torch.randn(2, 3, 5, 5) * 3 + 1, torch.randn(2, 4)
    y = w @ (ada.affine.weight * ada.affine.weight_scale).T + ada.affine.bias     # A(w), written out
    scale, bias = y[:, :3, None, None], y[:, 3:, None, None]
    mu = x.mean(dim=(2, 3), keepdim=True)
    sigma = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True).add(1e-8).sqrt()
    torch.testing.assert_close(ada(x, w), scale * (x - mu) / sigma + bias, rtol=1e-5, atol=1e-5)


def test_adain_starts_with_scale_one_and_bias_zero():
    ada = AdaIN(4, 5)
    assert torch.equal(ada.affine.bias, torch.tensor([1.0] * 4 + [0.0] * 4))
    x = torch.randn(2, 4, 3, 3)
    out = ada(x, torch.zeros(2, 5))             # w = 0: A(w) is the bias alone
    mu = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(out, (x - mu) / (x - mu).pow(2).mean(dim=(2, 3), keepdim=True).add(1e-8).sqrt())


def test_noise_input_adds_nothing_at_init_then_the_per_channel_scaled_image():
    layer = NoiseInput(3)
    x = torch.randn(4, 3, 6, 6)
    assert torch.equal(layer.weight, torch.zeros(3)) and torch.equal(layer(x), x)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, -2.0, 0.5]))
    added = (layer(x) - x).detach()                                   # weight[c] * one noise image per sample
    per_channel = added / layer.weight.view(1, 3, 1, 1)
    torch.testing.assert_close(per_channel[:, 1], per_channel[:, 0])
    torch.testing.assert_close(per_channel[:, 2], per_channel[:, 0])
    assert not torch.allclose(per_channel[0, 0], per_channel[1, 0])      # each sample its own image
    assert 0.7 < float(per_channel[:, 0].detach().std()) < 1.3
    fixed = torch.randn(1, 1, 6, 6)
    layer.fix(fixed)
    torch.testing.assert_close(layer(x) - x, layer.weight.view(1, 3, 1, 1) * fixed.expand(4, 1, 6, 6))


def test_the_mapping_learning_rate_multiplier_scales_each_adam_step_by_001():
    torch.manual_seed(0)
    G = tiny_generator()
    slow = G.mapping.layers[0]
    assert all(layer.lr_mul == 0.01 for layer in G.mapping.layers)     # the paper's 0.01, the default
    fast = EqualizedLinear(slow.in_features, slow.out_features, lr_mul=1.0)
    with torch.no_grad():       # the same function: equal effective weights and biases
        fast.weight.copy_(slow.weight * slow.weight_scale / fast.weight_scale)
        fast.bias.copy_(slow.bias * slow.lr_mul)
    x = torch.randn(16, slow.in_features)
    torch.testing.assert_close(slow(x), fast(x))
    moved = []
    for layer in (slow, fast):
        before = (layer.weight * layer.weight_scale).detach().clone()
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3, betas=(0.0, 0.99))
        layer(x).pow(2).sum().backward()
        opt.step()
        moved.append(float(((layer.weight * layer.weight_scale).detach() - before).abs().mean()))
    assert moved[0] / moved[1] == pytest.approx(0.01, rel=0.02)


def _draws(seed: int, z: torch.Tensor, layers: int) -> tuple[float, int, torch.Tensor]:
    """The draws training_styles makes after torch.manual_seed(seed): the coin, the crossover, z2."""
    torch.manual_seed(seed)
    return float(torch.rand(())), int(torch.randint(1, layers, ())), torch.randn_like(z)


def test_style_mixing_switches_from_w1_to_w2_at_the_crossover_layer():
    G = tiny_generator(style_mixing=1.0)
    z = torch.randn(3, 8)
    L = G.num_layers
    assert L == 6                                       # 2 per resolution, 4 .. 16 px
    w1 = G.mapping(z).detach()
    crossovers = set()
    for seed in range(12):
        _, crossover, z2 = _draws(seed, z, L)
        w2 = G.mapping(z2).detach()
        torch.manual_seed(seed)
        ws = G.training_styles(z).detach()
        for layer in range(L):
            torch.testing.assert_close(ws[:, layer], w1 if layer < crossover else w2)
        crossovers.add(crossover)
    assert min(crossovers) >= 1 and max(crossovers) <= L - 1 and len(crossovers) >= 3


def test_no_mixing_without_its_probability_or_outside_training():
    z = torch.randn(3, 8)
    G = tiny_generator(style_mixing=0.0)
    ws = G.training_styles(z).detach()
    assert all(torch.equal(ws[:, i], ws[:, 0]) for i in range(G.num_layers))
    G = tiny_generator(style_mixing=0.5)
    mixed = 0
    for seed in range(40):
        coin, _, _ = _draws(seed, z, G.num_layers)
        torch.manual_seed(seed)
        ws = G.training_styles(z).detach()
        same = all(torch.equal(ws[:, i], ws[:, 0]) for i in range(G.num_layers))
        assert same == (coin >= 0.5)
        mixed += not same
    assert 8 <= mixed <= 32


def test_w_avg_is_an_ema_of_the_mapped_batches_in_training_only():
    G = tiny_generator(w_avg_beta=0.9)
    z1, z2 = torch.randn(5, 8), torch.randn(5, 8)
    G.training_styles(z1)
    G.training_styles(z2)
    m1, m2 = G.mapping(z1).detach().mean(0), G.mapping(z2).detach().mean(0)
    torch.testing.assert_close(G.w_avg, 0.9 * (0.1 * m1) + 0.1 * m2)     # from 0: two lerps of weight 0.1
    saved = G.w_avg.clone()
    G.eval()
    G(torch.randn(4, 8))
    assert torch.equal(G.w_avg, saved)
    assert "w_avg" in G.state_dict()                     # saved with the weights


def test_truncation_in_w_identity_at_1_average_at_0_and_only_below_the_cutoff():
    G = tiny_generator()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(6))
    ws = G.styles(torch.randn(4, 8))
    assert torch.equal(G.truncate(ws, 1.0), ws)
    torch.testing.assert_close(G.truncate(ws, 0.0), G.w_avg.expand_as(ws))
    cut = G.truncate(ws, 0.7, cutoff=2)
    torch.testing.assert_close(cut[:, :2], G.w_avg + 0.7 * (ws[:, :2] - G.w_avg))
    assert torch.equal(cut[:, 2:], ws[:, 2:])
    # through the sampling path: the network's default cutoff, and psi 0 draws the average image for every z
    default = w_space_inputs(G, torch.randn(4, 8), truncation=0.5)
    G.eval()
    images = G(w_space_inputs(G, torch.randn(4, 8), truncation=0.0))
    torch.testing.assert_close(images, images[:1].expand_as(images))
    assert default.shape == (4, G.num_layers, 6)


def test_the_mixing_grid_takes_coarse_styles_from_rows_and_fine_from_columns():
    G = tiny_generator()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(6))
    k, cutoff = 3, 2
    z = torch.randn((k + 1) ** 2, 8)
    ws = w_space_inputs(G, z, mix=k, mix_cutoff=cutoff).view(k + 1, k + 1, G.num_layers, 6)
    w = G.mapping(z).detach()
    rows, cols = w[:k], w[k:2 * k]
    torch.testing.assert_close(ws[0, 0], G.w_avg.expand(G.num_layers, 6))
    for j in range(k):
        torch.testing.assert_close(ws[0, j + 1], cols[j].expand(G.num_layers, 6))
    for i in range(k):
        torch.testing.assert_close(ws[i + 1, 0], rows[i].expand(G.num_layers, 6))
        for j in range(k):
            torch.testing.assert_close(ws[i + 1, j + 1, :cutoff], rows[i].expand(cutoff, 6))
            torch.testing.assert_close(ws[i + 1, j + 1, cutoff:], cols[j].expand(G.num_layers - cutoff, 6))


def test_fixed_noise_and_reproducible_sampling_without_the_global_random_stream():
    G = tiny_generator()
    for layer in G.layers:
        torch.nn.init.constant_(layer.noise.weight, 0.5)
    G.eval()
    z = torch.randn(2, 8).repeat(2, 1)        # samples 0, 2 and 1, 3 share z
    state = torch.get_rng_state()
    a, b = G(z), G(z)
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(a[0], a[2])         # per-sample noise
    G.fix_noise(3)
    fixed = G(z)
    torch.testing.assert_close(fixed[0], fixed[2])           # one noise image per layer for every sample
    G.fix_noise(4)
    assert not torch.allclose(G(z)[0], fixed[0])
    G.fix_noise(None)
    assert torch.equal(G(z), a)


def test_demodulation_normalises_each_output_channels_kernel():
    weight, styles = torch.randn(5, 3, 3, 3), torch.rand(2, 3) * 3 + 0.1
    kernels = demodulated(weight, styles)
    norms = kernels.pow(2).sum(dim=(2, 3, 4)).sqrt()
    torch.testing.assert_close(norms, torch.ones(2, 5))
    modulated = demodulated(weight, styles, demodulate=False)
    torch.testing.assert_close(modulated[1], weight * styles[1].view(1, 3, 1, 1))
    conv = ModulatedConv2d(3, 5, 3, w_dim=4)
    x, w = torch.randn(2, 3, 8, 8), torch.randn(2, 4)
    expected = torch.stack([torch.nn.functional.conv2d(
        x[i:i + 1], demodulated(conv.weight * conv.weight_scale, conv.affine(w))[i], padding=1)[0] for i in range(2)])
    torch.testing.assert_close(conv(x, w), expected, rtol=1e-5, atol=1e-5)
    G = tiny_generator(demodulate=True)
    assert G.num_layers == 5 and all(layer.adain is None for layer in G.layers)


def test_tanh_output_is_the_linear_toRGB_squashed_and_a_bad_value_is_refused():
    torch.manual_seed(0)
    linear = tiny_generator().eval()
    squashed = tiny_generator(out_activation="tanh").eval()
    squashed.load_state_dict(linear.state_dict())           # the same parameters: tanh is not a parameter
    with torch.no_grad():
        ws = linear.styles(torch.randn(6, 8)) * 20          # large styles push the linear output past [-1, 1]
        raw, bounded = linear(ws), squashed(ws)
    assert raw.abs().max() > 1.5
    torch.testing.assert_close(bounded, torch.tanh(raw))
    with pytest.raises(ConfigError, match="out_activation must be none .* or tanh"):
        tiny_generator(out_activation="sigmoid")

