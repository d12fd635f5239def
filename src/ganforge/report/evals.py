"""A run's evaluation history: every ``ganforge eval RUN`` and every ``train.eval_every`` evaluation, in one place.

Where the records live in a run directory:

* ``evals/step-XXXXXXXX.json``: one per evaluated checkpoint step, written by ``ganforge eval RUN``. A later
  evaluation of the same step replaces the file, so each step keeps its newest measurement.
* ``eval.json``: a copy of the one written last (what the last ``ganforge eval RUN`` printed), for scripts that
  read one fixed path; runs evaluated before the history existed have only this file.
* ``metrics.jsonl``: ``kind: eval`` rows written during training (``train.eval_every``).

``latest_eval(run_dir)`` is what ``ganforge info`` shows; ``read_evals(run_dir)`` is what the report tabulates.
Pure Python (no torch), so reading a run's summary stays fast.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

EVALS_DIR = "evals"
LATEST = "eval.json"

# Figures shown for an evaluation, in table order: (key in the record, label, factor). KID is ~1e-3 for good
# models, so it is shown x10^3 (as the KID paper's tables do) and the label says so.
METRIC_COLUMNS: list[tuple[str, str, float]] = [
    ("fid", "FID", 1.0), ("kid", "KID (x10^3)", 1e3), ("is", "IS", 1.0), ("precision", "precision", 1.0),
    ("recall", "recall", 1.0), ("density", "density", 1.0), ("coverage", "coverage", 1.0),
    ("modes", "modes", 1.0), ("kl_uniform", "KL(classes||U)", 1.0), ("confident_share", "confident", 1.0),
    ("label_accuracy", "label acc.", 1.0), ("modes_covered", "modes covered", 1.0),
    ("high_quality", "high quality", 1.0), ("reverse_kl", "reverse KL", 1.0),
    ("psnr", "PSNR (dB)", 1.0), ("ssim", "SSIM", 1.0), ("l1", "L1", 1.0),
    # translation runs (metrics/translation.py): the do-nothing baseline beside each paired figure, content
    ("baseline_psnr", "PSNR baseline", 1.0), ("baseline_ssim", "SSIM baseline", 1.0),
    ("baseline_l1", "L1 baseline", 1.0), ("content", "content", 1.0), ("baseline_content", "content baseline", 1.0)]


def sig3(value: Any) -> str:
    """A number with 3 significant digits, in plain notation between 1e-3 and 1e6 (``1230``, ``98.3``,
    ``0.0123``), scientific outside (``4.56e-05``); integers and text unchanged."""
    if value is None or isinstance(value, (bool, str)):
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    v = float(f"{v:.3g}")           # round first: 9.996 becomes 10.0, whose exponent decides the decimals
    exp = math.floor(math.log10(abs(v)))
    if exp < -3 or exp >= 6:
        return f"{v:.2e}"
    decimals = max(0, 2 - exp)
    return f"{v:.{decimals}f}"


def format_metric(record: dict[str, Any], key: str, factor: float = 1.0) -> str | None:
    """The figure ``key`` of an evaluation record as text (with ``± std`` and ``of K`` where known), or None."""
    if key not in record or record[key] is None:
        return None
    v = record[key]
    if key == "modes" and "num_classes" in record:
        return f"{v} of {record['num_classes']}"
    if key == "modes_covered" and "num_modes" in record:
        return f"{v} of {record['num_modes']}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        text = sig3(v * factor if factor != 1.0 else v)
        std = record.get(f"{key}_std")
        if isinstance(std, (int, float)):
            text += f" ± {sig3(std * factor)}"
        return text
    return str(v)


def _step_path(run_dir: Path, step: int) -> Path:
    return run_dir / EVALS_DIR / f"step-{step:08d}.json"


def record_eval(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """Add a ``ganforge eval`` result to the run's history (``evals/step-XXXXXXXX.json``, replacing an earlier
    evaluation of the same step) and make it the run's ``eval.json``; returns the history file. The report is
    not rebuilt here (the caller does, once)."""
    from ..train.checkpoint import atomic_write_text
    run_dir = Path(run_dir)
    step = int(result.get("step") or 0)
    record = {"kind": "eval", "origin": "ganforge eval", "step": step, "time": round(time.time(), 3),
              **{k: v for k, v in result.items() if k not in ("kind", "origin", "step", "time")}}
    text = json.dumps(record, indent=1)
    path = _step_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    atomic_write_text(run_dir / LATEST, text)
    return path


def _read_record(path: Path, run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None) or (None, a one-line notice saying which file is unreadable and what to do)."""
    rel = path.relative_to(run_dir)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        reason = " ".join(str(e).split())[:120]
        return None, (f"{rel} could not be read ({reason}); it is left out of this report: rerun "
                      f"`ganforge eval {run_dir}` or delete the file")
    if not isinstance(record, dict):
        return None, (f"{rel} does not hold an evaluation record (a JSON object); it is left out of this report: "
                      f"rerun `ganforge eval {run_dir}` or delete the file")
    return record, None


def read_evals(run_dir: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every evaluation of a run, oldest step first (ties: in the order they were made), each with an ``origin``
    ("training" or "ganforge eval"); and a notice for each evaluation file that could not be read."""
    from .html import read_metrics
    run_dir = Path(run_dir)
    records: list[dict[str, Any]] = []
    notices: list[str] = []
    for row in read_metrics(run_dir):
        if row.get("kind") == "eval":
            records.append({"origin": "training", **row})
    history = sorted((run_dir / EVALS_DIR).glob("step-*.json")) if (run_dir / EVALS_DIR).is_dir() else []
    for path in history:
        record, notice = _read_record(path, run_dir)
        if record is not None:
            records.append({"origin": "ganforge eval", **record})
        if notice:
            notices.append(notice)
    latest = run_dir / LATEST
    if latest.is_file():
        record, notice = _read_record(latest, run_dir)
        if notice:
            notices.append(notice)
        elif not history:   # a run evaluated before the history existed: eval.json is its only record
            records.append({"origin": "ganforge eval", **record})
    records.sort(key=lambda r: (_number(r.get("step")), _number(r.get("time"))))
    return records, notices


def _number(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else -1.0


def latest_eval(run_dir: str | Path, scalars_only: bool = False) -> dict[str, Any] | None:
    """The newest evaluation of a run (highest step; on a tie the one made last), from ``ganforge eval`` or from
    training, or None. ``scalars_only`` drops lists and mappings (class histograms) for one-line display."""
    records, _ = read_evals(run_dir)
    if not records:
        return None
    record = records[-1]
    if scalars_only:
        record = {k: v for k, v in record.items() if not isinstance(v, (list, dict))}
    return record
