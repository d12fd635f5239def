"""The shared-latent translators (UNIT, ComboGAN, XGAN) on the digit domains derived from the bundled MNIST: bit-exact
resume with random pairs of domains and full pools, a learning signal against the true counterparts it never saw
paired, grids and the model API, and the paper recipes on a user's folders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build, build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range
from ganforge.metrics.paired import l1
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer

from conftest import assert_same_checkpoint, learned, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "algorithm.latent_dim": 8, "networks.E.n_blocks": 1, "networks.Dec.n_blocks": 1,
        "networks.D.filters": 4, "networks.D_lat.filters": 4, "train.batch_size": 4, "algorithm.pool_size": 6,
        "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}   # constant lr: the decay re-targets to the new total
# when --resume --steps changes it (trainer.lr_factor), which is not bit-exact


def test_resume_is_bit_exact_with_random_pairs_noise_and_full_pools(tmp_path, capsys):
    # ComboGAN on three domains (a random pair per step) with UNIT's latent noise on: every random draw of the step
    settings = {**TINY, "algorithm.latent_noise": 0.5, "algorithm.recon_weight": 1.0}
    straight = ganforge.train("combogan-digits", steps=8, out=tmp_path / "a", progress=False, overrides=settings)
    ganforge.train("combogan-digits", steps=4, out=tmp_path / "b", progress=False, overrides=settings)
    half = read_checkpoint(latest_checkpoint(tmp_path / "b"))[0]
    resumed = ganforge.train(resume=tmp_path / "b", steps=8, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)      # weights, both optimizers, the RNG, and the algorithm.* pools among a[0]
    pools = [k for k in a[0] if k.startswith("algorithm.pool_")]
    assert sorted(pools) == [f"algorithm.pool_{d}.{t}" for d in range(3) for t in ("count", "images")]
    for key in pools:
        assert torch.equal(a[0][key], b[0][key]), key
    assert max(int(half[f"algorithm.pool_{d}.count"]) for d in range(3)) == 6           # a full pool swapped after
    for name in ("b", "c"):
        assert a[1]["streams"][name]["generator"].equal(b[1]["streams"][name]["generator"])
    # the grid: input | to each other domain | target, from the held-out digits with their true edges
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "input | to negative | to edges | target"
    # and the run translates between any two domains through the model API
    model = ganforge.load(straight.run_dir)
    digits = load_source("mnist5k?split=test").x[:3]
    assert model.translate(digits, to="edges").shape == (3, 1, 28, 28)
    assert model.translate(digits, to="plain", from_domain="negative").shape == (3, 1, 28, 28)
    # and on the command line: an npz of digits to the edge domain, in the same order
    np.savez(tmp_path / "in.npz", digits.permute(0, 2, 3, 1).numpy())
    code, out, err = run_cli(["translate", straight.run_dir, "--input", tmp_path / "in.npz", "--out",
                              tmp_path / "out.npz", "--to", "edges"], capsys)
    assert code == 0, err
    written = np.load(tmp_path / "out.npz")["arr_0"]
    assert written.shape == (3, 28, 28, 1) and written.dtype == np.uint8
    direct = model.translate(digits, to="edges")[:, 0].numpy().astype(int)
    assert np.abs(written[..., 0].astype(int) - direct).max() <= 1      # the same up to float rounding of the layout
    code, _, err = run_cli(["translate", straight.run_dir, "--input", tmp_path / "in.npz", "--out",
                            tmp_path / "bad.npz", "--to", "thick"], capsys)
    assert code == 2 and "unknown domain 'thick' for to; the model has domains plain, negative, edges" in err


# A real translation in a few seconds: digits -> negatives with UNIT's losses (shared blocks, VAE noise, KL, the
# cycle). The reconstruction and cycle terms are met by any invertible code, copying included; so Dec_1(E_0(a)) ends
# nearer the true negative than the input is only if the adversarial game worked through the shared latent.
LEARN = {**QUIET, "data.streams.b.source": "mnist5k?split=train&domain=negative",
         "data.held_out": "mnist5k?split=test&domain=negative&paired=1", "algorithm.domains": ["plain", "negative"],
         "algorithm.latent_dim": 16,
         "networks.D.filters": 8, "train.batch_size": 8, "train.log_every": 10,
         "optim.G.lr": 1e-3, "optim.D.lr": 1e-3, "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}


def test_unpaired_training_learns_the_true_counterpart(tmp_path):
    steps = 100
    run = ganforge.train("unit-digits", steps=steps, out=tmp_path / "r", progress=False, overrides=LEARN)
    test = load_source("mnist5k?split=test&domain=negative&paired=1")
    a, b = test.x[:300], test.fields["target"][:300]
    model = ganforge.load(run.run_dir)
    untrained = build_algorithm(run.config, model.info)
    with torch.no_grad(), eval_mode(*untrained.nets.values()):
        before = untrained.translate(to_model_range(a, (-1.0, 1.0)))
    to_u8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)   # noqa: E731
    after_l1 = float(l1(model.translate(a), b).mean())
    learned("L1 of Dec_1(E_0(a)) to the true negative vs the untrained networks'", after_l1,
            0.5 * float(l1(to_u8(before), b).mean()), higher=False)
    learned("L1 of Dec_1(E_0(a)) to the true negative vs copying the input", after_l1, 0.5 * float(l1(a, b).mean()),
            higher=False)
    rows = [r for r in map(json.loads, (run.run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("kind") == "train"]
    learned("cycle loss, last logged vs first", rows[-1]["cycle"], 0.5 * rows[0]["cycle"], higher=False)


def _folder(root, names, n=3, size=20):
    rng = np.random.default_rng(0)
    for part in names:
        (root / part).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / part / f"{i}.png")
    return root


def test_paper_recipes_read_a_users_folders(tmp_path):
    small = {"data.image_size": 16, "algorithm.latent_dim": 8, "networks.D.filters": 4, "networks.D.n_layers": 1,
             "networks.D_lat.filters": 4, **QUIET}
    # UNIT and XGAN on CycleGAN's unaligned layout: one --data and one --set
    root = _folder(tmp_path / "u", ("trainA", "trainB"))
    for recipe in ("unit", "xgan"):
        cfg = load_config(recipe, {**small, "data.source": f"unaligned:{root}?domain=A",
                                   "data.streams.b.source": f"unaligned:{root}?domain=B"})
        built = build(cfg)
        assert built.info.sample_shape == (3, 16, 16) and built.algorithm.names == ["A", "B"]
        t = Trainer(built, tmp_path / f"r-{recipe}", progress=False)
        t.train_step()
    # ComboGAN on its own layout, a folder per domain: the four domains of its recipe, one stream each
    root = _folder(tmp_path / "c", ("trainA", "trainB", "trainC", "trainD"))
    built = build(load_config("combogan", {**small, "data.source": f"folder:{root}/trainA",
                                           **{f"data.streams.{s}.source": f"folder:{root}/train{s.upper()}"
                                              for s in "bcd"}}))
    assert built.algorithm.n_domains == 4 and built.algorithm.domain_streams == ["main", "b", "c", "d"]
    t = Trainer(built, tmp_path / "r-combogan", progress=False)
    t.train_step()
    assert sum(len(t.algorithm.pool(d)) for d in range(4)) == 2        # one fake each in the pair's two pools
