"""GAN-INT-CLS and the shared text conditioning: the matching-aware D loss against a direct computation, one training
step computes the terms Reed et al. 2016 define from what G and D were given (right, wrong and interpolated text),
the mismatched captions are other captions, and bad settings are one line."""
from __future__ import annotations

import pytest
import torch

from ganforge.algorithms import Batch, DataInfo
from ganforge.algorithms.text_conditioning import (interpolate_embeddings, matching_aware_d_loss, wrong_indices)
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, prepare, to_model_range
from ganforge.errors import ConfigError, DataError
from ganforge.objectives import objective_class

from conftest import RecordingContext

pytestmark = pytest.mark.usefixtures("one_thread")

L = 7
INFO = DataInfo(kind="image", sample_shape=(1, 16, 16), num_classes=10, keys=("image", "label", "text"),
                field_shapes={"text": (L,)})
TINY = {"networks.G.widths": [16, 8], "networks.D.widths": [8, 16], "networks.T.embed_dim": 12,
        "algorithm.text_dim": 12, "algorithm.latent_dim": 6, "data.image_size": 16}
B = 8


def tiny(**changes):
    torch.manual_seed(0)
    return build_algorithm(load_config("text2image-digits", {**TINY, **changes}), INFO)


def record_calls(module):
    calls = []
    module.register_forward_hook(lambda _, args, out: calls.append((tuple(a.detach().clone() for a in args),
                                                                    out.detach().clone())))
    return calls


@pytest.fixture(scope="module")
def captioned() -> Batch:
    ds = prepare(load_source("digit-captions?split=test"), 16, None)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(1))[:B]
    return Batch(x=to_model_range(ds.x[idx], (-1.0, 1.0)), y=ds.y[idx], fields={"text": ds.fields["text"][idx]})


def bce_real(s):   # -log sigmoid(s), written out
    return -torch.log(torch.sigmoid(s.double())).mean()


def bce_fake(s):   # -log(1 - sigmoid(s))
    return -torch.log(1 - torch.sigmoid(s.double())).mean()


def test_matching_aware_d_loss_is_gan_cls_weighting():
    g = torch.Generator().manual_seed(0)
    rr, rw, fr = (torch.randn(6, generator=g) for _ in range(3))
    ns = objective_class("nonsaturating")()
    direct = bce_real(rr) + (bce_fake(rw) + bce_fake(fr)) / 2     # -[log D(x,h) + (log(1-D(x,h^)) + log(1-D(x^,h)))/2]
    assert matching_aware_d_loss(ns, rr, rw, fr).item() == pytest.approx(direct.item(), rel=1e-6)
    ls = objective_class("lsgan")()
    direct_ls = ls.d_real_loss(rr) + 0.5 * (ls.d_fake_loss(rw) + ls.d_fake_loss(fr))
    assert matching_aware_d_loss(ls, rr, rw, fr).item() == pytest.approx(direct_ls.item(), rel=1e-6)
    t1, t2 = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    assert torch.allclose(interpolate_embeddings(t1, t2, 0.5), (t1 + t2) / 2)
    assert torch.allclose(interpolate_embeddings(t1, t2, 0.25), 0.25 * t1 + 0.75 * t2)


def test_wrong_text_is_another_caption_of_the_batch():
    tokens = torch.tensor([[2, 3, 0], [2, 3, 0], [4, 5, 6], [7, 0, 0], [2, 3, 0], [8, 9, 0]])
    for seed in range(20):
        j = wrong_indices(tokens, torch.Generator().manual_seed(seed))
        assert (j != torch.arange(len(tokens))).all()
        assert not (tokens[j] == tokens).all(1).any()          # a caption written differently, where there is one
    with pytest.raises(DataError, match="batches of at least 2"):
        wrong_indices(tokens[:1])


