"""Sampling controls for conditional and disentangled models, and the grid layout they imply.

``ganforge sample RUN --label 7`` (every sample a 7), ``--labels 0-9`` (a row per class), ``--code c1=-2:2``
(each row traverses code ``c1`` from -2 to 2 across its columns, everything else fixed along the row),
``--fix c2=0`` (hold an input at a constant), ``--share-noise`` (column j uses the same noise in every row:
"same style, other digit"), ``--stage z0`` (stacked models: only input ``z0`` varies along each row; the label
and the other inputs are shared along the row). An algorithm's ``sample_inputs(n, generator, device, **controls)`` receives these
keys; the helpers below turn them into per-sample labels, traversal values and noise, so every family lays
out grids the same way: sample i sits in row ``i // per_row``, column ``i % per_row``.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import torch

from ..errors import ConfigError


def parse_labels(spec: str, num_classes: int | None = None) -> list[int]:
    """``"0-9"`` -> [0..9]; ``"1,3,7"`` -> [1, 3, 7]; ``"0-4,9"`` -> [0, 1, 2, 3, 4, 9]."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError(f"--labels expects a list like 0-9 or 1,3,7, got '{spec}'")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"--labels range '{part}' goes backwards")
        out.extend(range(lo, hi + 1))
    if num_classes is not None:
        check_labels(out, num_classes)
    return out


def check_labels(labels: list[int], num_classes: int) -> None:
    bad = [v for v in labels if not 0 <= v < num_classes]
    if bad:
        raise ConfigError(f"label {bad[0]} is out of range: this model has classes 0..{num_classes - 1}")


def parse_code(spec: str) -> tuple[str, float, float]:
    """``"c1=-2:2"`` -> ("c1", -2.0, 2.0)."""
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*([-+.\deE]+)\s*:\s*([-+.\deE]+)\s*", spec)
    if not m:
        raise ConfigError(f"--code expects NAME=LOW:HIGH such as c1=-2:2, got '{spec}'")
    try:
        return m.group(1), float(m.group(2)), float(m.group(3))
    except ValueError:
        raise ConfigError(f"--code expects numbers in NAME=LOW:HIGH, got '{spec}'") from None


def parse_fix(specs: list[str]) -> dict[str, float]:
    """``["c2=0", "z0=1.5"]`` -> {"c2": 0.0, "z0": 1.5}."""
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--fix expects NAME=VALUE such as c2=0, got '{spec}'") from None
    return out


def unknown_controls(controls: dict[str, Any], allowed: tuple[str, ...], model: str) -> None:
    """Raise for controls this model does not understand (e.g. ``--label`` on an unconditional GAN)."""
    given = [k for k, v in controls.items() if v not in (None, False, {}, [])]
    extra = [k for k in given if k not in allowed and k != "per_row"]
    if extra:
        raise ConfigError(f"{model} does not take sampling control(s) {', '.join(extra)}; "
                          f"it takes: {', '.join(a for a in allowed) or 'none'}")


def check_names(names: dict[str, Any], known: tuple[str, ...], flag: str, model: str) -> None:
    for name in names:
        if name not in known:
            raise ConfigError(f"{model} has no input '{name}' for {flag}; its inputs are: {', '.join(known)}")


def per_row(n: int, controls: dict[str, Any]) -> int:
    """Columns of the grid: the traversal length or ``per_row`` (default 10), never more than n."""
    return max(1, min(n, int(controls.get("per_row") or 10)))


def layout_labels(n: int, num_classes: int, controls: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
    """One label per sample: ``label`` for all; ``labels`` one per row (cycled); else uniformly random."""
    if controls.get("label") is not None:
        check_labels([int(controls["label"])], num_classes)
        return torch.full((n,), int(controls["label"]), dtype=torch.long)
    if controls.get("labels"):
        labels = [int(v) for v in controls["labels"]]
        check_labels(labels, num_classes)
        cols = per_row(n, controls)
        rows = torch.arange(n) // cols
        return torch.tensor(labels, dtype=torch.long)[rows % len(labels)]
    return torch.randint(num_classes, (n,), generator=generator)


def traversal(n: int, controls: dict[str, Any]) -> tuple[str, torch.Tensor] | None:
    """(code name, value per sample) for ``--code NAME=LO:HI``: column j of each row takes the j-th of
    ``per_row`` evenly spaced values."""
    spec = controls.get("traverse")
    if not spec:
        return None
    name, lo, hi = spec
    cols = per_row(n, controls)
    values = torch.linspace(lo, hi, cols) if cols > 1 else torch.tensor([lo])
    return name, values[torch.arange(n) % cols]


def row_shared(n: int, controls: dict[str, Any], draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """Draw per-sample inputs, then make them constant along a row when a code is traversed (so only the
    traversed code changes across the row), or constant down a column with ``share_noise``."""
    cols = per_row(n, controls)
    idx = torch.arange(n)
    if controls.get("traverse"):
        base = draw((n + cols - 1) // cols)
        return base[idx // cols]
    if controls.get("share_noise"):
        base = draw(cols)
        return base[idx % cols]
    return draw(n)


# ---------------------------------------------------------------------------------------------------------------
# Stacked models: ``--stage NAME`` (StackedGAN, issue 5 part B). Only input NAME varies along each row; the label
# and every other input are drawn once per row and shared along it, so a row shows what NAME alone controls.
def stage_name(controls: dict[str, Any], names: tuple[str, ...], model: str) -> str | None:
    """The input named by ``stage`` (checked against ``names``), or None. ``stage`` and a ``--code`` traversal
    both decide what varies along a row, so they cannot be combined."""
    stage = controls.get("stage")
    if not stage:
        return None
    if controls.get("traverse"):
        raise ConfigError("--stage and --code both choose what varies along a row; use one of them")
    check_names({stage: None}, names, "--stage", model)
    return str(stage)


def row_constant(n: int, controls: dict[str, Any], draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """One draw per grid row, repeated along the row."""
    cols = per_row(n, controls)
    return draw((n + cols - 1) // cols)[torch.arange(n) // cols]


def staged(n: int, controls: dict[str, Any], name: str, stage: str,
           draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """Per-sample values of input ``name`` under ``--stage stage``: the staged input varies along each row (with
    ``share_noise``, column j holds the same draw in every row); any other input is constant along its row."""
    if name != stage:
        return row_constant(n, controls, draw)
    if controls.get("share_noise"):
        cols = per_row(n, controls)
        return draw(cols)[torch.arange(n) % cols]
    return draw(n)
