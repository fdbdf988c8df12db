"""Cost accounting: the usage ledger, prices, Prometheus metrics, the dashboard.

::

    Recorder                  one per service: record_compress / record_usage
    ├── Metrics               prometheus-client counters and histograms (own registry)
    ├── BatchWriter           prices and writes records off the event loop, in batches
    │   └── Ledger            contract; SQLite (default) / PostgreSQL / none, by URL scheme
    └── HttpEndpoint          /metrics, /dashboard, /api/usage on Settings.metrics_port

Nothing here imports litellm or psycopg at import time.
"""

from __future__ import annotations

from middleware.accounting.backends import open_ledger
from middleware.accounting.ledger import Ledger, register_backend
from middleware.accounting.prices import Cost, cost
from middleware.accounting.records import GROUP_KEYS, RPCS, UsageQuery, UsageRecord, UsageRow
from middleware.accounting.recorder import Recorder

__all__ = ["Cost", "GROUP_KEYS", "Ledger", "RPCS", "Recorder", "UsageQuery", "UsageRecord", "UsageRow", "cost",
           "open_ledger", "register_backend"]
