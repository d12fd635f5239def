"""S2GAN's and the clustering variant's pretraining (``algorithms/label_pretraining.py``) and how ``biggan`` uses it:
k-means against direct computation, the frozen label network, scores of the labels against direct counts, the
pretraining deterministic, cached and leaving the global RNG alone, and the real pairs D sees labelled by it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.algorithms.base import Batch, DataInfo
from ganforge.algorithms.biggan import BigGAN
from ganforge.algorithms.label_pretraining import (LabelNet, PretrainSettings, kmeans, label_all, pretrained_labeller,
                                                   score_labels)
from ganforge.data import load_source
from ganforge.errors import ConfigError
from ganforge.models.biggan import BigGANDiscriminator, BigGANGenerator
from ganforge.objectives import objective_class

from conftest import RecordingContext

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = PretrainSettings(widths=(4, 8), steps=12, batch_size=8, lr=2e-3, seed=3)


def digits(n: int = 300, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` real digits (shuffled: the source is sorted by class) at ``size`` px, uint8, and their labels."""
    ds = load_source("mnist5k")
    pick = torch.randperm(len(ds.y), generator=torch.Generator().manual_seed(0))[:n]
    x = F.interpolate(ds.x[pick].float(), size=size, mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8), ds.y[pick]


def test_kmeans_finds_separated_groups_and_its_inertia_is_the_direct_sum():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.arange(3).repeat_interleave(20)
    x = centres[truth] + 0.5 * torch.randn(60, 2, generator=g)
    c, assign, inertia = kmeans(x, 3, torch.Generator().manual_seed(1))
    # the same partition as the truth, whatever the cluster order
    assert all(len(set(assign[truth == k].tolist())) == 1 for k in range(3)) and len(set(assign.tolist())) == 3
    assert torch.allclose(c[assign[::20]], centres, atol=0.5)
    assert inertia == pytest.approx(float(((x - c[assign]) ** 2).sum()), rel=1e-5)
    again = kmeans(x, 3, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], c) and torch.equal(again[1], assign)
    with pytest.raises(ConfigError, match="clusters"):
        kmeans(x, 61, torch.Generator())


def test_label_net_is_frozen_in_inference_mode_and_labels_by_its_head_or_nearest_centroid():
    torch.manual_seed(0)
    x = torch.randn(6, 1, 16, 16)
    net = LabelNet(1, (4, 8), num_classes=5).freeze()
    net.train()                                         # an algorithm's .train() must not unfreeze it
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    assert torch.equal(net.label(x), net.classifier(net.features(x)).argmax(1))
    clusters = LabelNet(1, (4, 8), clusters=3).freeze()
    clusters.centroids.copy_(F.normalize(torch.randn(3, 8), dim=1))
    h = F.normalize(clusters.features(x), dim=1)
    direct = torch.stack([((h - c) ** 2).sum(1) for c in clusters.centroids], 1).argmin(1)
    assert torch.equal(clusters.label(x), direct)
    with pytest.raises(ValueError, match="one"):
        LabelNet(1, (4,), num_classes=3, clusters=3)


def test_label_scores_against_direct_counts():
    truth = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    labels = torch.tensor([0, 1, 1, 1, 2, 0, 2, 0])
    held = torch.zeros(8, dtype=torch.bool)
    held[[5, 6]] = True
    s = score_labels(labels, truth, "pretrained", 3, torch.tensor([0, 1]), held)
    assert s["unlabelled_accuracy"] == pytest.approx(round(5 / 6, 4)) and s["held_out_accuracy"] == 0.5
    # clusters 0: classes {0, 0, 2}, 1: {0, 1, 1}, 2: {2, 2}: majorities 2 + 2 + 2 = 6 of 8
    clusters = torch.tensor([0, 1, 1, 1, 2, 0, 2, 0])
    truth2 = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    c = score_labels(clusters, truth2, "clusters", 3, torch.zeros(0, dtype=torch.long), held)
    assert c["purity"] == 0.75 and c["matched_accuracy"] == 0.75 and c["cluster_to_class"] == [0, 1, 2]


