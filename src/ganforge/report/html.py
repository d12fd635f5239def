"""``report.html``: one page a person can open to see what a run did.

Built only from files in the run directory (config.yaml, README.md, metrics.jsonl, samples/, eval.json), so
it can be regenerated at any time (``ganforge info RUN --report``) and never depends on the live trainer.
Curves are inline SVG; images are linked relative to the run directory, so the folder can be moved.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the trainer truncates such lines on resume
    return rows


def _svg_chart(title: str, series: dict[str, list[tuple[float, float]]], width: int = 460, height: int = 200) -> str:
    pts = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    ml, mr, mt, mb = 48, 10, 22, 22
    W, H = width - ml - mr, height - mt - mb

    def xy(x: float, y: float) -> str:
        return f"{ml + (x - x0) / (x1 - x0) * W:.1f},{mt + (1 - (y - y0) / (y1 - y0)) * H:.1f}"

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<text x="{ml}" y="14" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{ml}" y="{mt}" width="{W}" height="{H}" fill="none" stroke="#ccc"/>',
             f'<text x="2" y="{mt + 8}">{y1:.3g}</text><text x="2" y="{mt + H}">{y0:.3g}</text>',
             f'<text x="{ml}" y="{height - 6}">{x0:.0f}</text>'
             f'<text x="{ml + W - 40}" y="{height - 6}">{x1:.0f}</text>']
    for i, (name, s) in enumerate(series.items()):
        good = [p for p in s if math.isfinite(p[1])]
        if not good:
            continue
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.3" '
                     f'points="{" ".join(xy(x, y) for x, y in good)}"/>')
        parts.append(f'<text x="{ml + 8 + 90 * i}" y="{mt + 12}" fill="{color}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _charts(rows: list[dict[str, Any]]) -> str:
    train = [r for r in rows if r.get("kind", "train") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    skip = {"step", "time", "kind", "elapsed_s", "steps_per_s", "samples_per_s", "epoch"}
    out = []
    keys = [k for k in (train[-1] if train else {}) if k not in skip and isinstance(train[-1][k], (int, float))]
    losses = {k: [(r["step"], r[k]) for r in train if isinstance(r.get(k), (int, float))] for k in keys if "loss" in k}
    if losses:
        out.append(_svg_chart("losses", losses))
    others = [k for k in keys if "loss" not in k]
    for k in others:
        out.append(_svg_chart(k, {k: [(r["step"], r[k]) for r in train if isinstance(r.get(k), (int, float))]}))
    ekeys = sorted({k for r in evals for k, v in r.items() if k not in skip and isinstance(v, (int, float))})
    for k in ekeys:
        out.append(_svg_chart(f"eval: {k}", {k: [(r["step"], r[k]) for r in evals if isinstance(r.get(k), (int, float))]}))
    return "\n".join(c for c in out if c)


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    cfg_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    readme = (run_dir / "README.md").read_text() if (run_dir / "README.md").is_file() else ""
    rows = read_metrics(run_dir)
    samples = sorted((run_dir / "samples").glob("step-*.png")) if (run_dir / "samples").is_dir() else []
    evaluation = {}
    if (run_dir / "eval.json").is_file():
        try:
            evaluation = json.loads((run_dir / "eval.json").read_text())
        except json.JSONDecodeError:
            evaluation = {}
    import yaml
    try:
        cfg = yaml.safe_load(cfg_text) or {}
    except yaml.YAMLError:
        cfg = {}
    title = f"ganforge run: {cfg.get('name', run_dir.name)}"
    train_rows = [r for r in rows if r.get("kind", "train") == "train"]
    last = train_rows[-1] if train_rows else {}
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>{html.escape(str(cfg.get('description', '')))}</p>",
            f"<p><b>Source:</b> {html.escape(str(cfg.get('source', '')))}</p>",
            f"<pre class='small'>{html.escape(readme)}</pre>"]
    if last:
        stats = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                          for k, v in last.items() if k not in ("kind", "time"))
        body.append(f"<p><b>Last logged:</b> {html.escape(stats)}</p>")
    if samples:
        latest = samples[-1]
        body.append(f"<h2>Latest samples ({html.escape(latest.stem)})</h2>"
                    f"<img src='samples/{html.escape(latest.name)}' style='image-rendering:pixelated;width:420px'>")
    charts = _charts(rows)
    if charts:
        body.append(f"<h2>Curves</h2><div>{charts}</div>")
    if evaluation:
        items = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                        for k, v in evaluation.items() if not isinstance(v, (dict, list)))
        body.append(f"<h2>Evaluation</h2><table>{items}</table>")
    if samples:
        strip = "".join(f"<figure><img src='samples/{html.escape(p.name)}' style='width:150px;image-rendering:pixelated'>"
                        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in samples)
        body.append(f"<h2>Progress (fixed noise)</h2><div class='strip'>{strip}</div>")
    body.append(f"<h2>Resolved config</h2><pre>{html.escape(cfg_text)}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:20px auto;padding:0 10px}"
            "pre{background:#f6f6f6;padding:8px;overflow:auto}.small{font-size:12px}"
            ".strip{display:flex;flex-wrap:wrap;gap:6px}figure{margin:0;text-align:center;font-size:11px}"
            "td{padding:2px 10px;border-bottom:1px solid #eee}</style></head><body>"
            + "\n".join(body) + "</body></html>")
    path = run_dir / "report.html"
    tmp = run_dir / ".report.html.tmp"
    tmp.write_text(page)
    tmp.replace(path)
    return path
