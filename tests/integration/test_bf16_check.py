"""bench/bf16_check.py, the measurement behind ``auto_bf16``: its verdict rule, and its runs (the zoo's, with the
variant's precision and seed) on a real toy."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from ganforge.config import read_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def check():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("bf16_check", REPO / "bench" / "bf16_check.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(REPO / "bench"))


def state(**ev):
    return {"eval": ev}


def test_bf16_passes_within_the_tolerance_of_the_worse_fp32_seed(check):
    fp32 = [state(fid=100.0), state(fid=120.0)]
    assert check.verdict(fp32, [state(fid=131.0)])["ok"] is True          # worse seed 120, +10 %: 132
    failed = check.verdict(fp32, [state(fid=140.0)])
    assert failed["ok"] is False and "fp32 seeds 100, 120" in failed["why"]
    # a toy: higher is better, and both its figures count (modes relative, the high-quality share absolute)
    toy = [state(modes_covered=8, high_quality=0.80), state(modes_covered=6, high_quality=0.70)]
    assert check.verdict(toy, [state(modes_covered=6, high_quality=0.66)])["ok"] is True
    assert check.verdict(toy, [state(modes_covered=5, high_quality=0.80)])["ok"] is False
    collapsed = check.verdict(toy, [state(modes_covered=8, high_quality=0.60)])
    assert collapsed["ok"] is False and collapsed["why"].startswith("high_quality bf16 0.6 beyond 0.65")
    # fp32 that learned nothing is no yardstick: a toy covering no mode, a translator at chance content
    assert check.verdict([state(fid=900.0, content=0.11, content_chance=0.1), state(fid=950.0, content=0.5,
                                                                                    content_chance=0.1)],
                         [state(fid=2000.0, content=0.1, content_chance=0.1)])["ok"] is None
    noise = check.verdict([state(fid=900.0), state(fid=650.0)], [state(fid=2000.0)])
    assert noise["ok"] is None and "FID 900 is noise level" in noise["why"]
    assert check.verdict([state(modes_covered=0, high_quality=0.0), toy[0]],
                         [state(modes_covered=0, high_quality=0.0)])["ok"] is None
    # a paired translator is judged by L1 before its FID
    paired = check.verdict([state(l1=0.10, fid=5.0), state(l1=0.11, fid=6.0)], [state(l1=0.13, fid=5.0)])
    assert paired["figure"] == "l1" and paired["ok"] is False


def test_divergence_and_missing_runs(check):
    fp32 = [state(fid=100.0), state(fid=120.0)]
    assert check.verdict(fp32, [{"diverged": "diverged at step 7"}])["ok"] is False
    assert check.verdict([{"diverged": "at 3"}, fp32[1]], [state(fid=1.0)])["ok"] is None
    assert check.verdict(fp32, [{}])["ok"] is None
    # a second bf16 seed: their mean is compared (a near miss of seed 0 told from noise)
    assert check.verdict(fp32, [state(fid=135.0), state(fid=125.0)])["ok"] is True
    assert check.verdict(fp32, [state(fid=135.0), state(fid=133.0)])["ok"] is False
    assert check.verdict(fp32, [state(fid=110.0), state(fid=125.0)])["bf16"] == [110.0, 125.0]


@pytest.mark.filterwarnings("ignore:train.precision=bf16 on a CPU")
def test_variants_train_with_their_precision_and_seed_and_the_table_compares_them(check, tmp_path, one_thread):
    for variant in ("fp32-s0", "fp32-s1", "bf16-s0"):
        check.run_variant(tmp_path, "gan-toy", 30, variant, 500)
    bf16 = yaml.safe_load((tmp_path / "bf16-s0" / "gan-toy" / "run" / "config.yaml").read_text())["train"]
    assert (bf16["precision"], bf16["channels_last"], bf16["seed"]) == ("bf16", True, 0)
    fp32 = yaml.safe_load((tmp_path / "fp32-s1" / "gan-toy" / "run" / "config.yaml").read_text())["train"]
    assert (fp32["precision"], fp32["seed"]) == ("fp32", 1)
    rows, text = check.table(tmp_path, [("gan-toy", 30)])
    # the row compares what each run's evaluation measured (a toy: modes, then the high-quality share)
    measured = {v: check.zoo.read_state(tmp_path / v, "gan-toy")["eval"] for v in ("fp32-s0", "fp32-s1", "bf16-s0")}
    assert rows[0]["figure"] == "modes_covered"
    assert rows[0]["figures"]["high_quality"] == [measured[v]["high_quality"] for v in measured]
    assert rows[0]["why"]
    assert text.splitlines()[2].startswith("| gan-toy | adversarial | nonsaturating | 30 |")


def test_a_zoo_run_begun_with_other_overrides_starts_over(check, tmp_path, one_thread):
    raw = read_recipe("gan-toy")
    first = check.zoo.train_one(tmp_path, "gan-toy", raw, None, 20, overrides={"train.seed": 0})
    assert first["steps"] == 20 and first["overrides"] == {"train.seed": 0}
    again = check.zoo.train_one(tmp_path, "gan-toy", raw, None, 20, overrides={"train.seed": 1})
    assert again["overrides"] == {"train.seed": 1}
    assert len(list(tmp_path.glob("gan-toy/run.replaced-*"))) == 1     # the seed-0 run kept aside, a new one trained
    config = yaml.safe_load((tmp_path / "gan-toy" / "run" / "config.yaml").read_text())
    assert config["train"]["seed"] == 1
