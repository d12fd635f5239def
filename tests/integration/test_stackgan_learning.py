"""StackGAN and StackGAN++ on real data: a learning signal at every scale of the unconditional tree on colour
images, bit-exact resume in the middle of StackGAN's stage II (one run through both stages), samples for given
captions, and every recipe building and taking steps (the paper recipes on a captions:DIR folder in CUB's layout)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.algorithms.base import eval_mode
from ganforge.build import build_algorithm
from ganforge.data import load_source
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint, learned, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
# Text runs pretrain their text encoder once per test session on the 1,000 held-out digits, one caption each, for
# one epoch (about a second), instead of the recipes' 10,800 pairs for 8 epochs.
TEXT = {**QUIET, "data.source": "digit-captions?split=test&captions=1", "algorithm.text_encoder_epochs": 1,
        "algorithm.text_dim": 16, "networks.T.word_dim": 8, "networks.G.ca_dim": 4, "networks.D.compress_dim": 4,
        "algorithm.latent_dim": 8, "networks.G.width": 4, "networks.D.width": 4, "networks.D.max_width": 8,
        "train.batch_size": 4}
STAGES = [{"name": "stage I", "image_size": 16, "steps": 3}, {"name": "stage II", "image_size": 32}]


def test_one_run_trains_both_stages_and_resumes_bit_exactly_in_stage_two(tmp_path, capsys):
    tiny = {**TEXT, "networks.G.stage2_width": 4, "networks.G.res_blocks": 1, "train.phases": STAGES,
            "train.ema.enabled": True, "train.ema.decay": 0.9}
    # The text encoder pretrained (or loaded from the session's cache) before both runs, so that both load it alike.
    ganforge.train("stackgan-digits", steps=1, out=tmp_path / "warm", progress=False, overrides=tiny)
    straight = ganforge.train("stackgan-digits", steps=6, out=tmp_path / "a", progress=False, overrides=tiny)
    ganforge.train("stackgan-digits", steps=5, out=tmp_path / "b", progress=False, overrides=tiny)   # 2 into stage II
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)      # both stages' weights, the EMA copy, both optimizers, the caption bank, the RNG
    assert any(k.startswith("nets.G.stage2.ca.") for k in a[0]) and any(k.startswith("nets.T.") for k in a[0])
    assert straight.last_metrics["stage"] == 2.0
    png = sorted((tmp_path / "a" / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "stage I (16 px) | stage II (32 px)"
    # samples for given captions from the run directory alone (the text encoder and its vocabulary are in it)
    model = ganforge.load(straight.run_dir)
    inputs = model.algorithm.sample_inputs(4, torch.Generator().manual_seed(0), torch.device("cpu"),
                                           texts=["a thick seven", "a thin one"], per_row=2)
    assert torch.equal(inputs["text_emb"][0], inputs["text_emb"][1])      # a caption per row
    assert not torch.equal(inputs["text_emb"][0], inputs["text_emb"][2])
    code, _, _ = run_cli(["sample", straight.run_dir, "--n", 4, "--per-row", 2, "--text", "a thick seven", "--out",
                          tmp_path / "s.npz"], capsys)
    assert code == 0 and np.load(tmp_path / "s.npz")["arr_0"].shape == (4, 32, 32, 1)


# What the unconditional tree learns in 60 steps on real colour images (the bundled digits, each tinted with a random
# hue: the emoji take 6 s to render), scale by scale, against the run's own initial weights (rebuilt from its seed):
# every scale's mean image moves from the untrained grey towards the real images' mean at that scale (measured over
# seeds 0-2: 0.25-0.40 of the untrained distance).
LEARN = {**QUIET, "data.source": "mnist5k?domain=colour", "networks.G.width": 16, "networks.G.res_blocks": 1,
         "networks.D.width": 8, "networks.D.max_width": 16,
         "algorithm.latent_dim": 32, "train.batch_size": 16, "optim.G.lr": 2e-3, "optim.D.lr": 2e-3}


def test_every_scale_of_the_unconditional_tree_learns_on_real_colour_images(tmp_path):
    run = ganforge.train("stackgan2-colour", steps=60, out=tmp_path / "run", progress=False, overrides=LEARN)
    trained = ganforge.load(run.run_dir, use_ema=False)
    initial = build_algorithm(trained.config, trained.info)
    x = torch.nn.functional.interpolate(load_source("mnist5k?domain=colour").x[:400].float() / 127.5 - 1, size=32,
                                        mode="bilinear", antialias=True)
    reals = [torch.nn.functional.adaptive_avg_pool2d(x, s).mean(0) for s in (8, 16, 32)]
    gaps = {}
    for name, algo in (("trained", trained.algorithm), ("untrained", initial)):
        inputs = algo.sample_inputs(200, torch.Generator().manual_seed(3), torch.device("cpu"))
        with torch.no_grad(), eval_mode(algo.nets["G"]):
            scales = algo.scales_of(inputs)
        gaps[name] = [float((s.mean(0) - r).abs().mean()) for s, r in zip(scales, reals)]
    for i, size in enumerate((8, 16, 32)):
        learned(f"scale {i} ({size} px): distance of the sample mean to the real mean, trained / untrained",
                gaps["trained"][i] / gaps["untrained"][i], 0.6, higher=False, chance=1.0)


def write_cub(root, classes: int = 2, per_class: int = 2) -> None:
    """A captions:DIR folder in CUB's mirrored layout (images/<class>/<name>.jpg, text/<class>/<name>.txt)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        for k in range(per_class):
            image = root / "images" / f"00{c}.bird" / f"b{c}{k}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(image)
            text = root / "text" / f"00{c}.bird" / f"b{c}{k}.txt"
            text.parent.mkdir(parents=True, exist_ok=True)
            text.write_text(f"a small bird with {'red' if c else 'blue'} wings\nthis bird is {'red' if c else 'blue'}\n")


