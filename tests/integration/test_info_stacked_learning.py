"""Short real runs of InfoGAN and StackedGAN on the bundled digits that must show the codes taking hold.

The networks are shrunk (and the generators' learning rate and BN momentum raised) so a run takes seconds; the
judge is a cosine nearest-neighbour classifier on the 4000 training digits (95% on the 1000 held out), which is
cheap enough for a test, unlike training the domain classifier.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source
from ganforge.data.mnist5k import split_train_test
from ganforge.metrics.code_purity import code_purity
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import learned, run_cli

QUIET = {"train.threads": 1, "train.log_every": 50, "train.sample_every": 1000, "train.grid_size": 4,
         "train.batch_size": 32}
SMALL_INFO = {**QUIET, "optim.G.lr": 1e-3, "networks.G.filters": [32, 16, 8], "networks.D.filters": [4, 8, 16, 16],
              "networks.G.bn_momentum": 0.9}
SMALL_STACKED = {**QUIET, "optim.G0.lr": 1e-3, "optim.G1.lr": 1e-3, "networks.G0.filters": [32, 16, 8],
                 "networks.D0.filters": [4, 8, 16, 16], "networks.E0.filters": 8, "networks.G1.hidden": [64, 64], "networks.D1.hidden": [64, 64],
                 "networks.G0.bn_momentum": 0.9, "networks.G1.bn_momentum": 0.9, "algorithm.feature_dim": 32,
                 "algorithm.latent_dim": 8, "algorithm.encoder_epochs": 2}


@pytest.fixture(scope="module")
def judge():
    """(classify(images in [0, 1]) -> digits, held-out accuracy): 5-NN on centred, unit-norm pixel vectors."""
    train, test = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)

    def unit(x: torch.Tensor) -> torch.Tensor:
        x = x.float().flatten(1)
        x = x - x.mean(1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)

    ref, ref_y = unit(train.x), train.y

    def classify(images: torch.Tensor) -> torch.Tensor:
        idx = (unit(images) @ ref.T).topk(5).indices
        return F.one_hot(ref_y[idx], 10).sum(1).argmax(1)

    return classify, float((classify(test.x) == test.y).float().mean())


def _balanced(sample, k: int = 10, per: int = 50):
    images, codes = sample(per * k, seed=7, labels=list(range(k)), per_row=per)
    return images, codes


def test_infogan_categorical_code_takes_hold(tmp_path, judge, capsys):
    classify, held_out = judge
    assert held_out > 0.9
    untrained = build_algorithm(load_config("infogan-mnist", SMALL_INFO), _digits_info()).eval()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        inputs = untrained.sample_inputs(500, gen, torch.device("cpu"), labels=list(range(10)), per_row=50)
        before = code_purity(inputs["label"], classify(untrained.generate(inputs)), 10, 10).purity
    run = ganforge.train("infogan-mnist", steps=150, out=tmp_path / "info", progress=False, overrides=SMALL_INFO)
    images, codes = _balanced(ganforge.load(run.run_dir).sample_with_inputs)
    after = code_purity(codes, classify(images), 10, 10)
    # measured: 0.38 after 150 steps (0.1-0.15 untrained); chance, a code the images ignore, is ~0.13 here
    # measured 0.39-0.50 (gain 0.23-0.35) on seeds 0-2, AVX-512 Xeon and AVX2 kernels
    learned("categorical-code purity after 150 steps", after.purity, 0.25, chance=0.13)
    learned("purity gain over the untrained generator", after.purity - before, 0.1, chance=0.0)
    assert np.isfinite(run.last_metrics["g_c1_loss"]) and "d_label_acc" in run.last_metrics
    # npz export: `labels` holds the categorical code of each sample
    code, _, _ = run_cli(["sample", run.run_dir, "--n", "20", "--labels", "0-9", "--per-row", "2",
                          "--out", tmp_path / "s.npz"], capsys)
    assert code == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["labels"].tolist() == [v for v in range(10) for _ in range(2)] and f["arr_0"].shape == (20, 28, 28, 1)


def test_stackedgan_labels_survive_both_stages(tmp_path, judge):
    classify, _ = judge
    run = ganforge.train("stackedgan-mnist", steps=150, out=tmp_path / "stacked", progress=False,
                         overrides=SMALL_STACKED)
    model = ganforge.load(run.run_dir)
    images, labels = _balanced(model.sample_with_inputs)
    accuracy = float((classify(images) == labels).float().mean())
    # measured: 0.65 after 150 steps; chance is 0.1
    # measured 0.47-0.64 on seeds 0-2, AVX-512 Xeon and AVX2 kernels
    learned("label accuracy through both stages after 150 steps", accuracy, 0.25, chance=0.1)
    # the encoder was pretrained once (a setup row with its held-out accuracy) and stayed frozen since
    setup = [r for r in _metrics(run.run_dir) if r.get("kind") == "setup"]
    assert len(setup) == 1
    learned("pretrained encoder held-out accuracy", setup[0]["encoder_test_accuracy"], 0.45, chance=0.1)
    _, test = split_train_test(load_source("mnist5k"), test_per_class=100, seed=0)
    after = model.algorithm.encoder_accuracy(test.x, test.y)
    assert after == pytest.approx(setup[0]["encoder_test_accuracy"], abs=1e-4)


def test_stackedgan_resume_is_exact_and_keeps_the_pretrained_encoder(tmp_path):
    over = {**SMALL_STACKED, "algorithm.encoder_epochs": 1, "train.checkpoint_every": 2}
    straight = ganforge.train("stackedgan-mnist", steps=3, out=tmp_path / "a", progress=False, overrides=over)
    part = ganforge.train("stackedgan-mnist", steps=2, out=tmp_path / "b", progress=False, overrides=over)
    ganforge.train(resume=part.run_dir, steps=3, progress=False)
    wa, _, _ = read_checkpoint(latest_checkpoint(straight.run_dir), with_training=False)
    wb, _, _ = read_checkpoint(latest_checkpoint(part.run_dir), with_training=False)
    assert wa.keys() == wb.keys() and any(k.startswith("nets.E0.") for k in wa)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len([r for r in _metrics(part.run_dir) if r.get("kind") == "setup"]) == 1   # not re-run on resume


# ------------------------------------------------------------------------------------------------- helpers
def _digits_info():
    from ganforge.algorithms import DataInfo
    return DataInfo(kind="image", sample_shape=(1, 28, 28), num_classes=10)


def _metrics(run_dir):
    import json
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

