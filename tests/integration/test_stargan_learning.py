"""StarGAN on the digit domains mixed in one set: bit-exact resume, the grid's columns, translate through the model
API; a learning signal (a short run's translations reach the target domain far more often than copying the input
does, and D tells the domains of held-out real digits apart); and the mask vector: two datasets with different label
sets trained at once, resumed bit-exactly, translating to the domains of either."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.data import load_source, to_model_range
from ganforge.data.mnist5k import derive
from ganforge.errors import ConfigError

from conftest import assert_same_checkpoint, learned, straight_and_resumed

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "networks.G.filters": 4, "networks.G.n_blocks": 1, "networks.D.filters": 4, "train.batch_size": 4,
        "algorithm.n_critic": 2, "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}


def test_resume_is_bit_exact_and_the_grid_shows_every_domain(tmp_path):
    assert_same_checkpoint(*straight_and_resumed("stargan-digits", tmp_path, TINY))
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "input | to plain | to negative | to edges"
    model = ganforge.load(tmp_path / "a")
    digits = load_source("mnist5k?split=test", seed=0).x[:3]
    assert model.translate(digits, to="edges").shape == (3, 1, 28, 28)
    with pytest.raises(ConfigError, match="unknown domain"):
        model.translate(digits, to="thick")


DOMAINS = ["plain", "negative", "edges"]
HELD_OUT = "mnist5k?split=test&domains=plain,negative,edges"


def nearest_domain_accuracy(model, inputs: torch.Tensor, digits: torch.Tensor) -> float:
    """Share of translations (every input to every domain) whose nearest true version of their digit, in mean
    absolute difference, is the target domain's (bench/stargan_digits.py's target-domain accuracy)."""
    versions = torch.stack([digits if d == "plain" else derive(digits, d) for d in DOMAINS]).float()
    hits = []
    for k, name in enumerate(DOMAINS):
        out = model.translate(inputs, to=name).float()
        hits.append((out.unsqueeze(0) - versions).abs().flatten(2).mean(2).argmin(0) == k)
    return float(torch.cat(hits).float().mean())


# The digit recipe at a test's size: narrow networks, batch 8, a constant lr.
LEARN = {**QUIET, "networks.G.filters": 8, "networks.D.filters": 16, "train.batch_size": 8, "train.log_every": 5,
         "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}
LEARN_STEPS = 40


def test_a_short_run_reaches_the_target_domains(tmp_path):
    steps = LEARN_STEPS
    run = ganforge.train("stargan-digits", steps=steps, out=tmp_path / "r", progress=False, overrides=LEARN)
    model = ganforge.load(run.run_dir)
    held = load_source(HELD_OUT, seed=0)
    digits = load_source("mnist5k?split=test", seed=0).x
    pick = torch.arange(0, len(held), 5)                      # 200 held-out digits, every class
    inputs, domain = held.x[pick], held.fields["domain"][pick]
    # Copying the input is right only when the target is the input's own domain: a third of the pairs.
    copy = float(sum((domain == k).float().mean() for k in range(3)) / 3)
    assert abs(copy - 1 / 3) < 0.01
    learned("target-domain accuracy of the translations (nearest true version), copy-the-input 1/3",
            nearest_domain_accuracy(model, inputs, digits[pick]), 0.5, chance=copy)
    D = model.algorithm.nets["D"]
    with torch.no_grad(), eval_mode(D):
        logits = D(to_model_range(inputs, (-1.0, 1.0))).classes
    learned("D's domain classification of held-out real digits, chance 1/3",
            float((logits.argmax(1) == domain).float().mean()), 0.8, chance=1 / 3)
    rows = [r for r in map(json.loads, (run.run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("kind") == "train"]
    learned("G's domain classification loss, last logged vs first", rows[-1]["g_cls"], 0.5 * rows[0]["g_cls"],
            higher=False)


# -- the mask vector: dataset one = plain / negative digits (main), dataset two = edges / thick digits (stream b) ----
TWO_SETS_TINY = {**TINY, "algorithm.n_critic": 1}


def test_two_datasets_with_the_mask_vector_resume_bit_exactly_and_translate_to_either(tmp_path):
    a, b = straight_and_resumed("stargan-digits-two-sets", tmp_path, TWO_SETS_TINY)
    assert_same_checkpoint(a, b)
    assert a[1]["streams"]["b"]["generator"].equal(b[1]["streams"]["b"]["generator"])
    model = ganforge.load(tmp_path / "a")
    G, D = model.algorithm.nets["G"], model.algorithm.nets["D"]
    assert G.cond_dim == 2 + 2 + 2 and D.cond_dim == 2 + 2               # [plain negative | edges thick | mask]
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "input | to plain | to negative | to edges | to thick"
    rows = [r for r in map(json.loads, (tmp_path / "a" / "metrics.jsonl").read_text().splitlines())
            if r.get("kind") == "train"]
    assert {"d_cls_acc_digits", "d_cls_acc_strokes", "g_cls_digits", "g_cls_strokes"} <= set(rows[-1])
    digits = load_source("mnist5k?split=test", seed=0).x[:3]
    for to in ("negative", "thick", 3):                      # a domain of either dataset, by name or index
        assert model.translate(digits, to=to).shape == (3, 1, 28, 28)
    assert not torch.equal(model.translate(digits, to="negative"), model.translate(digits, to="thick"))
    with pytest.raises(ConfigError, match="unknown domain 'thin'.*plain, negative, edges, thick"):
        model.translate(digits, to="thin")
