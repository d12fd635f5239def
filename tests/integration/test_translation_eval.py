"""`ganforge eval` of translation runs: held-out inputs translated and scored against their true counterparts, beside
the do-nothing baseline (copy, or bicubic for super-resolution), content read by the target domain's classifier, and
one-line refusals. Each figure is checked against a direct computation on the same held-out images."""
from __future__ import annotations

import json

import pytest
import torch

import ganforge
from ganforge.algorithms.srgan import bicubic_upsample
from ganforge.data import load_source, to_model_range, to_uint8
from ganforge.metrics.content import content_preservation
from ganforge.metrics.paired import paired_metrics

from conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"train.threads": 1, "train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 1000,
         "train.grid_size": 4, "train.batch_size": 4}
CYCLE = {**QUIET, "networks.G_AB.filters": 4, "networks.G_BA.filters": 4, "networks.G_AB.n_blocks": 1,
         "networks.G_BA.n_blocks": 1, "networks.D_A.filters": 4, "networks.D_B.filters": 4}
HELD_OUT = "mnist5k?split=test&domain=edges&paired=1"


def subset(spec: str, n: int, seed: int = 0):
    """The held-out images `ganforge eval --n N --seed S` uses: a seeded choice of N, in the set's order."""
    ds = load_source(spec, seed=0)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return ds.x[idx], ds.y[idx], {k: v[idx] for k, v in ds.fields.items()}


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    torch.set_num_threads(1)
    return ganforge.train("cyclegan-digits", steps=2, out=tmp_path_factory.mktemp("ev") / "cyc", progress=False,
                          overrides=CYCLE).run_dir


def test_cyclegan_is_scored_against_the_true_edges_beside_copying_the_input(cyclegan_run, capsys):
    code, out, err = run_cli(["eval", cyclegan_run, "--n", "40", "--metrics", "l1,psnr,ssim"], capsys)
    assert code == 0, err
    result = json.loads((cyclegan_run / "eval.json").read_text())
    assert result["evaluation"] == "translation" and result["direction"] == "AtoB" and result["n"] == 40
    assert result["input"] == HELD_OUT and "content" not in result and "fid" not in result
    images, _, fields = subset(HELD_OUT, 40)
    model = ganforge.load(cyclegan_run)
    outputs = model.translate(images, direction="AtoB")
    direct = paired_metrics(outputs, fields["target"])
    copy = paired_metrics(images, fields["target"])
    for key in ("l1", "psnr", "ssim"):
        assert result[key] == pytest.approx(direct[key], abs=1e-6), key
        assert result[f"baseline_{key}"] == pytest.approx(copy[key], abs=1e-6), key
    assert result["baseline"] == "copy" and 0.15 < result["baseline_l1"] < 0.4   # digits vs their edges differ
    assert "L1" in out and "(copy: " in out
    # the run's report shows the evaluation with its baseline columns
    html = (cyclegan_run / "report.html").read_text()
    assert "L1 baseline" in html and "PSNR baseline" in html


def test_backwards_the_edges_are_translated_and_read_by_the_plain_digit_classifier(cyclegan_run, capsys):
    code, out, err = run_cli(["eval", cyclegan_run, "--n", "60", "--direction", "BtoA", "--metrics",
                              "l1,content"], capsys)
    assert code == 0, err
    result = json.loads((cyclegan_run / "eval.json").read_text())
    assert result["direction"] == "BtoA" and result["ref"] == "mnist5k?split=test"   # the plain domain, held out
    images, labels, fields = subset(HELD_OUT, 60)
    outputs = ganforge.load(cyclegan_run).translate(fields["target"], direction="BtoA")
    assert result["l1"] == pytest.approx(paired_metrics(outputs, images)["l1"], abs=1e-6)
    assert result["content"] == pytest.approx(
        content_preservation("mnist5k", outputs, labels)["content_accuracy"], abs=1e-9)
    assert result["content_chance"] == pytest.approx(0.1)
    # the plain classifier reads the true plain digits (the ceiling) far better than the untranslated edges
    assert result["content_ceiling"] >= 0.9 and result["baseline_content"] < result["content_ceiling"] - 0.2
    assert "true counterparts" in out


def test_super_resolution_is_scored_against_bicubic_upsampling(tmp_path, capsys):
    run = ganforge.train("srresnet-digits", steps=2, out=tmp_path / "sr", progress=False,
                         overrides={**QUIET, "networks.G.filters": 8, "networks.G.blocks": 1}).run_dir
    code, out, err = run_cli(["eval", run, "--n", "30"], capsys)
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    hr, _, fields = subset("mnist5k?split=test&sr=4", 30)
    lowres = fields["lowres"]
    assert lowres.shape[-1] * 4 == hr.shape[-1]
    outputs = ganforge.load(run).translate(lowres)
    bicubic = to_uint8(bicubic_upsample(to_model_range(lowres, (-1.0, 1.0)), 4, (-1.0, 1.0)), (-1.0, 1.0))
    assert result["baseline"] == "bicubic"
    assert result["psnr"] == pytest.approx(paired_metrics(outputs, hr)["psnr"], abs=1e-6)
    # the baseline is the classic bicubic upsampling (rounding to uint8 at most one level apart)
    assert result["baseline_psnr"] == pytest.approx(paired_metrics(bicubic, hr)["psnr"], abs=0.2)
    assert 12.0 < result["baseline_psnr"] < 18.0          # digits 7 -> 28: about 14.5 dB (bench/srgan_photos.py)
    assert "content" not in result       # no target-domain data is derivable for super-resolution: --ref asks


@pytest.mark.parametrize("args, fragment", [
    (["--to", "3"], "does not take"),                                     # a two-domain run has no --to
    (["--metrics", "fid"], "FID needs at least 100"),                    # 30 inputs
    (["--metrics", "bogus"], "unknown metric 'bogus'"),
    (["--input", "photos?split=test&size=48"], "translates"),     # 3 x 48 x 48 photos for a 1 x 28 x 28 model
])
def test_bad_translation_evaluations_are_one_line(cyclegan_run, capsys, args, fragment):
    before = (cyclegan_run / "eval.json").read_text() if (cyclegan_run / "eval.json").exists() else None
    code, out, err = run_cli(["eval", cyclegan_run, "--n", "30", *args], capsys)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    after = (cyclegan_run / "eval.json").read_text() if (cyclegan_run / "eval.json").exists() else None
    assert before == after                                                # nothing recorded


def test_translation_options_are_refused_for_a_noise_run(tmp_path, capsys):
    run = ganforge.train("gan-toy", steps=1, out=tmp_path / "toy", progress=False,
                         overrides={"train.threads": 1}).run_dir
    code, out, err = run_cli(["eval", run, "--direction", "BtoA"], capsys)
    assert code == 2 and "--direction is for translation runs" in err and len(err.strip().splitlines()) == 1
