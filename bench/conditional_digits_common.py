"""Shared pieces of ``bench/resnet_gans.py`` and ``bench/biggan_digits.py``: a recipe trained for a wall-clock budget
at one thread, and class-conditional samples scored against the bundled digits at each truncation psi.

Scores: ``--n`` samples with balanced labels 0-9 (seed 123), read by ganforge's domain classifier of
``mnist5k?split=train`` (its 128-d features for FID / precision / recall with k=3, its softmax for label accuracy
against the requested label and the mean top-class confidence).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

import ganforge
from ganforge.data import to_uint8
from ganforge.metrics.evaluate import Samples, evaluate, load_reference, make_extractor

REF = "mnist5k?split=train"
PSIS = (None, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3)   # None: no truncation
METRICS = ["fid", "pr", "classes"]
BRIEF = ("fid", "precision", "recall", "modes", "confident_share", "label_accuracy")


def domain_scorer() -> tuple[Any, Any]:
    """(reference, extractor) of the digits, the classifier's held-out accuracy printed."""
    extractor = make_extractor("domain", REF, channels=1)
    print(f"domain classifier held-out accuracy {extractor.info['test_accuracy']:.4f}", flush=True)
    return load_reference(REF), extractor


def train_for(recipe: str, out: Path, seconds: float, overrides: dict[str, Any], bench: str,
              logged_prefixes: tuple[str, ...] = ()) -> tuple[Path, dict[str, Any]]:
    """``recipe`` trained into ``out`` for at most ``seconds`` (or its steps) at one thread; (run dir, facts), the
    facts with the last logged values whose names start with ``logged_prefixes``."""
    t0 = time.time()
    run = ganforge.train(recipe, out=out, force=True, progress=False, time_limit_s=seconds,
                         overrides={"train.threads": 1, **overrides}, command=f"{bench} ({recipe}, {seconds:.0f} s)")
    wall = time.time() - t0
    facts: dict[str, Any] = {"recipe": recipe, "steps": run.steps, "train_wall_s": round(wall, 1),
                             "steps_per_s": round(run.steps / wall, 3)}
    if logged_prefixes:
        rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
        last = [r for r in rows if r.get("kind") == "train"][-1]
        facts["last_logged"] = {k: round(v, 4) for k, v in last.items() if k.startswith(logged_prefixes)}
    return run.run_dir, facts


def brief(result: dict[str, Any]) -> dict[str, Any]:
    return {k: round(result[k], 4) if isinstance(result.get(k), float) else result.get(k) for k in BRIEF
            if k in result}


def score_labelled(model: Any, n: int, psi: float | None, reference: Any, extractor: Any) -> dict[str, Any]:
    """The brief figures of ``n`` balanced-label samples at truncation ``psi``, with the mean top-class confidence."""
    images, labels = model.sample_with_inputs(n, seed=123, labels=list(range(10)), per_row=n // 10, truncation=psi)
    samples = Samples("image", to_uint8(images, model.value_range), labels, f"psi={psi}")
    result = evaluate(samples, METRICS, reference=reference, extractor=extractor)
    probs, _ = extractor.clf.predict(samples.data)
    return {**brief(result), "mean_confidence": round(float(probs.max(1).values.mean()), 4)}


def truncation_curve(model: Any, n: int, reference: Any, extractor: Any, name: str) -> dict[str, Any]:
    """``score_labelled`` at each psi of PSIS, keyed "none" / "1.0" / ..., each printed as it comes."""
    curve = {}
    for psi in PSIS:
        key = "none" if psi is None else str(psi)
        curve[key] = score_labelled(model, n, psi, reference, extractor)
        print(name, "psi", key, curve[key], flush=True)
    return curve


def truncation_rows(model: Any) -> list[torch.Tensor]:
    """A grid row per psi of PSIS: labels 0-9, the same seeds in every row (uint8)."""
    return [to_uint8(model.sample(10, seed=7, labels=list(range(10)), per_row=1, truncation=psi), model.value_range)
            for psi in PSIS]
