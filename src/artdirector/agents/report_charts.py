"""The batch report's charts as inline SVG: the class histogram of the samples and the selection FID (± SE)
of the kept samples against cumulative seconds."""

from __future__ import annotations

import html
from typing import Any


def histogram_svg(counts: dict[str, list[int] | None], title: str) -> str:
    series = {k: v for k, v in counts.items() if v}
    if not series:
        return ""
    w, h, pad = 420, 180, 24
    top = max(max(v) for v in series.values()) or 1
    colours = ["#4c72b0", "#dd8452"]
    bar = (w - 2 * pad) / 10 / (len(series) + 0.5)
    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" width="{w}" height="{h + 20}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>'
    ]
    for j, (name, values) in enumerate(series.items()):
        for c, v in enumerate(values):
            x = pad + c * (w - 2 * pad) / 10 + j * bar
            bh = (h - 2 * pad) * v / top
            parts.append(
                f'<rect x="{x:.1f}" y="{h - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                f'fill="{colours[j % 2]}"><title>{html.escape(name)}: class {c}, {v}</title></rect>'
            )
        parts.append(f'<rect x="{pad}" y="{4 + 14 * j}" width="10" height="10" fill="{colours[j % 2]}"/>')
        parts.append(f'<text x="{pad + 14}" y="{13 + 14 * j}" font-size="11">{html.escape(name)}</text>')
    for c in range(10):
        parts.append(
            f'<text x="{pad + (c + 0.3) * (w - 2 * pad) / 10:.1f}" y="{h + 14}" font-size="11">{c}</text>'
        )
    return "".join(parts) + "</svg>"


def curve_svg(steps: list[dict[str, Any]], title: str) -> str:
    """Selection FID (± SE) of the kept samples against cumulative seconds."""
    pts, best = [], None
    for s in steps:
        if s["accepted"] or best is None:
            best = s["metrics_after"]
        pts.append((s["elapsed"], best["fid"], best.get("fid_se", 0.0)))
    w, h, pad = 420, 200, 40
    t_max = max(p[0] for p in pts) or 1.0
    lo = min(p[1] - 2 * p[2] for p in pts)
    hi = max(p[1] + 2 * p[2] for p in pts)
    span = (hi - lo) or 1.0

    def xy(t: float, f: float) -> tuple[float, float]:
        return pad + (w - 2 * pad) * t / t_max, h - pad - (h - 2 * pad) * (f - lo) / span

    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>',
    ]
    line = " ".join("{:.1f},{:.1f}".format(*xy(t, f)) for t, f, _ in pts)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#4c72b0" stroke-width="2"/>')
    for t, f, se in pts:
        x, y = xy(t, f)
        (_, y0), (_, y1) = xy(t, f - se), xy(t, f + se)
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" stroke="#4c72b0"/>')
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4c72b0"><title>{t:.0f} s: FID {f:.2f} ± {se:.2f}</title></circle>'
        )
    parts.append(
        f'<text x="{pad}" y="{h - 8}" font-size="11">0 s</text>'
        f'<text x="{w - pad - 30}" y="{h - 8}" font-size="11">{t_max:.0f} s</text>'
        f'<text x="2" y="{pad - 6}" font-size="11">{hi:.1f}</text>'
        f'<text x="2" y="{h - pad}" font-size="11">{lo:.1f}</text>'
    )
    return "".join(parts) + "</svg>"
