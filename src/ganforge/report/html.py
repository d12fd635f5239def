"""``report.html``: one page a person can open to see what a run did.

Built only from files in the run directory (config.yaml, README.md, metrics.jsonl, samples/, evals/, eval.json),
so it can be regenerated at any time (``ganforge info RUN --report``; ``ganforge eval RUN`` does after each
evaluation) and never depends on the live trainer. Curves are inline SVG (the raw line faint, an exponential
moving average over it bold, axes labelled); images are linked relative to the run directory, so the folder can
be moved. The progress wall shows at most ``WALL_GRIDS`` grids, evenly spaced from the first to the last, so a
long run's page stays light.
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence, TypeVar

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
WALL_GRIDS = 12
# Eval record keys that are bookkeeping, not figures worth a curve.
_NOT_CURVES = {"step", "time", "kind", "n", "n_ref", "test_accuracy", "image_size", "channels", "train_size",
               "test_size", "num_classes", "num_modes", "elapsed_s", "steps_per_s", "samples_per_s", "epoch",
               "phase", "alpha", "resolution"}   # train.phases: report/phases.py draws them
T = TypeVar("T")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the trainer truncates such lines on resume
            if isinstance(row, dict):
                rows.append(row)
    return rows


def evenly_spaced(items: Sequence[T], k: int = WALL_GRIDS) -> list[T]:
    """At most ``k`` of ``items``, evenly spaced, always the first and the last."""
    n = len(items)
    if n <= k:
        return list(items)
    if k <= 1:
        return [items[-1]]
    picks = sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in picks]


def ema(values: Sequence[float], span: float) -> list[float]:
    """Exponential moving average with the start-up bias removed (as Adam's moments), so the first points are
    not dragged towards 0; ``span`` as in pandas: weight 2 / (span + 1)."""
    alpha = 2.0 / (span + 1.0)
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def smoothing_span(n: int) -> float:
    """About 1/20 of the points, between 2 and 100: enough to see the trend through the step-to-step noise of GAN
    losses without hiding a collapse that takes a few hundred steps."""
    return float(min(100, max(2, n // 20)))


def _svg_chart(title: str, series: dict[str, list[tuple[float, float]]], ylabel: str | None = None,
               width: int = 460, height: int = 220) -> str:
    pts = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    ml, mr, mt, mb = 62, 10, 22, 34
    W, H = width - ml - mr, height - mt - mb

    def xy(x: float, y: float) -> str:
        return f"{ml + (x - x0) / (x1 - x0) * W:.1f},{mt + (1 - (y - y0) / (y1 - y0)) * H:.1f}"

    ylabel = ylabel or title
    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<text x="{ml}" y="14" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{ml}" y="{mt}" width="{W}" height="{H}" fill="none" stroke="#ccc"/>',
             f'<text x="{ml - 4}" y="{mt + 8}" text-anchor="end">{y1:.3g}</text>'
             f'<text x="{ml - 4}" y="{mt + H}" text-anchor="end">{y0:.3g}</text>',
             f'<text x="{ml}" y="{mt + H + 13}">{x0:.0f}</text>'
             f'<text x="{ml + W}" y="{mt + H + 13}" text-anchor="end">{x1:.0f}</text>',
             f'<text class="xlabel" x="{ml + W / 2:.0f}" y="{height - 4}" text-anchor="middle">step</text>',
             f'<text class="ylabel" x="12" y="{mt + H / 2:.0f}" text-anchor="middle" '
             f'transform="rotate(-90 12 {mt + H / 2:.0f})">{html.escape(ylabel)}</text>']
    for i, (name, s) in enumerate(series.items()):
        good = [p for p in s if math.isfinite(p[1])]
        if not good:
            continue
        color = COLORS[i % len(COLORS)]
        if len(good) >= 8:
            # The raw values faintly, their moving average on top: GAN losses jump from step to step.
            parts.append(f'<polyline class="raw" fill="none" stroke="{color}" stroke-opacity="0.3" stroke-width="1" '
                         f'points="{" ".join(xy(x, y) for x, y in good)}"/>')
            smooth = ema([y for _, y in good], smoothing_span(len(good)))
            parts.append(f'<polyline class="smoothed" fill="none" stroke="{color}" stroke-width="1.6" '
                         f'points="{" ".join(xy(x, y) for (x, _), y in zip(good, smooth))}"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.3" '
                         f'points="{" ".join(xy(x, y) for x, y in good)}"/>')
            if len(good) == 1:     # a polyline of one point draws nothing
                cx, cy = xy(*good[0]).split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        parts.append(f'<text x="{ml + 8 + 90 * i}" y="{mt + 12}" fill="{color}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _numeric(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(r["step"], float(r[key])) for r in rows
            if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
            and isinstance(r.get("step"), (int, float))]


def _charts(rows: list[dict[str, Any]], evals: list[dict[str, Any]]) -> str:
    train = [r for r in rows if r.get("kind", "train") == "train"]
    out = []
    keys = [k for k in (train[-1] if train else {}) if k not in _NOT_CURVES
            and isinstance(train[-1][k], (int, float)) and not isinstance(train[-1][k], bool)]
    losses = {k: _numeric(train, k) for k in keys if "loss" in k}
    if losses:
        out.append(_svg_chart("losses", losses, ylabel="loss"))
    for k in (k for k in keys if "loss" not in k):
        out.append(_svg_chart(k, {k: _numeric(train, k)}))
    ekeys = sorted({k for r in evals for k, v in r.items() if k not in _NOT_CURVES and not k.endswith("_std")
                    and isinstance(v, (int, float)) and not isinstance(v, bool)})
    origins = sorted({str(r.get("origin", "")) for r in evals})
    for k in ekeys:
        # One line per origin: training evaluations and `ganforge eval` runs may differ in n and reference.
        series = {o: _numeric([r for r in evals if str(r.get("origin", "")) == o], k) for o in origins}
        # A curve needs two evaluated steps; a single evaluation is in the table above, not a chart of one dot.
        series = {o: s for o, s in series.items() if len({step for step, _ in s}) >= 2}
        if series:
            out.append(_svg_chart(f"eval: {k}", series, ylabel=k))
    return "\n".join(c for c in out if c)


def _eval_table(evals: list[dict[str, Any]]) -> str:
    """One row per evaluation: step, who made it, n, reference, features, the classifier's held-out accuracy
    (how far a domain FID can be trusted), then every figure any evaluation has, 3 significant digits."""
    from .evals import METRIC_COLUMNS, format_metric, sig3
    figures = [(k, label, f) for k, label, f in METRIC_COLUMNS if any(k in r for r in evals)]
    head = ["step", "by", "n", "reference", "features", "classifier acc."] + [label for _, label, _ in figures]
    lines = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in evals:
        acc = r.get("test_accuracy")
        cells = [sig3(r.get("step")), str(r.get("origin", "")), sig3(r.get("n")), str(r.get("ref", "-")),
                 str(r.get("features", "-")),
                 f"{sig3(100 * acc)} %" if isinstance(acc, (int, float)) else "-"]
        cells += [format_metric(r, k, f) or "-" for k, _, f in figures]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return "<table class='evals'>" + "".join(lines) + "</table>"


def write_report(run_dir: str | Path) -> Path:
    from .evals import read_evals
    run_dir = Path(run_dir)
    cfg_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    readme = (run_dir / "README.md").read_text() if (run_dir / "README.md").is_file() else ""
    rows = read_metrics(run_dir)
    samples = sorted((run_dir / "samples").glob("step-*.png")) if (run_dir / "samples").is_dir() else []
    evals, notices = read_evals(run_dir)
    import yaml
    try:
        cfg = yaml.safe_load(cfg_text) or {}
    except yaml.YAMLError:
        cfg = {}
    if not isinstance(cfg, dict):
        cfg = {}
    title = f"ganforge run: {cfg.get('name', run_dir.name)}"
    train_rows = [r for r in rows if r.get("kind", "train") == "train"]
    last = train_rows[-1] if train_rows else {}
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>{html.escape(str(cfg.get('description', '')))}</p>"]
    if cfg.get("citation"):
        body.append(f"<p><b>Cites:</b> {html.escape(str(cfg['citation']))}</p>")
    body += [f"<p class='small'><b>Where each setting comes from:</b> {html.escape(str(cfg.get('source', '')))}</p>",
             f"<pre class='small'>{html.escape(readme)}</pre>"]
    if last:
        from .evals import sig3
        stats = ", ".join(f"{k} = {sig3(v)}" for k, v in last.items() if k not in ("kind", "time"))
        body.append(f"<p><b>Last logged:</b> {html.escape(stats)}</p>")
    if samples:
        latest = samples[-1]
        body.append(f"<h2>Latest samples ({html.escape(latest.stem)})</h2>"
                    f"<img src='samples/{html.escape(latest.name)}' style='image-rendering:pixelated;width:420px'>")
    if evals or notices:
        body.append("<h2>Evaluation</h2>")
        body += [f"<p class='notice'>{html.escape(n)}</p>" for n in notices]
        if evals:
            body.append(_eval_table(evals))
            body.append("<p class='small'>KID is shown x10^3. With domain features, FID/KID/IS come from ganforge's "
                        "own classifier of the reference data: comparable among themselves (same n and reference), "
                        "not with published Inception FIDs, and only as good as the classifier's held-out "
                        "accuracy.</p>")
    from .phases import phase_section
    body.append(phase_section(rows))   # "" without train.phases
    charts = _charts(rows, evals)
    if charts:
        body.append("<h2>Curves</h2><p class='small'>Faint: the logged values; bold: their exponential moving "
                    f"average.</p><div>{charts}</div>")
    if samples:
        wall = evenly_spaced(samples)
        note = (f" ({len(wall)} of {len(samples)} grids, evenly spaced)" if len(wall) < len(samples) else "")
        strip = "".join(f"<figure><img src='samples/{html.escape(p.name)}' style='width:150px;image-rendering:pixelated'>"
                        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in wall)
        body.append(f"<h2>Progress (fixed noise){html.escape(note)}</h2><div class='strip'>{strip}</div>")
    body.append(f"<h2>Resolved config</h2><pre>{html.escape(cfg_text)}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:20px auto;padding:0 10px}"
            "pre{background:#f6f6f6;padding:8px;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}.small{font-size:12px}"
            ".strip{display:flex;flex-wrap:wrap;gap:6px}figure{margin:0;text-align:center;font-size:11px}"
            ".notice{background:#fff3cd;border:1px solid #e0c36b;padding:4px 8px}"
            "table.evals{border-collapse:collapse;font-size:12px;display:block;overflow-x:auto}"
            "th,td{padding:2px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}"
            "</style></head><body>"
            + "\n".join(body) + "</body></html>")
    path = run_dir / "report.html"
    tmp = run_dir / f".report.html.tmp-{os.getpid()}"   # a trainer and `ganforge eval` may both write
    tmp.write_text(page)
    tmp.replace(path)
    return path