def test_pretraining_is_deterministic_cached_and_leaves_the_global_rng_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    x, y = digits(200)
    subset = torch.arange(0, 200, 10)
    rng = torch.get_rng_state()
    first = pretrained_labeller(x, "pretrained", 10, (-1.0, 1.0), TINY, subset, y[subset], y)
    assert torch.equal(torch.get_rng_state(), rng)
    files = sorted((tmp_path / "cache" / "labels").iterdir())
    assert [f.suffix for f in files] == [".json", ".safetensors"]
    cached = pretrained_labeller(x, "pretrained", 10, (-1.0, 1.0), TINY, subset, y[subset], y)
    fresh = pretrained_labeller(x, "pretrained", 10, (-1.0, 1.0), TINY, subset, y[subset], y, use_cache=False)
    for other in (cached, fresh):
        sa, sb = first.net.state_dict(), other.net.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert torch.equal(other.labels, first.labels) and other.facts["label_counts"] == first.facts["label_counts"]
    assert torch.equal(first.labels, label_all(first.net, x, (-1.0, 1.0)))
    assert sum(first.facts["label_counts"]) == 200 and first.facts["held_out"] == 18     # a tenth of the 180 others
    # another seed or another labelled subset is another entry
    pretrained_labeller(x, "pretrained", 10, (-1.0, 1.0), PretrainSettings((4, 8), 12, 8, 2e-3, seed=4), subset,
                        y[subset])
    pretrained_labeller(x, "pretrained", 10, (-1.0, 1.0), TINY, subset + 1, y[subset + 1])
    assert len(list((tmp_path / "cache" / "labels").glob("*.safetensors"))) == 3
    clusters = pretrained_labeller(x, "clusters", 4, (-1.0, 1.0), TINY, true_labels=y)
    assert clusters.net.classifier is None and clusters.labels.max() < 4 and 0 < clusters.facts["purity"] <= 1
    assert torch.equal(clusters.labels, label_all(clusters.net, x, (-1.0, 1.0)))


def nets(classes: int) -> dict:
    G = BigGANGenerator(latent_dim=12, image_size=16, channels=1, cond_dim=classes, widths=(16, 8, 8), shared_dim=6)
    D = BigGANDiscriminator(image_size=16, channels=1, num_classes=classes, widths=(8, 8, 8),
                            downsample=(True, True, False))
    return {"G": G, "D": D}


def test_real_pairs_take_the_label_networks_labels_and_clusters_need_no_data_labels():
    torch.manual_seed(0)
    data = DataInfo("image", (1, 16, 16), 10)
    algo = BigGAN(nets(10), objective_class("hinge")(), data, latent_dim=12, labels="pretrained",
                  pretrain_widths=(4, 8))
    labeller = algo.state_modules["labeller"]
    assert labeller.classifier is not None and not labeller.training
    assert any(k.startswith("labeller.") for k in algo.state_tensors())
    x, y = torch.rand(8, 1, 16, 16) * 2 - 1, torch.arange(8)
    real, y_real = algo.real_pairs(RecordingContext(Batch(x, y)))
    assert torch.equal(real, x) and torch.equal(y_real, labeller.label(x))
    plain = BigGAN(nets(10), objective_class("hinge")(), data, latent_dim=12)
    assert "labeller" not in plain.state_modules and torch.equal(plain.real_pairs(RecordingContext(Batch(x, y)))[1], y)
    # clusters: G and D conditional on the K cluster ids, unlabelled data accepted
    unlabelled = DataInfo("image", (1, 16, 16), 0)
    params = {"labels": "clusters", "clusters": 3}
    assert not BigGAN.needs_labels_with(params) and BigGAN.needs_labels_with({"labels": "pretrained"})
    assert BigGAN.network_context(params, unlabelled)["G"]["cond_dim"] == 3
    algo = BigGAN(nets(3), objective_class("hinge")(), unlabelled, latent_dim=12, pretrain_widths=(4, 8), **params)
    assert algo.num_classes == 3 and algo.state_modules["labeller"].centroids.shape == (3, 8)
    assert algo.real_pairs(RecordingContext(Batch(x, None)))[1].max() < 3
    with pytest.raises(ConfigError, match="algorithm.clusters"):
        BigGAN(nets(3), objective_class("hinge")(), unlabelled, latent_dim=12, labels="clusters")
