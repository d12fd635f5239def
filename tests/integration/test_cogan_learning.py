"""CoGAN on the digit domains derived from the bundled MNIST: unaligned streams, bit-exact resume, sampling either
domain (EMA copy, ``ganforge sample``), a learning signal on real digits, and the paper recipe on a user's unaligned
folders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.base import DataInfo, eval_mode
from ganforge.build import build, build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer

from conftest import assert_same_checkpoint, learned, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "networks.G.filters": 8, "networks.D.filters": [4, 6, 8], "train.batch_size": 4,
        "algorithm.latent_dim": 8}


def test_resume_is_bit_exact_and_both_domains_sample(tmp_path, capsys):
    tiny = {**TINY, "train.ema.enabled": True, "train.ema.decay": 0.9}
    straight = ganforge.train("cogan-digits", steps=6, out=tmp_path / "a", progress=False, overrides=tiny)
    ganforge.train("cogan-digits", steps=3, out=tmp_path / "b", progress=False, overrides=tiny)
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)          # the coupled weights, the EMA copy, both optimizers, the RNG
    assert any(k.startswith("nets.G.shared.") for k in a[0]) and any(k.startswith("ema.G.private_b.") for k in a[0])
    assert a[1]["streams"]["b"]["generator"].equal(b[1]["streams"]["b"]["generator"])
    # the progress grid: the pair each z gives
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "domain A | domain B"
    # samples are domain A's by default, domain B's on request, from the EMA generator
    model = ganforge.load(straight.run_dir)
    x_a, x_b = model.sample(5, seed=3), model.sample(5, seed=3, domain="b")
    with torch.no_grad(), eval_mode(model.nets["G"]):
        pair = model.nets["G"](model.algorithm.noise(5, torch.device("cpu"), torch.Generator().manual_seed(3)))
    assert torch.equal(x_a, pair[0]) and torch.equal(x_b, pair[1])
    assert not torch.equal(model.nets["G"].private_a[-1][0].weight, model.algorithm.nets["G"].private_a[-1][0].weight)
    code, out, _ = run_cli(["sample", straight.run_dir, "--n", 6, "--out", tmp_path / "s.npz"], capsys)
    assert code == 0 and np.load(tmp_path / "s.npz")["arr_0"].shape == (6, 28, 28, 1)
    code, _, err = run_cli(["translate", straight.run_dir, "--input", tmp_path / "s.npz", "--out",
                            tmp_path / "t.npz"], capsys)
    assert code == 2 and "generates from noise; it does not translate images" in err


# What CoGAN learns, in a few seconds on real digits: with shared layers, the two images one z gives come to show the
# same digit (their pixels correlate, pair by pair, beyond what any two samples' common layout gives); two independent
# GANs (shared_layers 0, the paper's baseline) trained alike give unrelated pairs. The private layers start as
# independent random maps, so the correspondence is learned (against the untrained pairs), not built in. Domain B is
# the thick digits here: a tiny model makes corresponding pairs of them in 150 steps, while the recipe's edges take
# the full budget (bench/cogan_digits.py). Each domain's mean image must also move towards its own real domain's,
# and domain B must come out bolder than A, as the real thick digits are (untrained, both are the same grey).
B_DOMAIN = "thick"
LEARN = {**QUIET, "data.streams.b.source": f"mnist5k?split=train&domain={B_DOMAIN}", "networks.G.filters": 32,
         "networks.D.filters": [8, 16, 64], "train.batch_size": 16, "optim.G.lr": 1e-3, "optim.D.lr": 1e-3,
         "train.log_every": 10}


def pair_correlation(x_a: torch.Tensor, x_b: torch.Tensor) -> float:
    """Mean Pearson correlation of the pixels of x_A[i] and x_B[i], minus the same for shuffled pairs."""
    def corr(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = a.flatten(1).double(), b.flatten(1).double()
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        return float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-12)).mean())
    shuffle = torch.randperm(len(x_b), generator=torch.Generator().manual_seed(5))
    return corr(x_a, x_b) - corr(x_a, x_b[shuffle])


def trained_pairs(tmp_path, name: str, steps: int, **overrides) -> tuple[tuple, tuple, object]:
    run = ganforge.train("cogan-digits", steps=steps, out=tmp_path / name, progress=False,
                         overrides={**LEARN, **overrides})
    model = ganforge.load(run.run_dir)
    untrained = build_algorithm(run.config, model.info).nets["G"]
    z = model.algorithm.noise(300, torch.device("cpu"), torch.Generator().manual_seed(0))
    with torch.no_grad(), eval_mode(model.nets["G"]), eval_mode(untrained):
        return model.nets["G"](z), untrained(z), run


def test_shared_layers_make_the_pairs_correspond_and_each_domain_learns_its_look(tmp_path):
    steps = 150
    after, before, run = trained_pairs(tmp_path, "coupled", steps)
    uncoupled, _, _ = trained_pairs(tmp_path, "uncoupled", steps, **{"networks.G.shared_layers": 0,
                                                                     "networks.D.shared_layers": 0})
    coupled_corr = pair_correlation(*after)
    learned("coupled: pair correlation of x_A and x_B beyond shuffled pairs, trained vs untrained", coupled_corr,
            max(0.1, 2 * pair_correlation(*before)), chance=0.0)
    learned("uncoupled (shared_layers 0) pair correlation vs the coupled one", pair_correlation(*uncoupled),
            0.3 * coupled_corr, higher=False)
    real = {"A": load_source("mnist5k?split=test").x[:300].float().mean(0) / 255,
            "B": load_source(f"mnist5k?split=test&domain={B_DOMAIN}").x[:300].float().mean(0) / 255}
    for i, name in enumerate("AB"):
        gap_after = float((after[i].mean(0) - real[name]).abs().mean())
        gap_before = float((before[i].mean(0) - real[name]).abs().mean())
        learned(f"domain {name}: mean image's L1 to the real domain's, trained vs untrained", gap_after,
                0.75 * gap_before, higher=False)
    real_ratio = float(real["B"].mean() / real["A"].mean())          # thick digits have about twice the ink
    learned(f"ink of domain B's samples over domain A's (real {B_DOMAIN} over plain: {real_ratio:.2f})",
            float(after[1].mean() / after[0].mean()), 1 + 0.1 * (real_ratio - 1), chance=1.0)
    rows = [json.loads(r) for r in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["d_loss"]) for r in rows if r.get("kind") == "train")


def test_paper_recipe_is_the_papers_and_reads_unaligned_folders(tmp_path):
    cfg = load_config("cogan")
    assert cfg.train.batch_size == 128 and cfg.data.image_size == 128 and cfg.objective.name == "nonsaturating"
    assert cfg.optim["G"].lr == 2e-4 and cfg.optim["G"].betas == (0.5, 0.999)
    assert cfg.algorithm.params["latent_dim"] == 100 and cfg.algorithm.params["latent_dist"] == "uniform"
    rgb = DataInfo("image", (3, 128, 128), 0, streams={"b": DataInfo("image", (3, 128, 128), 0)})
    algo = build_algorithm(cfg, rgb)
    assert algo.nets["G"].total_layers == 7 and algo.nets["G"].shared_layers == 6 and algo.nets["D"].shared_layers == 7
    assert algo.value_range == (-1.0, 1.0)
    # a user's folders in the unaligned layout, colour beside grey (the paper's colour and depth pair): one --data
    # and one --set, small images and widths to stay fast
    rng = np.random.default_rng(0)
    for part, mode in (("trainA", "RGB"), ("trainB", "L")):
        (tmp_path / "d" / part).mkdir(parents=True)
        for i in range(3):
            shape = (20, 20, 3) if mode == "RGB" else (20, 20)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(tmp_path / "d" / part / f"{i}.png")
    root = tmp_path / "d"
    small = {"data.source": f"unaligned:{root}?domain=A", "data.streams.b.source": f"unaligned:{root}?domain=B",
             "data.streams.b.channels": 1,
             "data.image_size": 16, "networks.G.filters": 8, "networks.D.filters": [2, 4, 4, 8], "train.batch_size": 2,
             **QUIET}
    built = build(load_config("cogan", small))
    assert built.info.sample_shape[1:] == built.info.streams["b"].sample_shape[1:] == (16, 16)
    t = Trainer(built, tmp_path / "r", progress=False)
    t.train_step()
    with torch.no_grad():
        x_a, x_b = t.algorithm.nets["G"].eval()(torch.zeros(1, 100))
    assert x_a.shape == (1, 3, 16, 16) and x_b.shape == (1, 1, 16, 16)     # each domain's own channels
    assert float(x_a.abs().max()) <= 1.0                                     # tanh: the data's [-1, 1]
