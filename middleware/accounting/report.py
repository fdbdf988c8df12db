"""``ragpress usage``: time arguments, the table, and the HTML chart of savings."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from typing import Sequence

from middleware.accounting.charts import line_chart
from middleware.accounting.records import UsageRow
from middleware.errors import InvalidArgument

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str | None, now: float | None = None) -> float | None:
    """``7d``/``12h``/``30m`` ago, an ISO date or date-time (UTC unless it says), or epoch seconds."""
    if text is None or text == "":
        return None
    now = time.time() if now is None else now
    match = _AGO.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidArgument(f"cannot read time {text!r}: use 7d, 12h, 30m, 2026-11-01, "
                              f"2026-11-01T12:00 or epoch seconds") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


COLUMNS = (("requests", lambda r: f"{r.requests:,}"),
           ("original", lambda r: f"{r.original_tokens:,}"),
           ("compressed", lambda r: f"{r.compressed_tokens:,}"),
           ("saved tok", lambda r: f"{r.saved_tokens:,}"),
           ("before $", lambda r: f"{r.cost_before_usd:.4f}"),
           ("after $", lambda r: f"{r.cost_after_usd:.4f}"),
           ("saved $", lambda r: f"{r.saved_usd:.4f}"),
           ("net $", lambda r: f"{r.net_saved_usd:.4f}"),
           ("latency ms", lambda r: f"{r.latency_ms:.1f}"))


def table(rows: Sequence[UsageRow], keys: Sequence[str]) -> str:
    """A plain-text table: one line per row, group keys first, numbers right-aligned."""
    head = list(keys) + [name for name, _ in COLUMNS]
    body = [[r.group.get(k, "") for k in keys] + [fmt(r) for _, fmt in COLUMNS] for r in rows]
    if not body:
        return "no usage recorded in this time range"
    widths = [max(len(line[i]) for line in [head] + body) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < len(keys) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def chart_html(daily: Sequence[UsageRow], title: str = "ragpress: dollars saved per day") -> str:
    """A self-contained HTML page with an SVG chart of savings per day (rows grouped by day)."""
    times = [dt.datetime.strptime(r.group["day"], "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
             for r in daily]
    svg = line_chart("savings", title, times, {
        "saved (USD)": [r.saved_usd for r in daily], "net of compute (USD)": [r.net_saved_usd for r in daily]},
        label=lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d"))
    rows = "".join(f"<tr><td>{html.escape(r.group['day'])}</td><td>{r.requests}</td><td>{r.saved_tokens}</td>"
                   f"<td>{r.saved_usd:.4f}</td><td>{r.net_saved_usd:.4f}</td></tr>" for r in daily)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif'>{svg}<table border='1' cellpadding='4'>"
            f"<tr><th>day</th><th>requests</th><th>tokens saved</th><th>saved $</th><th>net $</th></tr>"
            f"{rows}</table></body></html>")
