"""report.html and the evaluation history, from a run directory built by hand (no training): the progress wall,
labelled and smoothed curves, the formatted evaluation table, and a notice for an unreadable evaluation file."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from ganforge.report import latest_eval, read_evals, record_eval, write_report
from ganforge.report.evals import format_metric, sig3
from ganforge.report.html import ema, evenly_spaced

GRIDS = 40
STEPS = 4000


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.yaml").write_text(
        "name: toy-by-hand\ndescription: a run directory written by the test\n"
        "citation: Atienza, Advanced Deep Learning with TensorFlow 2 and Keras, ch. 5\nsource: by hand\n"
        "data: {source: mnist5k}\ntrain: {steps: 4000, eval_samples: 500}\n")
    rng = np.random.default_rng(0)
    rows = [{"kind": "train", "step": s, "time": 1000.0 + s, "d_loss": float(1 + 0.3 * rng.standard_normal()),
             "g_loss": float(2 + 0.3 * rng.standard_normal()), "d_real": 0.5} for s in range(10, STEPS + 1, 10)]
    rows += [{"kind": "eval", "step": s, "time": 1000.0 + s + 0.5, "n": 500, "ref": "mnist5k", "features": "domain",
              "test_accuracy": 0.9834, "fid": 123.456 / (s / 1000), "kid": 0.0123456, "kid_std": 0.00098765}
             for s in (1000, 2000, 3000)]
    with open(run / "metrics.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    for i in range(GRIDS):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(run / "samples" / f"step-{i * 100:08d}.png")
    return run


def test_sig3():
    assert [sig3(v) for v in (123.456, 12.3456, 1.23456, 0.0123456, 1234.5, 9.996, 0.0, 4.5678e-5, 7)] == \
        ["123", "12.3", "1.23", "0.0123", "1230", "10.0", "0", "4.57e-05", "7"]
    assert sig3(float("nan")) == "nan" and sig3(None) == "-" and sig3(True) == "True"


def test_kid_is_shown_times_1000_with_its_std():
    assert format_metric({"kid": 0.0123456, "kid_std": 0.00098765}, "kid", 1e3) == "12.3 ± 0.988"
    assert format_metric({"modes": 9, "num_classes": 10}, "modes") == "9 of 10"
    assert format_metric({}, "fid") is None


def test_evenly_spaced_keeps_first_and_last():
    picked = evenly_spaced(list(range(GRIDS)), 12)
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == GRIDS - 1
    gaps = np.diff(picked)
    assert gaps.min() >= 3 and gaps.max() <= 4          # 39 / 11 = 3.5: as even as whole indices allow
    assert evenly_spaced([1, 2, 3], 12) == [1, 2, 3]


def test_ema_is_unbiased_at_the_start_and_smooths():
    assert ema([5.0, 5.0, 5.0], span=10) == pytest.approx([5.0, 5.0, 5.0])
    rng = np.random.default_rng(1)
    noisy = list(1 + rng.standard_normal(400))
    smooth = ema(noisy, span=20)
    assert smooth[0] == noisy[0]
    assert np.std(smooth[50:]) < 0.4 * np.std(noisy[50:])


def test_report_wall_curves_and_eval_table(run_dir):
    record_eval(run_dir, {"step": 3000, "target": str(run_dir), "n": 5000, "ref": "mnist5k?split=test",
                          "n_ref": 1000, "features": "domain", "test_accuracy": 0.98345, "fid": 45.678,
                          "kid": 0.00456789, "kid_std": 0.000123, "modes": 10, "num_classes": 10,
                          "class_histogram": [500] * 10})
    page = write_report(run_dir).read_text()
    # progress wall: at most 12 grids, evenly spaced, the first and the last among them
    wall = page[page.index("Progress (fixed noise)"):]
    shown = re.findall(r"<figure><img src='samples/(step-\d+)\.png'", wall)
    assert len(shown) == 12 and shown[0] == "step-00000000" and shown[-1] == f"step-{(GRIDS - 1) * 100:08d}"
    assert "12 of 40 grids" in wall
    # curves: axes labelled, the raw line faint under a smoothed one
    assert page.count('class="xlabel"') >= 3 and ">step</text>" in page and ">loss</text>" in page
    assert 'class="raw"' in page and 'class="smoothed"' in page and 'stroke-opacity="0.3"' in page
    # the evaluation table: one row per evaluation, named columns, 3 significant digits, KID x10^3
    table = page[page.index("<table class='evals'>"):page.index("</table>")]
    for head in ("<th>step</th>", "<th>n</th>", "<th>reference</th>", "<th>features</th>",
                 "<th>classifier acc.</th>", "<th>FID</th>", "<th>KID (x10^3)</th>"):
        assert head in table
    assert table.count("<tr>") == 1 + 4                    # header, 3 training evaluations, 1 `ganforge eval`
    assert "<td>45.7</td>" in table and "<td>4.57 ± 0.123</td>" in table and "<td>98.3 %</td>" in table
    assert "<td>mnist5k?split=test</td>" in table and "<td>5000</td>" in table and "<td>123</td>" in table
    assert "45.678" not in table and "Atienza, Advanced Deep Learning" in page


def test_a_corrupt_eval_file_is_named_in_the_report(run_dir):
    record_eval(run_dir, {"step": 2000, "n": 100, "ref": "mnist5k", "fid": 50.0})
    (run_dir / "evals" / "step-00003000.json").write_text('{"step": 3000, "fid": 4')     # cut by a crash
    page = write_report(run_dir).read_text()
    notice = re.findall(r"<p class='notice'>([^<]*)</p>", page)
    assert len(notice) == 1 and "evals/step-00003000.json" in notice[0] and "could not be read" in notice[0]
    assert "<td>50.0</td>" in page                          # the readable evaluations are still tabulated
    _, notices = read_evals(run_dir)
    assert len(notices) == 1 and "evals/step-00003000.json" in notices[0]


def test_latest_eval_is_the_highest_step_then_the_newest(run_dir, tmp_path):
    assert latest_eval(tmp_path) is None                   # no metrics, no evals
    assert latest_eval(run_dir)["step"] == 3000 and latest_eval(run_dir)["origin"] == "training"
    record_eval(run_dir, {"step": 3000, "n": 200, "ref": "mnist5k", "fid": 40.0, "class_histogram": [1, 2]})
    latest = latest_eval(run_dir)
    assert latest["origin"] == "ganforge eval" and latest["fid"] == 40.0 and latest["class_histogram"] == [1, 2]
    assert "class_histogram" not in latest_eval(run_dir, scalars_only=True)
    record_eval(run_dir, {"step": 1000, "n": 200, "ref": "mnist5k", "fid": 99.0})      # an older checkpoint, later
    assert latest_eval(run_dir)["fid"] == 40.0
    assert json.loads((run_dir / "eval.json").read_text())["fid"] == 99.0          # eval.json: the last written
    assert sorted(p.name for p in (run_dir / "evals").iterdir()) == ["step-00001000.json", "step-00003000.json"]


def test_curves_of_huge_finite_values_are_drawn(run_dir):
    """A diverging run logs finite but enormous losses (1e28 and beyond): the charts still draw (no division by a
    zero range, no overflow) and every curve is in the page."""
    rows = [{"kind": "train", "step": s, "time": 1000.0 + s, "d_loss": v, "g_loss": -v, "lr_G": 2e-4}
            for s, v in ((10, 0.5), (20, 1e28), (30, 1e308), (40, -1e300), (50, 1e308), (60, 1e308))]
    with open(run_dir / "metrics.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    page = write_report(run_dir).read_text()
    assert page.count("<svg") >= 2 and "d_loss" in page and "g_loss" in page
