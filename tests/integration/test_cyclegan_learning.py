"""CycleGAN on the digit domains derived from the bundled MNIST: unaligned streams, bit-exact resume with full image
pools, a learning signal against the true counterparts it never saw paired, and the paper recipe on a user's
unaligned folder."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.base import DataInfo, eval_mode
from ganforge.build import build, build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, to_model_range
from ganforge.data.mnist5k import derive
from ganforge.metrics.paired import l1
from ganforge.models.patchgan import receptive_field
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint
from ganforge.train.trainer import Trainer

from conftest import assert_same_checkpoint, learned

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "networks.G_AB.filters": 4, "networks.G_BA.filters": 4, "networks.G_AB.n_blocks": 1,
        "networks.G_BA.n_blocks": 1, "networks.D_A.filters": 4, "networks.D_B.filters": 4, "train.batch_size": 4,
        "algorithm.pool_size": 6, "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}   # constant lr: the decay
# re-targets to the new total when --resume --steps changes it (trainer.lr_factor), which is not bit-exact


def test_the_two_streams_draw_different_digits(tmp_path):
    t = Trainer(build(load_config("cyclegan-digits", TINY)), tmp_path / "r", progress=False)
    a_idx = torch.cat([t.sampler.next() for _ in range(50)])
    b_idx = torch.cat([t.stream_samplers["b"].next() for _ in range(50)])
    assert float((a_idx == b_idx).float().mean()) < 0.01      # unaligned: position by position other digits
    a, b = t.next_batch(), t.next_batch("b")
    assert not torch.equal(to_model_range(derive(((a.x + 1) * 127.5).round().to(torch.uint8), "edges"),
                                          (-1.0, 1.0)), b.x)


def test_resume_is_bit_exact_with_full_pools(tmp_path):
    straight = ganforge.train("cyclegan-digits", steps=6, out=tmp_path / "a", progress=False, overrides=TINY)
    ganforge.train("cyclegan-digits", steps=3, out=tmp_path / "b", progress=False, overrides=TINY)
    half = read_checkpoint(latest_checkpoint(tmp_path / "b"))[0]
    # 3 steps of 4 fakes: each pool is full (6) at the checkpoint, so the resumed steps swap images
    assert half["algorithm.pool_A.images"].shape == (6, 1, 28, 28) and int(half["algorithm.pool_B.count"]) == 6
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)      # weights, both optimizers, the RNG, and the algorithm.* pools among a[0]
    for key in ("pool_A.images", "pool_A.count", "pool_B.images", "pool_B.count"):
        assert torch.equal(a[0][f"algorithm.{key}"], b[0][f"algorithm.{key}"]), key
    assert not torch.equal(a[0]["algorithm.pool_B.images"], half["algorithm.pool_B.images"])   # it moved on
    assert a[1]["streams"]["b"]["generator"].equal(b[1]["streams"]["b"]["generator"])
    # the grid: input | output | reconstruction | target, from the held-out digits with their true edges
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "input | output | reconstruction | target"
    # and the run translates both ways through the model API
    model = ganforge.load(straight.run_dir)
    digits = load_source("mnist5k?split=test").x[:3]
    assert model.translate(digits).shape == (3, 1, 28, 28)
    assert model.translate(digits, direction="BtoA").shape == (3, 1, 28, 28)


# A real translation in a few seconds: digits -> negatives. Only D can teach it: the identity loss pulls G_AB
# towards copying (G_AB(b) = b) and the cycle loss is met by any invertible map, copying included; so G_AB(a) ends
# nearer the true negative than the input is only if the adversarial game worked.
LEARN = {**QUIET, "data.streams.b.source": "mnist5k?split=train&domain=negative",
         "data.held_out": "mnist5k?split=test&domain=negative&paired=1", "networks.G_AB.filters": 8,
         "networks.G_BA.filters": 8, "networks.G_AB.n_blocks": 1, "networks.G_BA.n_blocks": 1,
         "networks.D_A.filters": 8, "networks.D_B.filters": 8, "train.batch_size": 8, "train.log_every": 10,
         "algorithm.identity_weight": 0.5,
         "optim.G.lr": 1e-3, "optim.D.lr": 1e-3, "optim.G.decay_steps": 0, "optim.D.decay_steps": 0}


def test_unpaired_training_learns_the_true_counterpart(tmp_path):
    steps = 120
    run = ganforge.train("cyclegan-digits", steps=steps, out=tmp_path / "r", progress=False, overrides=LEARN)
    test = load_source("mnist5k?split=test&domain=negative&paired=1")
    a, b = test.x[:300], test.fields["target"][:300]
    model = ganforge.load(run.run_dir)
    torch.manual_seed(0)
    untrained = build_algorithm(run.config, model.info).nets["G_AB"]
    with torch.no_grad(), eval_mode(untrained):
        before = untrained(to_model_range(a, (-1.0, 1.0)))
    to_u8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)   # noqa: E731
    after_l1 = float(l1(model.translate(a), b).mean())
    learned("L1 of G_AB(a) to the true negative vs the untrained G_AB's", after_l1,
            0.5 * float(l1(to_u8(before), b).mean()), higher=False)
    learned("L1 of G_AB(a) to the true negative vs copying the input", after_l1, 0.5 * float(l1(a, b).mean()),
            higher=False)
    rows = [r for r in map(__import__("json").loads, (run.run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("kind") == "train"]
    learned("cycle loss, last logged vs first", rows[-1]["cycle"], 0.5 * rows[0]["cycle"], higher=False)


def test_paper_recipe_is_the_papers_and_reads_an_unaligned_folder(tmp_path):
    cfg = load_config("cyclegan")
    assert cfg.train.batch_size == 1 and cfg.data.image_size == 256 and cfg.objective.name == "lsgan"
    assert cfg.optim["G"].lr == 2e-4 and cfg.optim["G"].betas == (0.5, 0.999) and cfg.optim["G"].schedule == "linear"
    assert cfg.optim["D"].decay_steps * 2 == cfg.train.steps
    params = cfg.algorithm.params
    assert (params["lambda_cycle"], params["identity_weight"], params["pool_size"]) == (10.0, 0.5, 50)
    rgb = DataInfo("image", (3, 256, 256), 0, streams={"b": DataInfo("image", (3, 256, 256), 0)})
    algo = build_algorithm(cfg, rgb)
    assert algo.nets["G_AB"].n_blocks == 9 and algo.nets["D_B"].patch_size == receptive_field(3) == 70
    # a user's folder in the official layout: one --data and one --set (small images and widths to stay fast)
    rng = np.random.default_rng(0)
    for part in ("trainA", "trainB"):
        (tmp_path / "d" / part).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "d" / part / f"{i}.png")
    root = tmp_path / "d"
    small = {"data.source": f"unaligned:{root}?domain=A", "data.streams.b.source": f"unaligned:{root}?domain=B",
             "data.image_size": 16, "networks.G_AB.filters": 4, "networks.G_BA.filters": 4,
             "networks.D_A.filters": 4, "networks.D_B.filters": 4, "networks.D_A.n_layers": 1,
             "networks.D_B.n_layers": 1, **QUIET}
    built = build(load_config("cyclegan", small))
    assert built.info.sample_shape == (3, 16, 16) and built.info.streams["b"].sample_shape == (3, 16, 16)
    t = Trainer(built, tmp_path / "r", progress=False)
    t.train_step()
    assert len(t.algorithm.pools[0]) == 1 and len(t.algorithm.pools[1]) == 1