def test_every_recipe_builds_and_takes_steps(tmp_path):
    write_cub(tmp_path / "cub")
    narrow = {**TEXT, "networks.G.width": 2, "networks.D.width": 2, "networks.D.max_width": 4}
    runs = [("stackgan", {**narrow, "data.source": f"captions:{tmp_path / 'cub'}?size=32", "data.image_size": 32,
                          "networks.G.down": 1, "networks.G.stage2_width": 2, "networks.G.res_blocks": 1,
                          "networks.T.vocab_size": 32, "train.phases": [{"image_size": 8, "steps": 1},
                                                                        {"image_size": 32}]}),
            ("stackgan2", {**narrow, "data.source": f"captions:{tmp_path / 'cub'}?size=32", "data.image_size": 32,
                           "networks.G.res_blocks": 1, "networks.T.vocab_size": 32}),
            ("stackgan-digits", {**narrow, "networks.G.stage2_width": 2, "networks.G.res_blocks": 1,
                                 "train.phases": [{"image_size": 16, "steps": 1}, {"image_size": 32}]}),
            ("stackgan2-digits", {**narrow, "networks.G.res_blocks": 1}),
            ("stackgan2-colour", {**QUIET, "networks.G.width": 4, "networks.G.res_blocks": 1, "networks.D.width": 2,
                                  "networks.D.max_width": 4, "algorithm.latent_dim": 8, "train.batch_size": 4})]
    for recipe, over in runs:
        run = ganforge.train(recipe, steps=2, out=tmp_path / recipe, progress=False, overrides=over)
        model = ganforge.load(run.run_dir)
        channels = 1 if "digits" in recipe else 3
        assert run.steps == 2 and model.sample(3, seed=1).shape == (3, channels, 32, 32), recipe
        assert all(np.isfinite(v) for k, v in run.last_metrics.items() if k.startswith(("d_", "g_"))), recipe
