"""Report output: a plain-text table, Markdown, and a self-contained HTML page with SVG plots."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hiergen.evaluate.report import EvaluationReport, MetricRow

HEADERS = ("metric", "synthetic", "real", "ceiling", "floor", "gap closed")
#: Scatter plots keep the most prevalent points only, to keep the page small.
MAX_POINTS = 3000


def fmt(key: str, x: float) -> str:
    """Human format of one value: rates as percentages, counts as integers."""
    if not math.isfinite(x):
        return "-"
    if key.endswith("_rate"):
        return f"{100 * x:.2f}%"
    if key.startswith(("distinct_", "diversity_visits")):
        return f"{x:,.0f}"
    return f"{x:.3f}"


def _cells(row: MetricRow) -> list[str]:
    gap = row.gap_closed
    return [
        row.key, fmt(row.key, row.value), fmt(row.key, row.real), fmt(row.key, row.ceiling),
        fmt(row.key, row.floor), f"{100 * gap:.0f}%" if math.isfinite(gap) else "-",
    ]


def text_table(report: EvaluationReport) -> str:
    """Aligned plain-text table of every metric (what the CLI prints)."""
    body = [_cells(r) for r in report.rows]
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                       enumerate(zip(HEADERS, widths, strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for cells in body:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                               enumerate(zip(cells, widths, strict=True))))
    return "\n".join(lines)


def _legend(report: EvaluationReport) -> list[str]:
    info = report.info
    return [
        f"Real (reference): {info.get('real_visits')} visits of {info.get('real_patients')} "
        f"patients; synthetic: {info.get('synthetic_visits')} visits of "
        f"{info.get('synthetic_patients')} patients; training: "
        f"{info.get('train_visits') or 'not given'}.",
        f"Ceiling: {info.get('ceiling', 'not computed')}. Floor: "
        f"{info.get('floor', 'not computed')}.",
        "Real: the same quantity on the real data (held-out against training for privacy). "
        "Gap closed: (synthetic - floor) / (ceiling - floor), for R2 metrics.",
    ]


def to_markdown(report: EvaluationReport) -> str:
    """The report as a Markdown document."""
    out = ["# hiergen evaluation report", ""]
    out += [f"- {line}" for line in _legend(report)]
    out += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in report.rows:
        cells = _cells(row)
        cells[0] = f"`{cells[0]}`"
        out.append("| " + " | ".join(cells) + " |")
    out += ["", f"Computed in {report.info.get('seconds', '?')} s.", ""]
    return "\n".join(out)


# --- SVG plots ----------------------------------------------------------------------------
W, H, PAD = 360, 360, 48


def scatter_svg(real: npt.NDArray[np.float64], syn: npt.NDArray[np.float64], title: str) -> str:
    """Log-log scatter of real vs synthetic prevalence, with the diagonal; zeros on the axis."""
    if real.size > MAX_POINTS:
        keep = np.argsort(-np.maximum(real, syn))[:MAX_POINTS]
        real, syn = real[keep], syn[keep]
    positive = np.concatenate([real[real > 0], syn[syn > 0]])
    lo = math.log10(float(positive.min()) / 2) if positive.size else -5.0
    hi = math.log10(max(float(positive.max()), 10**lo * 10)) if positive.size else 0.0
    lo = math.floor(lo)
    hi = math.ceil(hi)

    def pos(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lv = np.log10(np.maximum(v, 10.0**lo))
        return (lv - lo) / (hi - lo)

    xs = PAD + pos(real) * (W - PAD - 10)
    ys = H - PAD - pos(syn) * (H - PAD - 10)
    parts = [_frame(title, "real prevalence", "synthetic prevalence")]
    parts.append(
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="10" stroke="#999" '
        'stroke-dasharray="4 3"/>'
    )
    for e in range(lo, hi + 1):
        t = (e - lo) / (hi - lo)
        x = PAD + t * (W - PAD - 10)
        y = H - PAD - t * (H - PAD - 10)
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 14}" font-size="9" '
                     f'text-anchor="middle">1e{e}</text>')
        parts.append(f'<text x="{PAD - 4}" y="{y + 3:.1f}" font-size="9" '
                     f'text-anchor="end">1e{e}</text>')
    parts.append('<g fill="#1f77b4" fill-opacity="0.35">')
    parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8"/>' for x, y in zip(xs, ys, strict=True)]
    parts.append("</g></svg>")
    return "".join(parts)


def bars_svg(real: npt.NDArray[np.float64], syn: npt.NDArray[np.float64], title: str) -> str:
    """Side-by-side histogram bars of two distributions over 0..k (tail grouped)."""
    cum = np.cumsum(real + syn) / max(float((real + syn).sum()), 1e-12)
    k = int(min(real.size, np.searchsorted(cum, 0.995) + 2))
    r = np.append(real[:k], real[k:].sum())
    s = np.append(syn[:k], syn[k:].sum())
    top = max(float(r.max()), float(s.max()), 1e-12)
    n = r.size
    bw = (W - PAD - 10) / n
    parts = [_frame(title, "length (last bar: longer)", "share")]
    for i in range(n):
        x = PAD + i * bw
        for j, (v, colour) in enumerate(((r[i], "#555"), (s[i], "#1f77b4"))):
            h = v / top * (H - PAD - 10)
            parts.append(
                f'<rect x="{x + j * bw / 2:.1f}" y="{H - PAD - h:.1f}" width="{bw / 2:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
        if n <= 20 or i % max(1, n // 10) == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD + 14}" font-size="9" '
                         f'text-anchor="middle">{i}</text>')
    parts.append(f'<text x="{W - 12}" y="24" font-size="10" text-anchor="end" fill="#555">'
                 'real</text><text x="{W - 12}" y="38" font-size="10" text-anchor="end" '
                 'fill="#1f77b4">synthetic</text>'.replace("{W - 12}", str(W - 12)))
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str, xlabel: str, ylabel: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 16}" '
        f'viewBox="0 -16 {W} {H + 16}" font-family="sans-serif">'
        f'<text x="{W / 2}" y="-4" font-size="12" text-anchor="middle">{html.escape(title)}</text>'
        f'<rect x="{PAD}" y="10" width="{W - PAD - 10}" height="{H - PAD - 10}" fill="none" '
        'stroke="#ccc"/>'
        f'<text x="{(W + PAD) / 2}" y="{H - 12}" font-size="10" text-anchor="middle">'
        f"{html.escape(xlabel)}</text>"
        f'<text x="12" y="{H / 2}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 12 {H / 2})">{html.escape(ylabel)}</text>'
    )


def to_html(report: EvaluationReport) -> str:
    """A self-contained HTML page: the table and inline SVG plots (no external resources)."""
    rows = "".join(
        "<tr>" + "".join(
            f"<td>{html.escape(c)}</td>" if i == 0 else f'<td class="n">{html.escape(c)}</td>'
            for i, c in enumerate(_cells(r))
        ) + "</tr>"
        for r in report.rows
    )
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    legend = "".join(f"<li>{html.escape(line)}</li>" for line in _legend(report))
    plots = []
    p = report.plots
    for level in ("code", "category"):
        if f"{level}_prevalence" in p:
            real, syn = p[f"{level}_prevalence"]
            plots.append(scatter_svg(real, syn, f"{level} prevalence"))
    for name in ("codes_per_visit", "visits_per_patient"):
        if name in p:
            real, syn = p[name]
            plots.append(bars_svg(real, syn, name.replace("_", " ")))
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>hiergen evaluation</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}"
        ".plots svg{margin:8px}</style></head><body>"
        f"<h1>hiergen evaluation report</h1><ul>{legend}</ul>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f'<div class="plots">{"".join(plots)}</div>'
        f"<p>Computed in {report.info.get('seconds', '?')} s.</p></body></html>\n"
    )


def write_report(report: EvaluationReport, directory: Path) -> list[Path]:
    """Write ``report.md``, ``report.html`` and ``report.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "report.md", directory / "report.html", directory / "report.json"]
    paths[0].write_text(to_markdown(report), encoding="utf-8")
    paths[1].write_text(to_html(report), encoding="utf-8")
    paths[2].write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return paths