def test_one_step_computes_gan_int_cls_from_what_g_and_d_saw(captioned):
    algo = tiny()
    g_calls, d_calls = record_calls(algo.nets["G"]), record_calls(algo.nets["D"])
    ctx = RecordingContext(captioned)
    torch.manual_seed(3)
    logs = algo.train_step(ctx)
    (group_d, d_loss), (group_g, g_loss) = ctx.updates
    assert (group_d, group_g) == ("D", "G")
    h = algo.embed(captioned["text"])
    # D: (real, right), (fake, right), (real, wrong) in that order; the fake made by G from the right text
    (x_rr, t_rr), s_rr = d_calls[0]
    (x_fr, t_fr), s_fr = d_calls[1]
    (x_rw, t_rw), s_rw = d_calls[2]
    assert torch.equal(x_rr, captioned.x) and torch.equal(x_rw, captioned.x) and torch.equal(t_rr, h)
    assert torch.equal(t_fr, h) and torch.equal(g_calls[0][0][1], h) and torch.equal(x_fr, g_calls[0][1])
    assert not torch.equal(t_rw, h)
    wrong_rows = [int(((algo.embed(captioned["text"]) - t).abs().sum(1)).argmin()) for t in t_rw]
    assert all(w != i for i, w in enumerate(wrong_rows))                     # each pair got another row's caption
    direct = bce_real(s_rr) + (bce_fake(s_rw) + bce_fake(s_fr)) / 2
    assert d_loss.item() == pytest.approx(direct.item(), rel=1e-5)
    # G: the right text, then GAN-INT's interpolated embeddings (midpoints of two captions of the batch)
    (_, t_g), s_g = d_calls[3]
    (_, t_int), s_int = d_calls[4]
    assert torch.equal(t_g, h)
    midpoints = (h.unsqueeze(0) + h.unsqueeze(1)) / 2                          # B x B x dim: every pair's midpoint
    assert all(((midpoints - t).abs().amax(-1) < 1e-6).any() for t in t_int)
    assert g_loss.item() == pytest.approx((bce_real(s_g) + bce_real(s_int)).item(), rel=1e-5)
    assert set(logs) >= {"d_loss", "d_real", "d_fake", "d_mismatch", "g_loss", "g_int"}
    # cls off: the plain conditional loss, D never sees wrong text; int_weight 0: G's right-text term only
    plain = tiny(**{"algorithm.cls": False, "algorithm.int_weight": 0.0})
    d_calls = record_calls(plain.nets["D"])
    ctx = RecordingContext(captioned)
    plain.train_step(ctx)
    assert len(d_calls) == 3
    assert ctx.updates[0][1].item() == pytest.approx((bce_real(d_calls[0][1]) + bce_fake(d_calls[1][1])).item(),
                                                     rel=1e-5)
    assert ctx.updates[1][1].item() == pytest.approx(bce_real(d_calls[2][1]).item(), rel=1e-5)


def test_the_text_encoder_is_frozen_and_in_no_optimizer_group(captioned):
    algo = tiny()
    assert not any(p.requires_grad for p in algo.nets["T"].parameters())
    assert "T" not in {k for keys in algo.optimizer_groups.values() for k in keys}
    assert "captions.tokens" in algo.state_tensors() and algo.state_tensors()["captions.tokens"].shape[1] == L


@pytest.mark.parametrize("changes, fragment", [
    ({"networks.G.arch": "dcgan-book"}, "networks.G"),
    ({"networks.T.embed_dim": 20}, "set algorithm.text_dim only"),
    ({"objective.name": "rsgan"}, "gan-int-cls"),
    ({"algorithm.beta": 1.5}, "beta in [0, 1]"),
    ({"algorithm.text_encoder_batch_size": 1}, "text_encoder_batch_size >= 2"),
    ({"data.image_size": 24}, "power-of-two image size"),
])
def test_bad_settings_are_one_line(changes, fragment):
    info = INFO if "data.image_size" not in changes else DataInfo(
        kind="image", sample_shape=(1, 24, 24), num_classes=10, keys=INFO.keys, field_shapes=INFO.field_shapes)
    with pytest.raises(ConfigError) as err:
        torch.manual_seed(0)
        build_algorithm(load_config("text2image-digits", {**TINY, **changes}), info)
    assert fragment in str(err.value) and "\n" not in str(err.value)
