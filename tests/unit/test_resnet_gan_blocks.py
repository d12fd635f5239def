"""The SNGAN / SAGAN building blocks against direct computation: self-attention (rows of the attention sum to 1,
gamma = 0 is the identity, the output is the written-out formula), class-conditional BatchNorm (the per-class table
and the linear map against the BN formula), the residual blocks' shapes, the networks' shapes and where spectral
normalisation is, and the sampling-time latent controls (truncation, slerp)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ganforge.algorithms.latent_walk import parse_interpolate, slerp, truncate_normal
from ganforge.errors import ConfigError
from ganforge.models.resnet_gan import (DownBlock, ResNetDiscriminator, ResNetGenerator, SAGANDiscriminator,
                                        SAGANGenerator, UpBlock)
from ganforge.nn.conditional_norm import ConditionalBatchNorm2d
from ganforge.nn.self_attention import SelfAttention

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------ self-attention
@pytest.mark.parametrize("form", ["paper", "seed", "official"])
def test_attention_rows_are_distributions_over_key_positions(form):
    attn = SelfAttention(16, form=form)
    x = torch.randn(3, 16, 8, 6)
    beta = attn.attention(x)
    keys = 8 * 6 // (4 if form == "official" else 1)           # the official form max-pools the keys 2x2
    assert beta.shape == (3, 48, keys)
    assert (beta >= 0).all()
    assert torch.allclose(beta.sum(-1), torch.ones(3, 48), atol=1e-6)


@pytest.mark.parametrize("form", ["paper", "seed", "official"])
def test_gamma_starts_at_zero_and_is_then_the_identity(form):
    attn = SelfAttention(16, form=form)
    x = torch.randn(2, 16, 4, 4)
    assert float(attn.gamma.detach()) == 0.0 and attn.gamma.requires_grad
    assert torch.equal(attn(x), x)
    with torch.no_grad():
        attn.gamma.fill_(0.5)
    assert not torch.allclose(attn(x), x)
    # gamma gets a gradient at 0, so training can switch the attention on
    attn.gamma.data.zero_()
    attn(x).pow(2).sum().backward()
    assert attn.gamma.grad is not None and float(attn.gamma.grad.abs()) > 0


def test_attention_output_is_the_papers_formula_written_out():
    torch.manual_seed(1)
    attn = SelfAttention(8, form="paper")
    with torch.no_grad():
        attn.gamma.fill_(0.7)
    x = torch.randn(2, 8, 3, 3)
    Wf, Wg = attn.query.weight[:, :, 0, 0], attn.key.weight[:, :, 0, 0]
    Wh, Wv = attn.value.weight[:, :, 0, 0], attn.out.weight[:, :, 0, 0]
    expected = torch.empty_like(x)
    for b in range(2):
        X = x[b].reshape(8, 9)                                   # C x N
        f, g, h = Wf @ X, Wg @ X, Wh @ X
        for j in range(9):
            s = torch.stack([f[:, j] @ g[:, i] for i in range(9)])      # s_ij over the key positions i
            beta = torch.exp(s) / torch.exp(s).sum()
            o = Wv @ (h * beta).sum(1)
            expected[b].view(8, 9)[:, j] = 0.7 * o + X[:, j]
    assert torch.allclose(attn(x), expected, atol=1e-5)
    assert attn.query.weight.shape[0] == 1 and attn.value.weight.shape[0] == 1     # C/8 queries, keys, values


def test_attention_forms_and_refusals():
    assert SelfAttention(16, "seed").out is None and SelfAttention(16, "seed").value.weight.shape[0] == 16
    assert SelfAttention(16, "official").value.weight.shape[0] == 8                 # C/2 values
    with pytest.raises(ConfigError, match="at least 8 channels"):
        SelfAttention(4)
    with pytest.raises(ConfigError, match="form must be one of"):
        SelfAttention(16, form="v9")                                               # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="even feature map"):
        SelfAttention(16, "official")(torch.randn(1, 16, 5, 5))


# ------------------------------------------------------------------------------------------------ conditional BN
def bn_formula(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mu = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return gain[:, :, None, None] * (x - mu) / torch.sqrt(var + eps) + bias[:, :, None, None]


def test_class_table_starts_as_plain_bn_then_gives_each_class_its_gain_and_bias():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(6, cond_dim=4)
    x = torch.randn(8, 6, 5, 5) * 3 + 2
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    y = F.one_hot(labels, 4).float()
    assert torch.allclose(cbn(x, y), bn_formula(x, torch.ones(8, 6), torch.zeros(8, 6)), atol=1e-5)   # gain 1, bias 0
    with torch.no_grad():
        cbn.map.gain.copy_(torch.rand(4, 6) + 0.5)
        cbn.map.bias.copy_(torch.randn(4, 6))
    expected = bn_formula(x, cbn.map.gain[labels], cbn.map.bias[labels])
    assert torch.allclose(cbn(x, y), expected, atol=1e-5)
    # running statistics as BatchNorm2d's, and eval mode uses them
    ref = torch.nn.BatchNorm2d(6, affine=False)
    ref(x), ref(x)                                                     # as many training passes as cbn saw
    assert torch.allclose(cbn.bn.running_mean, ref.running_mean) and torch.allclose(cbn.bn.running_var, ref.running_var)
    cbn.eval()
    mu, var = ref.running_mean[None, :, None, None], ref.running_var[None, :, None, None]
    direct = cbn.map.gain[labels][:, :, None, None] * (x - mu) / torch.sqrt(var + 1e-5) + cbn.map.bias[labels][:, :, None, None]
    assert torch.allclose(cbn(x, y), direct, atol=1e-5)


def test_linear_map_is_biggans_one_plus_linear_of_any_condition_vector():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(5, cond_dim=7, kind="linear")
    x, cond = torch.randn(4, 5, 3, 3), torch.randn(4, 7)
    assert torch.allclose(cbn(x, torch.zeros(4, 7)), bn_formula(x, torch.ones(4, 5), torch.zeros(4, 5)), atol=1e-5)
    with torch.no_grad():
        cbn.map.gain.weight.normal_()
        cbn.map.bias.weight.normal_()
    gain = 1 + cond @ cbn.map.gain.weight.T
    bias = cond @ cbn.map.bias.weight.T
    assert torch.allclose(cbn(x, cond), bn_formula(x, gain, bias), atol=1e-5)
    with pytest.raises(ValueError, match=r"condition of shape \(4, 7\)"):
        cbn(x, cond[:, :3])


def test_a_spectrally_normalised_generator_with_the_linear_map_is_finite():
    # zero-initialised gain / bias maps have spectral norm 0: SN divided by it and every output was NaN
    torch.manual_seed(0)
    G = ResNetGenerator(latent_dim=16, image_size=16, channels=1, widths=[16, 8, 8], cond_dim=10,
                             cond_norm="linear", spectral_norm=True)
    out = G(torch.randn(4, 16), torch.eye(10)[:4])
    assert out.shape == (4, 1, 16, 16) and torch.isfinite(out).all()


# ------------------------------------------------------------------------------------------------ blocks, networks
def test_residual_blocks_shapes():
    x = torch.randn(2, 8, 6, 6)
    assert UpBlock(8, 4)(x).shape == (2, 4, 12, 12)
    assert UpBlock(8, 4, cond_dim=3)(x, torch.eye(3)[[0, 2]]).shape == (2, 4, 12, 12)
    assert DownBlock(8, 16, downsample=True)(x).shape == (2, 16, 3, 3)
    assert DownBlock(8, 8, downsample=False)(x).shape == (2, 8, 6, 6)
    assert DownBlock(8, 8, downsample=False).shortcut is None        # identity shortcut where nothing changes
    assert DownBlock(1, 8, downsample=True, optimized=True)(torch.randn(2, 1, 8, 8)).shape == (2, 8, 4, 4)


def sn_layers(net: torch.nn.Module) -> tuple[int, int]:
    """(spectrally normalised layers, layers with a weight that SN would normalise)."""
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    return sum(parametrize.is_parametrized(m, "weight") for m in layers), len(layers)


def test_sngan_networks_shapes_parameter_counts_and_spectral_norm():
    G, D = ResNetGenerator(), ResNetDiscriminator()
    # torch-mimicry's SNGAN 32 px: G 4.3M, D 1.05M parameters
    assert sum(p.numel() for p in G.parameters()) == 4_276_739
    assert sum(p.numel() for p in D.parameters()) == 1_053_825
    x = G(torch.randn(2, 128))
    assert x.shape == (2, 3, 32, 32) and x.abs().max() <= 1 and D(x).shape == (2,)
    assert sn_layers(G)[0] == 0                                      # SNGAN: no SN in G
    done, total = sn_layers(D)
    assert done == total == 11                                      # every conv (3 + 3 + 2 + 2) and the head of D
    # Glorot-uniform init, gain sqrt(2) in the residual branches and 1 on the shortcuts (std = gain sqrt(2 / fans))
    for conv, gain in ((G.blocks[0].c1, math.sqrt(2)), (G.blocks[0].shortcut, 1.0)):
        fans = conv.weight[0].numel() + conv.weight[:, 0].numel()
        assert abs(float(conv.weight.detach().std()) / (gain * math.sqrt(2 / fans)) - 1) < 0.03


def test_sagan_networks_attention_conditional_bn_projection_and_sn_in_both():
    G = SAGANGenerator(cond_dim=10, channels=1, widths=(32, 16, 16, 16))
    D = SAGANDiscriminator(channels=1, num_classes=10, projection=True, widths=(16, 16, 16, 16))
    assert G.attention is not None and G.attention_after == 1 and D.attention_after == 0    # the 16 x 16 maps
    assert all(isinstance(b.b1.norm, ConditionalBatchNorm2d) for b in G.blocks)
    done, total = sn_layers(G)
    assert done == total and done > 10                              # SAGAN: SN in G too, attention convs included
    assert sn_layers(D)[0] == sn_layers(D)[1]
    assert not parametrize.is_parametrized(G.blocks[0].b1.norm.map, "gain")     # the class tables stay plain
    y = F.one_hot(torch.tensor([3, 7]), 10).float()
    x = G(torch.randn(2, 128), y)
    assert x.shape == (2, 1, 32, 32)
    # projection: D(x, y) = psi(phi(x)) + <V y, phi(x)>
    D.eval()
    phi = D.features(x)
    assert torch.allclose(D(x, y), D.head(phi).squeeze(1) + (D.embed(phi) * y).sum(1), atol=1e-5)
    assert D.takes_labels and not ResNetDiscriminator().takes_labels
    with pytest.raises(ConfigError, match="projection scores"):
        D(x)
    # the labels change G's output through the conditional BN only
    G.eval()
    z = torch.randn(1, 128).repeat(2, 1)
    pair = G(z, F.one_hot(torch.tensor([1, 2]), 10).float())
    with torch.no_grad():
        G.blocks[0].b1.norm.map.gain[2] += 1.0
    assert not torch.allclose(G(z, F.one_hot(torch.tensor([1, 2]), 10).float())[1], pair[1])


def test_network_refusals_are_one_line():
    with pytest.raises(ConfigError, match="divisible by 8.*data.image_size=24 \\(or 32\\)"):
        ResNetGenerator(image_size=28)
    with pytest.raises(ConfigError, match=r"attention=12: the feature maps here are \[8, 16, 32\]"):
        ResNetGenerator(attention=12)
    with pytest.raises(ConfigError, match="projection needs labelled data"):
        ResNetDiscriminator(projection=True)
    with pytest.raises(ConfigError, match="one entry per block"):
        ResNetDiscriminator(downsample=(True, False))


# ------------------------------------------------------------------------------------------------ latent controls
def test_truncation_resamples_only_the_components_outside():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 16, generator=g)
    t = truncate_normal(z, 0.5, 1.0, torch.Generator().manual_seed(1))
    assert t.abs().max() <= 0.5
    inside = z.abs() <= 0.5
    assert torch.equal(t[inside], z[inside])                           # resampling, not scaling
    assert torch.equal(truncate_normal(z, 50.0, 1.0, g), z)            # a large psi changes nothing
    # the law: N(0, 1) truncated to [-0.5, 0.5] has std ~0.2838 (uniform would be 0.2887)
    assert abs(float(t.std()) - 0.2838) < 0.006
    tiny = truncate_normal(z, 0.01, 2.0, torch.Generator().manual_seed(2))   # beyond the resample rounds
    assert tiny.abs().max() <= 0.02
    with pytest.raises(ConfigError, match="must be > 0"):
        truncate_normal(z, 0.0, 1.0, g)


def test_slerp_keeps_the_ends_and_moves_on_the_great_circle():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 3.0))     # linear interpolation would dip to 2.12
    assert torch.allclose(path[2], torch.tensor([3 / math.sqrt(2), 3 / math.sqrt(2), 0.0]))
    assert parse_interpolate("3:17") == (3, 17)
    for bad in ("3", "a:b", "-1:2"):
        with pytest.raises(ConfigError, match="--interpolate"):
            parse_interpolate(bad)
