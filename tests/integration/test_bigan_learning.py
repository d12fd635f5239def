"""BiGAN / ALI on the bundled digits: every recipe builds and trains, bit-exact resume (the stochastic encoder's
noise included), ``ganforge encode`` on a file, a folder and an npz with its one-line refusals, ``ganforge translate``
giving reconstructions G(E(x)), and a learning signal of the encoder on real digits."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.build import build_algorithm
from ganforge.data import load_source, to_model_range
from ganforge.train.checkpoint import latest_checkpoint, read_checkpoint

from conftest import assert_same_checkpoint, learned, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny networks: one torch thread (conftest)

QUIET = {"train.threads": 1, "train.log_every": 2, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4}
TINY = {"bigan": {"networks.G.hidden": [32, 32], "networks.E.hidden": [32, 32], "networks.D.hidden": [32],
                  "networks.D.z_hidden": [32], "networks.D.joint_hidden": [32]},
        "ali": {"networks.G.filters": [16, 8, 4], "networks.E.filters": [8, 16], "networks.E.hidden": 32,
                "networks.D.filters": [8, 16], "networks.D.z_hidden": [16], "networks.D.joint_hidden": [32]}}
TINY["bigan-digits"] = TINY["ali-digits"] = TINY["bigan"]


@pytest.mark.parametrize("recipe", ["bigan", "ali", "bigan-digits", "ali-digits"])
def test_every_recipe_trains_two_steps(tmp_path, recipe):
    result = ganforge.train(recipe, steps=2, out=tmp_path / recipe, progress=False,
                            overrides={**QUIET, "train.batch_size": 8})
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "ge_loss" in r]
    assert losses and all(np.isfinite(r["d_loss"]) and np.isfinite(r["ge_loss"]) for r in losses)
    png = sorted((tmp_path / recipe / "samples").glob("*.png"))[-1]
    assert Image.open(png).text["columns"] == "G(z) | G(E(G(z)))"


@pytest.mark.parametrize("recipe", ["bigan-digits", "ali"])
def test_resume_is_bit_exact(tmp_path, recipe):
    tiny = {**QUIET, **TINY[recipe], "train.batch_size": 8, "train.ema.enabled": True, "train.ema.decay": 0.9}
    straight = ganforge.train(recipe, steps=6, out=tmp_path / "a", progress=False, overrides=tiny)
    ganforge.train(recipe, steps=3, out=tmp_path / "b", progress=False, overrides=tiny)
    resumed = ganforge.train(resume=tmp_path / "b", steps=6, progress=False)
    a, b = read_checkpoint(latest_checkpoint(straight.run_dir)), read_checkpoint(latest_checkpoint(resumed.run_dir))
    assert_same_checkpoint(a, b)          # G, E, D, the EMA copies of G and E, both optimizers, the RNG
    assert any(k.startswith("ema.E.") for k in a[0])


def test_encode_and_reconstruct_from_the_cli(tmp_path, capsys):
    run = ganforge.train("bigan-digits", steps=2, out=tmp_path / "run", progress=False,
                         overrides={**QUIET, **TINY["bigan"], "train.batch_size": 8}).run_dir
    digits = load_source("mnist5k?split=test").x[:5]                       # uint8 N x 1 x 28 x 28
    np.savez(tmp_path / "d.npz", arr_0=digits.permute(0, 2, 3, 1).numpy())
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, d in enumerate(digits[:3]):
        Image.fromarray(d[0].numpy()).convert("RGB").save(folder / f"{i}.png")   # RGB: converted to grey
    Image.fromarray(digits[0, 0].numpy()).resize((56, 56)).save(tmp_path / "big.png")   # resized to 28

    model = ganforge.load(run)
    expected = model.encode(digits)
    code, out, _ = run_cli(["encode", run, "--input", tmp_path / "d.npz", "--out", tmp_path / "z.npz"], capsys)
    assert code == 0 and "encoded 5 images" in out
    z = np.load(tmp_path / "z.npz")
    assert z["arr_0"].dtype == np.float32 and z["arr_0"].shape == (5, 50)
    assert np.array_equal(z["arr_0"], expected.numpy()) and list(z["names"]) == [f"{i:06d}" for i in range(5)]
    code, out, _ = run_cli(["encode", run, "--input", folder, "--out", tmp_path / "zf.npz"], capsys)
    assert code == 0 and "converted 3 of 3" in out
    assert np.allclose(np.load(tmp_path / "zf.npz")["arr_0"], expected[:3].numpy(), atol=1e-5)
    code, out, _ = run_cli(["encode", run, "--input", tmp_path / "big.png", "--out", tmp_path / "zb.npz"], capsys)
    assert code == 0 and "resized 1 of 1" in out and np.load(tmp_path / "zb.npz")["arr_0"].shape == (1, 50)

    # reconstructions: translate gives G(E(x))
    code, _, _ = run_cli(["translate", run, "--input", tmp_path / "d.npz", "--out", tmp_path / "r.npz"], capsys)
    assert code == 0
    with torch.no_grad():
        rec = model.nets["G"](model.nets["E"](to_model_range(digits, model.value_range)))
    got = torch.from_numpy(np.load(tmp_path / "r.npz")["arr_0"]).permute(0, 3, 1, 2).float() / 255
    assert (got - rec).abs().max() <= 1 / 255 + 1e-6

    # refusals: one line, exit 2
    plain = ganforge.train("dcgan-mnist-quick", steps=1, out=tmp_path / "plain", progress=False,
                           overrides={**QUIET, "train.batch_size": 4}).run_dir
    for args, fragment in [([plain, "--input", tmp_path / "d.npz", "--out", tmp_path / "p.npz"], "has no encoder"),
                           ([run, "--input", tmp_path / "missing", "--out", tmp_path / "m.npz"], "does not exist"),
                           ([run, "--input", tmp_path / "d.npz", "--out", tmp_path / "z.png"], "written as a .npz"),
                           ([run, "--input", tmp_path / "z.npz", "--out", tmp_path / "q.npz"], "arr_0 is float32")]:
        code, _, err = run_cli(["encode", *args], capsys)
        assert code == 2 and fragment in err and err.count("\n") == 1, err


# What the game teaches the encoder, in seconds: D sees (x, E(x)) beside (G(z), z) with z ~ N(0, I)^50 (the recipe's
# prior; U(-1, 1) has per-dimension std 1/sqrt(3)), so the codes of real digits must come to be spread like the
# prior for the pairs to be indistinguishable. An untrained encoder (N(0, 0.02) weights) gives codes of a small,
# arbitrary spread. The probe of what the codes know about the digit takes the full budget (bench/bigan_digits.py,
# figures in the recipe).
def test_encoder_codes_come_to_match_the_prior(tmp_path):
    overrides = {**QUIET, "train.batch_size": 32, "train.log_every": 50}
    result = ganforge.train("bigan-digits", steps=STEPS, out=tmp_path / "run", progress=False, overrides=overrides)
    model = ganforge.load(result.run_dir)
    digits = load_source("mnist5k?split=test").x
    digits = digits[torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:500]]
    untrained = build_algorithm(model.config, model.info)

    algo = model.algorithm
    prior_std = 1 / 3 ** 0.5 if algo.latent_dist == "uniform" else algo.latent_std

    def spread_error(codes: torch.Tensor) -> float:
        """Mean over code dimensions of |log(std / prior std)|: 0 when every dimension is spread like the prior."""
        return float((codes.std(0) / prior_std).log().abs().mean())

    trained = spread_error(model.encode(digits))
    random = spread_error(untrained.encode(to_model_range(digits, model.value_range)))
    print(f"spread error trained {trained:.3f} untrained {random:.3f}")
    learned("code spread error, trained / untrained", trained / random, BOUND, higher=False, chance=1.0)


STEPS, BOUND = 300, 0.5
