"""ProGAN on the bundled digits: the networks grow through every phase to 32 px (logged resolution and alpha, the
report's phase section, grids at the data size), a run resumed in the middle of a fade-in is bit-exact, a learning
signal on real digits, and every ProGAN recipe builds and takes steps (the paper's on a user's folder)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ganforge
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, prepare, to_model_range
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint, learned

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "networks.G.fmap_base": 16, "networks.G.fmap_max": 4, "networks.D.fmap_base": 16,
        "networks.D.fmap_max": 4, "algorithm.latent_dim": 8}
# every resolution of progan-digits, each fade-in 4 steps: 26 steps in all
GROW = [{"name": "4", "image_size": 4, "steps": 4, "batch_size": 8},
        {"name": "8 fade", "image_size": 8, "steps": 4, "fade_steps": 4, "batch_size": 8},
        {"name": "8", "image_size": 8, "steps": 2, "batch_size": 8},
        {"name": "16 fade", "image_size": 16, "steps": 4, "fade_steps": 4, "batch_size": 4},
        {"name": "16", "image_size": 16, "steps": 2, "batch_size": 4},
        {"name": "32 fade", "image_size": 32, "steps": 4, "fade_steps": 4, "batch_size": 4},
        {"name": "32", "image_size": 32, "batch_size": 4}]


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(line).get("kind") == "train"]


def test_grows_through_every_phase_to_32px_and_the_report_shows_it(tmp_path):
    run = ganforge.train("progan-digits", steps=26, out=tmp_path / "r", progress=False,
                         overrides={**TINY, "train.phases": GROW, "train.sample_every": 13})
    rows = _metrics(run.run_dir)
    assert [r["step"] for r in rows] == list(range(1, 27))
    assert [r["resolution"] for r in rows] == [4] * 4 + [8] * 6 + [16] * 6 + [32] * 10
    assert [r["alpha"] for r in rows][4:10] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]     # the 8 px fade-in, then 8 px
    assert [r["alpha"] for r in rows][16:20] == [0.25, 0.5, 0.75, 1.0]              # the 32 px fade-in
    assert [r["phase"] for r in rows][-1] == 6 and all(np.isfinite(r["d_loss"]) for r in rows)
    for name in ("step-00000013.png", "step-00000026.png"):        # grids at the data size whatever the phase
        grid = Image.open(run.run_dir / "samples" / name)
        assert grid.size == Image.open(run.run_dir / "samples" / "step-00000000.png").size
    page = (run.run_dir / "report.html").read_text()
    assert "<h2>Phases</h2>" in page and "resolution and fade-in" in page
    for size in (4, 8, 16, 32):
        assert f"<td>{size} px</td>" in page
    assert "done by step 8" in page            # the 8 px fade-in: steps 5..8 as logged (steps completed), alpha 1 at 8
    # the trained networks run at 32 px with every layer used: weights of the 32 px blocks moved
    weights = read_checkpoint(latest_checkpoint(run.run_dir))[0]
    init = build_algorithm(load_config("progan-digits", {**TINY, "train.phases": GROW}), _digits_info())
    assert not torch.equal(weights["nets.G.to_rgb.3.weight"], init.nets["G"].to_rgb[3].weight.detach())
    assert not torch.equal(weights["nets.D.from_rgb.3.weight"], init.nets["D"].from_rgb[3].weight.detach())


def _digits_info():
    from ganforge.algorithms.base import DataInfo
    return DataInfo(kind="image", sample_shape=(1, 32, 32), num_classes=10)


def test_resumed_in_the_middle_of_a_fade_in_is_bit_exact(tmp_path):
    tiny = {**TINY, "train.phases": GROW, "train.ema.decay": 0.9}
    straight = ganforge.train("progan-digits", steps=20, out=tmp_path / "a", progress=False, overrides=tiny)
    ganforge.train("progan-digits", steps=18, out=tmp_path / "b", progress=False, overrides=tiny)  # 32 px fade, 0.5
    resumed = ganforge.train(resume=tmp_path / "b", steps=20, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)                  # G, D, the EMA copy of G, both optimizers, the RNG
    assert any(k.startswith("ema.G.") for k in a[0])
    rows_a, rows_b = _metrics(straight.run_dir), _metrics(resumed.run_dir)
    assert [(r["resolution"], r["alpha"], r["d_loss"]) for r in rows_a] == \
        [(r["resolution"], r["alpha"], r["d_loss"]) for r in rows_b]


def test_a_learning_signal_on_real_digits(tmp_path):
    """At 4 and 8 px (cheap), 240 steps: the generated digits' mean image comes far closer to the real digits' than
    the untrained generator's (measured over train.seed 0-3: trained / untrained 0.11 to 0.27)."""
    phases = [{"image_size": 4, "steps": 80, "batch_size": 16},
              {"image_size": 8, "steps": 80, "fade_steps": 80, "batch_size": 16},
              {"image_size": 8, "batch_size": 16}]
    over = {**QUIET, "train.phases": phases, "networks.G.fmap_base": 64, "networks.G.fmap_max": 16,
            "networks.D.fmap_base": 64, "networks.D.fmap_max": 16, "algorithm.latent_dim": 16}
    run = ganforge.train("progan-digits", steps=240, out=tmp_path / "r", progress=False, overrides=over)
    cfg = load_config("progan-digits", over)
    real = prepare(load_source("mnist5k?split=train"), image_size=32, channels=1)
    real8 = F.avg_pool2d(to_model_range(real.x[:2000], (-1.0, 1.0)), 4)
    untrained = build_algorithm(cfg, _digits_info())
    trained = build_algorithm(cfg, _digits_info())
    weights = read_checkpoint(latest_checkpoint(run.run_dir))[0]
    trained.nets["G"].load_state_dict({k[len("nets.G."):]: v for k, v in weights.items() if k.startswith("nets.G.")})
    z = torch.randn(2000, 16, generator=torch.Generator().manual_seed(5))

    def gap(algo):
        with torch.no_grad():
            fake = algo.nets["G"](z, resolution=8, alpha=1.0).clamp(-1, 1)
        return float((fake.mean(0) - real8.mean(0)).abs().mean())     # L1 of the mean 8 px images, [-1, 1] units

    before, after = gap(untrained), gap(trained)
    learned("trained / untrained L1 of the mean image to the real digits'", after / before, 0.5, higher=False,
            chance=1.0)


