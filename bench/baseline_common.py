"""Shared pieces of the benches that set an architecture against the DCGAN baseline at the same wall time
(``bench/progan_digits.py``, ``bench/stylegan_colour.py``): a timed training run and the markdown table of figures."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import ganforge


def markdown_table(rows: dict[str, dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A row per entry of ``rows``, a column per (key, heading); floats to 4 significant digits, "-" when absent."""
    lines = ["| samples | " + " | ".join(c[1] for c in columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, r in rows.items():
        cells = [f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, "-")) for k, _ in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timed_train(recipe: str, out: Path, overrides: dict[str, Any], bench: str) -> tuple[Path, float, int]:
    """(run dir, training wall seconds, steps) of ``recipe`` trained into ``out`` with ``overrides``."""
    t0 = time.time()
    run = ganforge.train(recipe, out=out, force=True, overrides=overrides, progress="log",
                         command=f"{bench} ({recipe})")
    return run.run_dir, time.time() - t0, run.steps


def write_result(result: dict[str, Any], run_dir: Path) -> None:
    """``result`` (with the run directory) into RUN/bench.json and printed a line per figure; every float figure must
    be finite (a NaN means the bench measured nothing)."""
    result["run_dir"] = str(run_dir)
    (run_dir / "bench.json").write_text(json.dumps(result, indent=1))
    for key, value in result.items():
        print(f"{key}: {value}")
    assert all(math.isfinite(v) for v in result.values() if isinstance(v, float))
