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


def chart_html(rows: Sequence[UsageRow], keys: Sequence[str] = (),
               title: str = "ragpress: dollars saved per day") -> str:
    """A self-contained HTML page with an SVG chart of savings per day.

    ``rows`` are grouped by day and by ``keys`` (the table's other group keys): without
    other keys the chart has two lines (saved, and net of compute); with them, one line
    of dollars saved per group (e.g. per tenant), a day without usage counting 0.
    """
    keys = tuple(k for k in keys if k != "day")
    days = sorted({r.group["day"] for r in rows})
    times = [dt.datetime.strptime(d, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp() for d in days]
    if keys:
        saved: dict[str, dict[str, float]] = {}
        for r in rows:
            name = " / ".join(r.group.get(k, "") for k in keys)
            saved.setdefault(name, {})[r.group["day"]] = r.saved_usd
        series = {name: [by_day.get(d, 0.0) for d in days] for name, by_day in sorted(saved.items())}
        title = f"{title}, by {', '.join(keys)}"
    else:
        by_day = {r.group["day"]: r for r in rows}
        series = {"saved (USD)": [by_day[d].saved_usd for d in days],
                  "net of compute (USD)": [by_day[d].net_saved_usd for d in days]}
    svg = line_chart("savings", title, times, series,
                     label=lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d"))
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("day", *keys))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(r.group.get(k, ''))}</td>" for k in ("day", *keys))
        + f"<td>{r.requests}</td><td>{r.saved_tokens}</td><td>{r.saved_usd:.4f}</td><td>{r.net_saved_usd:.4f}</td></tr>"
        for r in sorted(rows, key=lambda r: tuple(r.group.get(k, "") for k in ("day", *keys))))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif'>{svg}<table border='1' cellpadding='4'>"
            f"<tr>{head}<th>requests</th><th>tokens saved</th><th>saved $</th><th>net $</th></tr>"
            f"{body}</table></body></html>")
