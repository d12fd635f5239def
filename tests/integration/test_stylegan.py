"""StyleGAN on the bundled coloured digits: every StyleGAN recipe (and the StyleGAN2 options) builds and takes steps, a
resumed run is bit-exact with w_avg (network state) and the path-length mean (algorithm state), the sampling flags
(--truncation in W, --truncation-cutoff, --mix, --mix-cutoff, --noise-seed) work and refuse bad values in one line,
and a learning signal on real digits."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.base import DataInfo
from ganforge.algorithms.latent_walk import apply_latent_controls
from ganforge.build import build_algorithm
from ganforge.config import load_config
from ganforge.data import load_source, prepare, to_model_range
from ganforge.errors import ConfigError
from ganforge.inference import load
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint, learned, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"train.threads": 1, "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {**QUIET, "data.image_size": 16, "train.batch_size": 4, "algorithm.latent_dim": 8, "networks.G.w_dim": 8,
        "networks.G.mapping_hidden": 8, "networks.G.fmap_base": 16, "networks.G.fmap_max": 4,
        "networks.D.fmap_base": 16, "networks.D.fmap_max": 4}


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == "train"]


def test_every_stylegan_recipe_and_option_builds_and_takes_steps(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):   # a user's folder of colour images, any size (resized to data.image_size)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cases = {"stylegan": ("stylegan", {"data.source": f"folder:{folder}"}),
             "stylegan-colour": ("stylegan-colour", {}),
             "demodulate + path length": ("stylegan-colour", {"networks.G.demodulate": True,
                                                              "algorithm.name": "stylegan", "algorithm.pl_weight": 2.0,
                                                              "algorithm.pl_every": 1})}
    for name, (recipe, over) in cases.items():
        cfg = load_config(recipe)
        assert cfg.networks["G"].name == "stylegan" and cfg.networks["D"].name == "progan"
        assert cfg.objective.name == "nonsaturating" and cfg.optim["G"].lr == 1e-3
        assert tuple(cfg.optim["D"].betas) == (0.0, 0.99) and cfg.train.ema.enabled
        run = ganforge.train(recipe, steps=2, out=tmp_path / name.replace(" ", ""), progress=False,
                             overrides={**TINY, **over})
        rows = _metrics(run.run_dir)
        assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["d_loss"]) for r in rows), name
        assert "r1" in rows[0]                                    # R1 in the first D step (lazy or not)
        if "path" in name:
            assert all("pl" in r and np.isfinite(r["pl"]) for r in rows)
    assert load_config("stylegan").data.image_size == 1024


def test_resume_is_bit_exact_with_w_avg_and_the_path_length_mean(tmp_path):
    over = {**TINY, "train.ema.decay": 0.9, "algorithm.name": "stylegan", "algorithm.pl_every": 2,
            "regularize.r1.every": 2, "networks.G.style_mixing": 0.5}
    straight = ganforge.train("stylegan-colour", steps=6, out=tmp_path / "a", progress=False, overrides=over)
    ganforge.train("stylegan-colour", steps=3, out=tmp_path / "b", progress=False, overrides=over)
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)                     # G (w_avg included), D, the EMA copy, optimizers, the RNG
    weights = a[0]
    assert float(weights["nets.G.w_avg"].abs().sum()) > 0
    assert torch.equal(weights["ema.G.w_avg"], weights["nets.G.w_avg"])          # copied, not averaged
    assert float(weights["algorithm.path_length.pl_mean"]) > 0
    assert torch.equal(weights["algorithm.path_length.pl_mean"], b[0]["algorithm.path_length.pl_mean"])
    assert [r["d_loss"] for r in _metrics(straight.run_dir)] == [r["d_loss"] for r in _metrics(resumed.run_dir)]


def test_the_sampling_flags_on_a_two_step_run(tmp_path, capsys):
    run = ganforge.train("stylegan-colour", steps=2, out=tmp_path / "r", progress=False, overrides=TINY)
    model = load(run.run_dir)
    plain = model.sample(8, seed=3)
    assert torch.equal(model.sample(8, seed=3), plain)                       # reproducible, noise included
    assert torch.equal(model.sample(8, seed=3, truncation=1.0), plain)       # psi 1: untruncated, bit for bit
    # psi 0 below the cutoff 8 (all 6 layers), one noise image for all: the average image every time
    average = model.sample(4, seed=3, truncation=0.0, noise_seed=0)
    assert torch.allclose(average, average[:1].expand_as(average), atol=1e-6)
    assert not torch.allclose(model.sample(4, seed=3, truncation=0.0, truncation_cutoff=2, noise_seed=0), average,
                              atol=1e-6)
    grid = model.sample(9, seed=5, mix=2, mix_cutoff=3, noise_seed=0)     # 3 x 3: average image, sources, mixes
    torch.testing.assert_close(grid[0], average[0])
    fixed = model.sample(8, seed=3, noise_seed=1)
    assert torch.equal(model.sample(8, seed=3, noise_seed=1), fixed) and not torch.equal(fixed, plain)

    code, out, _ = run_cli(["sample", run.run_dir, "--mix", "--out", tmp_path / "m.npz"], capsys)
    assert code == 0 and np.load(tmp_path / "m.npz")["arr_0"].shape == (36, 16, 16, 3)       # --mix 5: 6 x 6
    code, _, _ = run_cli(["sample", run.run_dir, "--mix", 3, "--mix-cutoff", 2, "--truncation", 0.7, "--noise-seed", 4,
                          "--out", tmp_path / "m.png"], capsys)
    assert code == 0 and Image.open(tmp_path / "m.png").size[0] == Image.open(tmp_path / "m.png").size[1]
    code, _, _ = run_cli(["sample", run.run_dir, "--truncation", -0.5, "--truncation-cutoff", 4, "--n", 6,
                          "--out", tmp_path / "t.npz"], capsys)
    assert code == 0 and np.load(tmp_path / "t.npz")["arr_0"].shape == (6, 16, 16, 3)
    for bad, message in ((["--mix", "0"], "--mix K takes 1 to 30"),
                         (["--mix", "2", "--n", "5"], "--mix 2 lays out 9 samples"),
                         (["--mix", "--labels", "0-9"], "--mix makes its own grid"),
                         (["--mix", "--mix-cutoff", "6"], "--mix-cutoff must be between 1 and 5"),
                         (["--mix-cutoff", "2"], "give --mix too"),
                         (["--truncation", "0.7", "--truncation-cutoff", "0"], "--truncation-cutoff must be between 1"),
                         (["--truncation-cutoff", "3"], "give --truncation too"),
                         (["--truncation", "nan"], "--truncation must be a finite number"),
                         (["--noise-seed", "-1"], "--noise-seed must be >= 0")):
        code, _, err = run_cli(["sample", run.run_dir, *bad, "--out", tmp_path / "x.png"], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (bad, err)
    # a generator without a W space refuses the W-space flags in one line
    for flag in ({"mix": 2}, {"noise_seed": 1}, {"truncation": 0.5, "truncation_cutoff": 2}):
        with pytest.raises(ConfigError, match="works on a generator with a W space"):
            apply_latent_controls(model.algorithm, {"z": torch.zeros(9, 8)}, 9, torch.Generator(),
                                  net=torch.nn.Linear(8, 8), **flag)


def test_a_learning_signal_on_coloured_digits(tmp_path):
    """16 px, small networks, 150 steps: the generated digits' mean image comes far closer to the real coloured
    digits' than the untrained generator's."""
    over = {**QUIET, "data.image_size": 16, "train.batch_size": 16, "algorithm.latent_dim": 16,
            "networks.G.w_dim": 16, "networks.G.mapping_hidden": 16, "networks.G.fmap_base": 64,
            "networks.G.fmap_max": 16, "networks.D.fmap_base": 64, "networks.D.fmap_max": 16}
    run = ganforge.train("stylegan-colour", steps=150, out=tmp_path / "r", progress=False, overrides=over)
    cfg = load_config("stylegan-colour", over)
    info = DataInfo(kind="image", sample_shape=(3, 16, 16), num_classes=10)
    real = prepare(load_source("mnist5k?split=train&domain=colour"), image_size=16, channels=3)
    real_mean = to_model_range(real.x[:2000], (-1.0, 1.0)).mean(0)
    untrained, trained = build_algorithm(cfg, info), build_algorithm(cfg, info)
    weights = read_checkpoint(latest_checkpoint(run.run_dir))[0]
    trained.nets["G"].load_state_dict({k[len("nets.G."):]: v for k, v in weights.items() if k.startswith("nets.G.")})
    z = torch.randn(1000, 16, generator=torch.Generator().manual_seed(5))

    def gap(algo):
        G = algo.nets["G"].eval()
        with torch.no_grad():
            fake = G(z).clamp(-1, 1)
        return float((fake.mean(0) - real_mean).abs().mean())

    before, after = gap(untrained), gap(trained)
    learned("trained / untrained L1 of the mean image to the real coloured digits'", after / before, 0.5,
            higher=False, chance=1.0)
