"""The embedded dashboard: one HTML page of SVG charts read from the ledger.

For users without Grafana. Rendered on the server (no CDN, works offline); a
few lines of script re-check after layout that every chart drew its marks
(``data-rendered`` on each chart) and refresh the page every 30 s.
"""

from __future__ import annotations

import html
import time
from typing import Callable

from middleware.accounting.charts import bar_chart, line_chart
from middleware.accounting.records import UsageQuery, UsageRow

# About this many points per time series.
POINTS = 60

_SCRIPT = """
// After layout: count the marks each chart really drew (non-empty boxes).
window.addEventListener('load', function () {
  var total = 0;
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var drawn = 0;
    svg.querySelectorAll('.mark').forEach(function (m) {
      var b = m.getBBox();
      if (b.width > 0 && b.height > 0) { drawn++; }
    });
    svg.setAttribute('data-rendered', String(drawn));
    total += drawn;
  });
  document.body.setAttribute('data-ready', String(total));
  setTimeout(function () { location.reload(); }, 30000);
});
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1a202c;background:#f7fafc}
h1{font-size:20px;margin:0 0 4px} .sub{color:#4a5568;margin-bottom:16px}
.tiles{display:flex;gap:12px;margin-bottom:16px;flex-wrap:wrap}
.tile{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px 14px;min-width:140px}
.tile b{display:block;font-size:20px} .grid{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{background:#fff;border:1px solid #e2e8f0;border-radius:6px}
"""


def bucket_for(hours: float) -> int:
    """A bucket width (seconds, a whole minute) that gives about POINTS points over ``hours``."""
    return max(60, int(hours * 3600 / POINTS) // 60 * 60)


def render(query: Callable[[UsageQuery], list[UsageRow]], hours: float = 24.0, now: float | None = None) -> str:
    """The page for the last ``hours``; ``query`` is the ledger's (blocking)."""
    now = time.time() if now is None else now
    start = now - hours * 3600
    bucket = bucket_for(hours)
    rows = query(UsageQuery(start=start, end=now + 1, bucket_seconds=bucket))
    by_method = query(UsageQuery(start=start, end=now + 1, group_by=("method",)))
    by_model = query(UsageQuery(start=start, end=now + 1, group_by=("model",)))
    total = query(UsageQuery(start=start, end=now + 1))
    # Every interval of the window is a point, so a new server draws lines, not single
    # dots: sums are 0 where nothing happened; a mean (latency) has a gap there instead.
    times = [float(t) for t in range(int(start // bucket * bucket), int(now) + 1, bucket)]
    by_time = {int(r.bucket or 0): r for r in rows}
    found = [by_time.get(int(t)) for t in times]

    def sums(value: Callable[[UsageRow], float]) -> list[float | None]:
        return [value(r) if r is not None else 0.0 for r in found]

    charts = [
        line_chart("savings", "Dollars saved per interval (USD)", times, {
            "saved": sums(lambda r: r.saved_usd), "net of compute": sums(lambda r: r.net_saved_usd)},
            dashed=("net of compute",)),
        bar_chart("tokens-by-method", "Prompt tokens by method", [r.group["method"] for r in by_method], {
            "before": [r.original_tokens for r in by_method], "after": [r.compressed_tokens for r in by_method]}),
        bar_chart("tokens-by-model", "Prompt tokens by model", [r.group["model"] for r in by_model], {
            "before": [r.original_tokens for r in by_model], "after": [r.compressed_tokens for r in by_model]}),
        line_chart("latency", "Mean compressor latency (ms)", times,
                   {"latency": [r.latency_ms if r is not None else None for r in found]}),
        line_chart("cache", "Prompt tokens and prefix-cache hits", times, {
            "prompt tokens": sums(lambda r: r.compressed_tokens), "cached": sums(lambda r: r.cached_tokens)},
            dashed=("cached",)),
    ]
    t = total[0] if total else None
    tiles = [("requests", f"{t.requests:,}" if t else "0"),
             ("tokens saved", f"{t.saved_tokens:,}" if t else "0"),
             ("dollars saved", f"${t.saved_usd:,.4f}" if t else "$0"),
             ("net of compute", f"${t.net_saved_usd:,.4f}" if t else "$0"),
             ("cache hit rate", f"{t.cached_tokens / t.compressed_tokens:.1%}" if t and t.compressed_tokens else "-")]
    tiles_html = "".join(f'<div class="tile">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in tiles)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>ragpress usage</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<h1>ragpress usage</h1><div class='sub'>last {hours:g} h, {bucket // 60} min intervals, "
            f"from the usage ledger</div><div class='tiles'>{tiles_html}</div>"
            f"<div class='grid'>{''.join(charts)}</div><script>{_SCRIPT}</script></body></html>")