def test_every_progan_recipe_builds_and_takes_steps(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):   # a user's folder of colour images, any size (resized to data.image_size)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    short = [{"image_size": 4, "steps": 1, "batch_size": 4}, {"image_size": 8, "steps": 2, "fade_steps": 2}]
    cases = {"progan": {"data.source": f"folder:{folder}", "data.image_size": 16,
                        "train.phases": short + [{"image_size": 16, "fade_steps": 1}]},
             "progan-digits": {},
             "progan-colour": {"train.phases": short + [{"image_size": 16, "steps": 1}, {"image_size": 32, "steps": 1},
                                                        {"image_size": 64, "fade_steps": 1}]}}
    for recipe, over in cases.items():
        cfg = load_config(recipe)
        assert cfg.objective.params.get("drift") == 0.001 and cfg.algorithm.name == "progan"
        assert cfg.train.ema.enabled and cfg.optim["G"].lr == 1e-3 and tuple(cfg.optim["D"].betas) == (0.0, 0.99)
        run = ganforge.train(recipe, steps=5, out=tmp_path / recipe, progress=False,
                             overrides={**TINY, "train.batch_size": 4, **over})
        rows = _metrics(run.run_dir)
        assert rows[-1]["step"] == 5 and all(np.isfinite(r["d_loss"]) for r in rows)
    assert load_config("progan").train.phases[-1].image_size == 1024
