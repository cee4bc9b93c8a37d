"""docs/dispatch.svg: muxloop's time per ring run against the number of
registered socket pairs, one line per backend, log-log."""

from __future__ import annotations

import math
from pathlib import Path

COLORS = {"select": "#d62728", "poll": "#ff7f0e", "epoll": "#2ca02c"}


def dispatch_svg(points: list[tuple[str, int, float]], path: Path) -> None:
    """points: (backend, N, muxloop µs per run)."""
    points = [p for p in points if p[2] is not None and p[2] > 0]
    if not points:
        raise ValueError("no dispatch figures to draw")
    W, H, L, B, T, R = 640, 400, 70, 50, 40, 150
    ns = sorted({n for _, n, _ in points})
    vals = [v for _, _, v in points]
    lo, hi = math.log10(min(vals) / 1.5), math.log10(max(vals) * 1.5)
    span_n = (math.log10(ns[-1]) - math.log10(ns[0])) or 1.0

    def x(n: int) -> float:
        return L + (math.log10(n) - math.log10(ns[0])) / span_n * (W - L - R)

    def y(v: float) -> float:
        return H - B - (math.log10(v) - lo) / (hi - lo) * (H - B - T)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="22" text-anchor="middle" font-size="14">muxloop dispatch: time per ring run vs registered fds (log-log)</text>',
           f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>']
    for n in ns:
        out.append(f'<text x="{x(n):.1f}" y="{H-B+18}" text-anchor="middle">{n}</text>')
    for e in range(math.ceil(lo), math.floor(hi) + 1):
        v = 10 ** e
        out.append(f'<line x1="{L}" y1="{y(v):.1f}" x2="{W-R}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{L-6}" y="{y(v)+4:.1f}" text-anchor="end">{v:g} us</text>')
    out.append(f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">N socket pairs registered (1 active)</text>')
    for i, (name, color) in enumerate(COLORS.items()):
        pts = sorted((n, v) for b, n, v in points if b == name)
        if not pts:
            continue
        out.append('<polyline fill="none" stroke-width="2.5" stroke="%s" points="%s"/>'
                   % (color, " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in pts)))
        out += [f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/>' for n, v in pts]
        out.append(f'<rect x="{W-R+20}" y="{T+10+i*22}" width="14" height="4" fill="{color}"/>'
                   f'<text x="{W-R+40}" y="{T+16+i*22}">{name}</text>')
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
