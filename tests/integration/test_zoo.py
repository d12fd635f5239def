"""bench/zoo.py's bookkeeping: a paper-scale recipe under ``--budget-minutes`` trains its own settings until the budget
is spent, is then final (a later sitting trains nothing), and its row names the steps it reached."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ganforge.config import read_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zoo():
    spec = importlib.util.spec_from_file_location("zoo", REPO / "bench" / "zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budget_applies_only_to_recipes_over_max_steps(zoo):
    raw = read_recipe("gan-toy")                        # states 5,000 steps
    assert zoo.budget_seconds(raw, 20_000, 6) is None
    assert zoo.budget_seconds(raw, 1_000, 6) == 360.0
    assert zoo.budget_seconds(raw, 1_000, None) is None
    assert zoo.why_skipped(raw, 1_000).startswith("paper scale")
    assert zoo.why_skipped(raw, 1_000, budget_minutes=6) is None
    assert zoo.why_skipped(read_recipe("biggan"), 1_000_000, budget_minutes=6).startswith("needs user data")


def test_a_spent_budget_is_final_and_named_in_the_row(zoo, tmp_path, one_thread):
    raw = read_recipe("gan-toy")
    stated = zoo.stated_steps(raw)
    first = zoo.train_one(tmp_path, "gan-toy", raw, None, stated, budget_s=1.0)
    assert first["budget_spent"] is True
    assert 0 < first["steps"] < stated                  # the toy runs ~100 steps/s here: 1 s stops it early
    assert first["target_steps"] == first["steps"]      # evaluable: evaluate_one waits for steps >= target
    assert first["cpu_seconds"] >= 1.0                  # the budget is CPU time (train.time_limit_clock: cpu)
    # the next sitting trains nothing: same steps, same CPU time
    second = zoo.train_one(tmp_path, "gan-toy", raw, None, stated, budget_s=1.0)
    assert second["steps"] == first["steps"] and second["cpu_seconds"] == first["cpu_seconds"]
    row = zoo.row_for(tmp_path, "gan-toy", raw, None, 200)
    assert row["steps"] == f"{first['steps']:,} in 0.0166667 CPU-min (budget; recipe {stated:,})"
    assert row["figure"] == "not evaluated yet"                 # finished: evaluate_one comes next


def test_a_budget_cut_by_the_sitting_limit_goes_on_next_sitting(zoo, tmp_path, one_thread):
    raw = read_recipe("gan-toy")
    stated = zoo.stated_steps(raw)
    first = zoo.train_one(tmp_path, "gan-toy", raw, 0.5, stated, budget_s=30.0)   # --time-limit 0.5 this sitting
    assert not first.get("budget_spent") and 0 < first["steps"] < stated
    assert first["target_steps"] == stated              # not evaluable yet
    row = zoo.row_for(tmp_path, "gan-toy", raw, None, 200)
    assert "budget not spent yet" in row["steps"]


def test_a_run_of_an_older_recipe_step_count_starts_over(zoo, tmp_path, one_thread):
    """A recipe whose train.steps changed since its zoo run began is trained afresh (its schedules may be stated
    over the last N steps), the old run moved aside, not resumed to the new number."""
    raw = read_recipe("gan-toy")
    first = zoo.train_one(tmp_path, "gan-toy", raw, None, 20)        # a capped run: 20 of the recipe's steps
    assert first["steps"] == 20
    # as if the recipe stated 4,000 steps when the run began (and a CPU time that must not be carried over)
    zoo.write_state(tmp_path, "gan-toy", {**first, "stated_steps": 4000, "cpu_seconds": 1e6})
    again = zoo.train_one(tmp_path, "gan-toy", raw, None, 30)
    assert again["steps"] == 30 and again["stated_steps"] == zoo.stated_steps(raw)
    assert len(list(tmp_path.glob("gan-toy/run.replaced-*"))) == 1     # the old run kept, beside the new one
    assert again["cpu_seconds"] < 1e5                                   # the new run's CPU time only


def test_a_capped_run_raised_to_its_recipes_steps_goes_on(zoo, tmp_path, one_thread):
    """A run capped at 20 steps, then asked for the recipe's own steps (bench/bf16_check.py raising a check's steps
    to the recipe's), resumes and trains on; it used to resume with its config's 20 steps and train nothing."""
    raw = read_recipe("gan-toy")
    assert zoo.train_one(tmp_path, "gan-toy", raw, None, 20)["steps"] == 20
    raised = zoo.train_one(tmp_path, "gan-toy", raw, 0.5, zoo.stated_steps(raw))    # 0.5 CPU-s this sitting
    assert 20 < raised["steps"] < zoo.stated_steps(raw)
    assert not list(tmp_path.glob("gan-toy/run.replaced-*"))                         # resumed, not restarted


def test_a_recipe_that_starts_from_another_trains_that_one_first_and_starts_from_its_run(zoo, tmp_path, one_thread,
                                                                                          capsys):
    """srgan-digits states ``starts_from: srresnet-digits`` (the paper's SRGAN starts from SRResNet): the zoo trains
    and evaluates srresnet-digits first, starts srgan-digits from its checkpoint, and says so in the row; a run of
    srgan-digits begun from scratch (an older zoo) is trained afresh."""
    import argparse
    import json

    import ganforge
    args = argparse.Namespace(root=str(tmp_path), one="srgan-digits", time_limit=None, max_steps=1, cap_steps=2,
                              budget_minutes=None, n=50)
    raw = read_recipe("srgan-digits")
    # an older zoo's run, from scratch
    ganforge.train("srgan-digits", out=tmp_path / "srgan-digits" / "run", steps=2, progress="log",
                   overrides={"train.checkpoint_every": 2})
    zoo.write_state(tmp_path, "srgan-digits", {"steps": 2, "target_steps": 2, "stated_steps": zoo.stated_steps(raw),
                                               "eval": {"l1": 1.0}})
    assert "meant to start from a finished srresnet-digits run" in capsys.readouterr().err
    assert zoo.work_one(args) == 0
    base, state = zoo.read_state(tmp_path, "srresnet-digits"), zoo.read_state(tmp_path, "srgan-digits")
    assert base["steps"] == 2 and "psnr" in base["eval"]             # trained and evaluated first
    assert state["steps"] == 2 and state["starts_from"] == "srresnet-digits" and "psnr" in state["eval"]
    meta = json.loads((tmp_path / "srgan-digits" / "run" / "run.json").read_text())
    assert meta["init_from"]["recipe"] == "srresnet-digits" and meta["init_from"]["step"] == 2
    assert len(list(tmp_path.glob("srgan-digits/run.replaced-*"))) == 1   # the scratch run moved aside
    assert zoo.row_for(tmp_path, "srgan-digits", raw, None, 50)["steps"].endswith(", from srresnet-digits's run")


def test_a_run_eval_cannot_score_gets_the_reason_in_its_row(zoo, tmp_path):
    """`ganforge eval` refuses some runs (unlabelled data has no domain evaluator): the row says why, no traceback,
    and the next recipe goes on."""
    raw = read_recipe("gan-toy")
    (tmp_path / "gan-toy" / "run").mkdir(parents=True)        # a run directory without its files
    zoo.write_state(tmp_path, "gan-toy", {"steps": 5, "target_steps": 5, "stated_steps": zoo.stated_steps(raw)})
    state = zoo.evaluate_one(tmp_path, "gan-toy", 100)
    assert "eval" not in state and state["eval_error"]
    row = zoo.row_for(tmp_path, "gan-toy", raw, None, 100)
    assert row["figure"] == f"not evaluated: {state['eval_error']}"


def test_a_diverging_recipe_is_final_and_its_row_says_where(zoo, tmp_path, one_thread, monkeypatch):
    """A recipe whose loss turns non-finite (the trainer raises TrainingDiverged) is a result, not a crash: the row
    says in which step, the next sitting does not train it again, and nothing evaluates it."""
    import ganforge
    real_train = ganforge.train

    def exploding(*args, overrides=None, **kwargs):     # the toy with a learning rate no network survives
        return real_train(*args, overrides={**(overrides or {}), "optim.D.lr": 1e30, "optim.G.lr": 1e30}, **kwargs)
    monkeypatch.setattr(ganforge, "train", exploding)
    raw = read_recipe("gan-toy")
    state = zoo.train_one(tmp_path, "gan-toy", raw, None, 50)
    assert state["diverged"].startswith("training diverged in step ") and state["steps"] == 0
    again = zoo.train_one(tmp_path, "gan-toy", raw, None, 50)
    assert again["cpu_seconds"] == state["cpu_seconds"]        # not trained again
    assert zoo.finished(again) and "eval" not in zoo.evaluate_one(tmp_path, "gan-toy", 100)
    row = zoo.row_for(tmp_path, "gan-toy", raw, None, 100)
    assert row["figure"] == state["diverged"] and row["steps"] == "0 checkpointed, then diverged (recipe 5,000)"
