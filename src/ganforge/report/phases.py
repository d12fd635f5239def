"""The report's phase section for runs with ``train.phases`` (ProGAN's progressive growing): where the run stood in
its schedule over time, from the ``phase``, ``alpha`` and ``resolution`` every metrics line carries.

A chart of the growth level, log2 of the resolution with the fade-in as its fractional part (a phase fading in r px
at weight alpha stands at log2(r / 2) + alpha, so the curve ramps up during each fade-in and is flat while a
resolution stabilises: the authors' "level of detail", upside down), and a table with a row per phase: its
resolution, the logged steps it spans and the step its fade-in ended.
"""
from __future__ import annotations

import html
import math
from typing import Any


def _phase_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("kind", "train") == "train" and isinstance(r.get("step"), (int, float))
            and isinstance(r.get("phase"), int) and isinstance(r.get("alpha"), (int, float))
            and isinstance(r.get("resolution"), int) and r["resolution"] > 0]


def growth_level(resolution: int, alpha: float) -> float:
    """log2(resolution), less (1 - alpha) during a fade-in: 3.5 halfway through the fade-in to 8 px."""
    return math.log2(resolution) - (1.0 - float(alpha))


def _chart(points: list[tuple[float, float]], sizes: list[int], width: int = 460, height: int = 220) -> str:
    x0, x1 = points[0][0], points[-1][0]
    x1 = x1 if x1 > x0 else x0 + 1
    y0 = math.log2(min(sizes)) - 1.0
    y1 = math.log2(max(sizes))
    ml, mr, mt, mb = 62, 10, 22, 34
    W, H = width - ml - mr, height - mt - mb

    def xy(x: float, y: float) -> str:
        return f"{ml + (x - x0) / (x1 - x0) * W:.1f},{mt + (1 - (y - y0) / (y1 - y0)) * H:.1f}"

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<text x="{ml}" y="14" font-weight="bold">resolution and fade-in</text>',
             f'<rect x="{ml}" y="{mt}" width="{W}" height="{H}" fill="none" stroke="#ccc"/>',
             f'<text x="{ml}" y="{mt + H + 13}">{x0:.0f}</text>'
             f'<text x="{ml + W}" y="{mt + H + 13}" text-anchor="end">{x1:.0f}</text>',
             f'<text x="{ml + W / 2:.0f}" y="{height - 4}" text-anchor="middle">step</text>']
    for size in sizes:   # a labelled grid line per resolution
        _, y = xy(x0, math.log2(size)).split(",")
        parts.append(f'<line x1="{ml}" x2="{ml + W}" y1="{y}" y2="{y}" stroke="#eee"/>'
                     f'<text x="{ml - 4}" y="{float(y) + 4:.1f}" text-anchor="end">{size} px</text>')
    parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.6" '
                 f'points="{" ".join(xy(x, y) for x, y in points)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def phase_section(rows: list[dict[str, Any]]) -> str:
    """HTML for the phase chart and table, or "" for a run without phases."""
    logged = _phase_rows(rows)
    if not logged:
        return ""
    points = [(float(r["step"]), growth_level(r["resolution"], r["alpha"])) for r in logged]
    sizes = sorted({r["resolution"] for r in logged})
    phases: dict[int, dict[str, Any]] = {}
    for r in logged:
        p = phases.setdefault(r["phase"], {"resolution": r["resolution"], "first": r["step"], "last": r["step"],
                                           "faded": None, "min_alpha": r["alpha"]})
        p["last"] = r["step"]
        p["min_alpha"] = min(p["min_alpha"], r["alpha"])
        if p["faded"] is None and r["alpha"] >= 1.0 and p["min_alpha"] < 1.0:
            p["faded"] = r["step"]
    head = ["phase", "resolution", "first logged step", "last logged step", "fade-in", "lowest alpha logged"]
    lines = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for index in sorted(phases):
        p = phases[index]
        fade = ("none" if p["min_alpha"] >= 1.0 else
                f"done by step {p['faded']}" if p["faded"] is not None else "in progress")
        cells = [str(index), f"{p['resolution']} px", str(p["first"]), str(p["last"]), fade, f"{p['min_alpha']:.3g}"]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return ("<h2>Phases</h2><p class='small'>The resolution trained at each logged step, its fade-in as the fractional "
            "part (log2 scale: a ramp is a fade-in, a flat stretch a resolution stabilising).</p>"
            + _chart(points, sizes) + "<table class='evals'>" + "".join(lines) + "</table>")
