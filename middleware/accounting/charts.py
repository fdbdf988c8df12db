"""Small self-contained SVG charts (no JavaScript library, no network).

Used by the embedded dashboard and by ``ragpress usage --chart``. Every data
mark carries ``class="mark"`` and the chart ``data-points`` (its number of
points), which the browser test checks after rendering.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Callable, Mapping, Sequence

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096")
W, H = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 46


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.2g}" if abs(value) >= 1e-3 else f"{value:.1e}"


def _frame(chart_id: str, title: str, points: int, body: list[str], legend: Sequence[str], top: float,
           dashed: Sequence[str] = ()) -> str:
    esc = html.escape
    out = [f'<svg id="{esc(chart_id)}" class="chart" data-points="{points}" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{esc(title)}">',
           f'<text x="{LEFT}" y="18" font-size="14" font-weight="600">{esc(title)}</text>']
    plot_h = H - TOP - BOTTOM
    for i in range(5):  # horizontal grid with y labels
        y = TOP + plot_h * i / 4
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                   f'{esc(_fmt(top * (4 - i) / 4))}</text>')
    out.extend(body)
    for i, name in enumerate(legend):
        x = LEFT + i * 150
        out.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{H - 5}" font-size="11">{esc(name)}{" (dashed)" if name in dashed else ""}'
                   f'</text>')
    if not points:
        out.append(f'<text x="{W / 2}" y="{H / 2}" font-size="13" text-anchor="middle" fill="#718096">no data</text>')
    out.append("</svg>")
    return "\n".join(out)


def _top(series: Mapping[str, Sequence[float]]) -> float:
    peak = max((v for values in series.values() for v in values), default=0.0)
    return peak * 1.1 if peak > 0 else 1.0


def line_chart(chart_id: str, title: str, times: Sequence[float], series: Mapping[str, Sequence[float | None]],
               label: Callable[[float], str] | None = None, dashed: Sequence[str] = ()) -> str:
    """One line per series over ``times`` (epoch seconds), a dot per point.

    A ``None`` value is a gap (no data in that interval): the line breaks there. Series
    named in ``dashed`` are drawn dashed, so a line that runs on top of another (net
    savings over savings when compute costs little) does not hide it.
    """
    label = label or (lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%m-%d %H:%M"))
    top = _top({k: [v for v in values if v is not None] for k, values in series.items()})
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    span = (hi - lo) or 1.0

    def xy(t: float, v: float) -> tuple[float, float]:
        x = LEFT + (plot_w * (t - lo) / span if len(times) > 1 else plot_w / 2)
        return x, TOP + plot_h * (1 - max(0.0, v) / top)

    body, points = [], 0
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        style = ' stroke-dasharray="6 4"' if name in dashed else ""
        runs: list[list[tuple[float, float, float]]] = [[]]
        for t, v in zip(times, values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((*xy(t, v), v))
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in run)
                body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{style}/>')
            body += [f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                     f'<title>{html.escape(name)}: {_fmt(v)}</title></circle>' for x, y, v in run]
            points += len(run)
    if times:
        ends = ((lo, "start"), (hi, "end")) if len(times) > 1 else ((lo, "middle"),)
        for t, anchor in ends:  # the end labels stay inside the frame
            x, _ = xy(t, 0)
            body.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" font-size="10" text-anchor="{anchor}">'
                        f'{html.escape(label(t))}</text>')
    return _frame(chart_id, title, points, body, list(series), top, dashed)


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Grouped bars: one group per category, one bar per series."""
    top = _top(series)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    body = []
    for c, category in enumerate(categories):
        x0 = LEFT + c * group_w + group_w * 0.1
        for s, (name, values) in enumerate(series.items()):
            v = max(0.0, values[c])
            h = plot_h * v / top
            body.append(f'<rect class="mark" x="{x0 + s * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
                        f'height="{max(h, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                        f'<title>{html.escape(category)} {html.escape(name)}: {_fmt(v)}</title></rect>')
        body.append(f'<text x="{x0 + group_w * 0.4:.1f}" y="{H - BOTTOM + 16}" font-size="10" text-anchor="middle">'
                    f'{html.escape(category[:24])}</text>')
    return _frame(chart_id, title, len(categories) * len(series), body, list(series), top)
