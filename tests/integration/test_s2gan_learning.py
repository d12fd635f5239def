"""S2GAN (pretrained classifier) and the clustering variant on real digits: every new recipe builds and takes steps
with the pretrained labels at tiny width (facts of the pretraining in the setup row), the clustering recipe trains
on a folder without labels, a resume is bit-exact with the frozen label network in the checkpoint, and a cheap
learning signal: the semi-supervised label network labels the unlabelled digits far above chance in seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.label_pretraining import PretrainSettings, pretrained_labeller
from ganforge.algorithms.triplegan import choose_labelled

from conftest import assert_same_checkpoint, learned, straight_and_resumed

pytestmark = pytest.mark.usefixtures("one_thread")

# biggan's TINY of test_biggan_learning.py (16 px digits, widths 8-16), with a label network of 4 / 8 channels
# pretrained for 20 steps
TINY = {"train.threads": 1, "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 1000,
        "train.grid_size": 4, "data.source": "mnist5k", "data.image_size": 16, "data.channels": 1,
        "train.batch_size": 8, "algorithm.latent_dim": 12, "algorithm.n_critic": 1, "networks.G.widths": [16, 8, 8],
        "networks.G.shared_dim": 8, "networks.G.attention": None, "networks.D.widths": [8, 8, 8],
        "networks.D.downsample": [True, True, False], "networks.D.attention": None, "train.ema.start": 0,
        "algorithm.pretrain_steps": 20, "algorithm.pretrain_widths": [4, 8], "algorithm.pretrain_batch_size": 8}


def rows(run, kind: str = "train") -> list[dict]:
    """The rows of one kind of a run (or of a run directory)."""
    out = [json.loads(line) for line in (getattr(run, "run_dir", run) / "metrics.jsonl").read_text().splitlines()]
    return [r for r in out if r.get("kind") == kind]


@pytest.mark.parametrize("recipe", ["s2gan-digits", "s2gan", "biggan-clusters-digits", "biggan-clusters"])
def test_every_new_recipe_builds_and_takes_two_steps_on_pretrained_labels(recipe, tmp_path):
    run = ganforge.train(recipe, steps=2, out=tmp_path / "run", progress=False, overrides=TINY)
    assert run.steps == 2
    setup = rows(run, "setup")[0]
    train = rows(run)
    assert len(train) == 2 and all(np.isfinite([r["d_loss"], r["g_loss"]]).all() for r in train)
    assert sum(setup["pretrain_label_counts"]) == 5000 and setup["pretrain_steps"] == 20
    if recipe.startswith("s2gan"):
        assert setup["pretrain_labelled"] == 500 and 0 <= setup["pretrain_unlabelled_accuracy"] <= 1
        assert all("pseudo_label_accuracy" in r for r in train)
    else:
        assert setup["pretrain_labelled"] == 0 and 0.1 <= setup["pretrain_purity"] <= 1
        assert sorted(setup["pretrain_cluster_to_class"]) == list(range(10))
    model = ganforge.load(run.run_dir)
    assert model.sample(3, labels=[1, 2, 3], per_row=1).shape == (3, 1, 16, 16)


def test_clusters_train_on_a_folder_without_labels(tmp_path):
    from ganforge.data import load_source
    ds = load_source("mnist5k")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(0, 5000, 125):                 # 40 digits of every class, no class subfolders: no labels
        Image.fromarray(ds.x[i, 0].numpy()).save(folder / f"{i}.png")
    over = {**TINY, "data.source": f"folder:{folder}", "algorithm.clusters": 3}
    run = ganforge.train("biggan-clusters-digits", steps=2, out=tmp_path / "run", progress=False, overrides=over)
    setup = rows(run, "setup")[0]
    assert "pretrain_purity" not in setup and sum(setup["pretrain_label_counts"]) == 40
    assert len(setup["pretrain_label_counts"]) == 3
    model = ganforge.load(run.run_dir)
    assert model.algorithm.num_classes == 3 and model.sample(3, labels=[0, 1, 2], per_row=1).shape == (3, 1, 16, 16)


def test_s2gan_resume_is_bit_exact_with_its_frozen_label_network(tmp_path):
    over = {**TINY, "algorithm.n_critic": 2}
    a, b = straight_and_resumed("s2gan-digits", tmp_path, over)
    assert_same_checkpoint(a, b)            # weights, EMA, both optimizers, the RNG and the algorithm.* state
    keys = [k for k in a[0] if k.startswith("algorithm.labeller.")]
    assert "algorithm.labeller.classifier.weight" in keys and all(torch.equal(a[0][k], b[0][k]) for k in keys)
    assert [r["pseudo_label_accuracy"] for r in rows(tmp_path / "a")] == [r["pseudo_label_accuracy"] for r in rows(tmp_path / "b")]


# The semi-supervised pretraining learns in a few CPU seconds: rotation + the cross-entropy of 100 labelled digits
# (10 %) at 16 px, 8 / 16 channels, 150 steps. Measured: the unlabelled digits labelled 0.54 right (chance 0.1),
# held-out rotations 0.68 right (chance 0.25).
def test_pretrained_classifier_labels_the_unlabelled_digits_far_above_chance():
    from ganforge.data import load_source
    import torch.nn.functional as F
    ds = load_source("mnist5k")
    pick = torch.randperm(len(ds.y), generator=torch.Generator().manual_seed(0))[:1000]   # the source is sorted
    x = F.interpolate(ds.x[pick].float(), size=16, mode="bilinear", antialias=True).round().clamp(0, 255)
    x, y = x.to(torch.uint8), ds.y[pick]
    subset = choose_labelled(y, 100, 10, torch.Generator().manual_seed(0))
    settings = PretrainSettings(widths=(8, 16), steps=150, batch_size=16, lr=2e-3, seed=0)
    pre = pretrained_labeller(x, "pretrained", 10, (-1.0, 1.0), settings, subset, y[subset], y, use_cache=False)
    learned("pretrained labels of the unlabelled digits", pre.facts["unlabelled_accuracy"], 0.3, chance=0.1)
    learned("rotation accuracy held out", pre.facts["held_out_rotation_accuracy"], 0.4, chance=0.25)
