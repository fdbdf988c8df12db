"""The usage ledger contract, a registry of backends keyed by URL scheme, and the
SQL both SQL backends share.

``Settings.ledger_url`` picks the backend: empty means SQLite in
``Settings.data_dir`` (the embedded default), ``sqlite:///abs/path.db`` a given
SQLite file, ``postgresql://user@host:port/db`` PostgreSQL (several replicas can
share it), ``none`` no ledger at all.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from middleware.accounting.records import DAY_SECONDS, UsageQuery, UsageRecord, UsageRow
from middleware.settings import Settings

# Insertion order of the columns; the records' field names.
COLUMNS = ("ts", "tenant", "rpc", "model", "method", "request_id", "original_tokens", "compressed_tokens",
           "completion_tokens", "cached_tokens", "cost_before_usd", "cost_after_usd", "compute_usd", "latency_ms")
TABLE = "ragpress_usage"
# A finite stand-in for "no end": both SQL engines compare it without surprises.
_FAR_FUTURE = 1e15


class Ledger(ABC):
    """Durable store of usage records. Implementations are safe to call from several threads."""

    @abstractmethod
    def write(self, records: Sequence[UsageRecord]) -> None:
        """Store ``records`` atomically: all of them or none (then raise)."""

    @abstractmethod
    def query(self, query: UsageQuery) -> list[UsageRow]:
        """Aggregate the records in ``query``'s time range by its keys, ordered by them."""

    def close(self) -> None:
        """Release connections."""


class NullLedger(Ledger):
    """``ledger_url = "none"``: metrics only, nothing stored."""

    def write(self, records: Sequence[UsageRecord]) -> None:
        return None

    def query(self, query: UsageQuery) -> list[UsageRow]:
        return []


BACKENDS: dict[str, Callable[[str, Settings], Ledger]] = {}


def register_backend(*schemes: str) -> Callable:
    """Decorator: ``factory(url, settings) -> Ledger`` serves URLs with these schemes."""

    def wrap(factory: Callable[[str, Settings], Ledger]) -> Callable[[str, Settings], Ledger]:
        for scheme in schemes:
            BACKENDS[scheme] = factory
        return factory

    return wrap


register_backend("none")(lambda url, settings: NullLedger())


class SqlLedger(Ledger):
    """The SQL shared by SQLite and PostgreSQL; subclasses give the dialect.

    One connection guarded by a lock: writes are batched by the writer thread,
    and queries (GetUsage, the dashboard) are rare, so there is no contention
    worth a pool.
    """

    placeholder = "?"
    id_column = "id INTEGER PRIMARY KEY"

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        with self._lock:
            self._execute_script(self._schema())

    # --- dialect -------------------------------------------------------------------------------
    @abstractmethod
    def bucket_expr(self, seconds: int) -> str:
        """SQL for the start of the ``seconds``-wide time bucket holding ``ts``."""

    def _execute_script(self, statements: Sequence[str]) -> None:
        cur = self._conn.cursor()
        for statement in statements:
            cur.execute(statement)
        self._conn.commit()

    # --- contract ------------------------------------------------------------------------------
    def _schema(self) -> list[str]:
        return [
            f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                {self.id_column},
                ts DOUBLE PRECISION NOT NULL, tenant TEXT NOT NULL, rpc TEXT NOT NULL, model TEXT NOT NULL,
                method TEXT NOT NULL, request_id TEXT NOT NULL,
                original_tokens BIGINT NOT NULL, compressed_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,
                cost_before_usd DOUBLE PRECISION NOT NULL, cost_after_usd DOUBLE PRECISION NOT NULL,
                compute_usd DOUBLE PRECISION NOT NULL, latency_ms DOUBLE PRECISION NOT NULL)""",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)",
        ]

    def write(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        marks = ", ".join([self.placeholder] * len(COLUMNS))
        sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})"
        rows = [tuple(getattr(r, c) for c in COLUMNS) for r in records]
        with self._lock:
            try:
                self._conn.cursor().executemany(sql, rows)
                self._conn.commit()
            except Exception:
                self._conn.rollback()
                raise

    def query(self, query: UsageQuery) -> list[UsageRow]:
        keys: list[tuple[str, str]] = []  # (output key, SQL expression)
        for key in query.group_by:
            keys.append((key, self.bucket_expr(DAY_SECONDS) if key == "day" else key))
        if query.bucket_seconds:
            keys.append(("bucket", self.bucket_expr(query.bucket_seconds)))
        exprs = [e for _, e in keys]
        select = exprs + [
            "COUNT(*)", "SUM(original_tokens)", "SUM(compressed_tokens)", "SUM(completion_tokens)",
            "SUM(cached_tokens)", "SUM(cost_before_usd)", "SUM(cost_after_usd)", "SUM(compute_usd)",
            "AVG(latency_ms)"]
        p = self.placeholder
        sql = f"SELECT {', '.join(select)} FROM {TABLE} WHERE ts >= {p} AND ts < {p}"
        end = query.end if math.isfinite(query.end) else _FAR_FUTURE
        params: tuple[Any, ...] = (float(query.start), float(end))
        if query.tenant is not None:
            sql += f" AND tenant = {p}"
            params += (query.tenant,)
        if exprs:
            positions = ", ".join(str(i + 1) for i in range(len(exprs)))
            sql += f" GROUP BY {positions} ORDER BY {positions}"
        with self._lock:
            cur = self._conn.cursor()
            cur.execute(sql, params)
            fetched = cur.fetchall()
            self._conn.commit()  # ends the read transaction (PostgreSQL would hold it open)
        return [_row(keys, values) for values in fetched if values[len(keys)]]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _row(keys: list[tuple[str, str]], values: Sequence[Any]) -> UsageRow:
    group: dict[str, str] = {}
    bucket = None
    for (key, _), value in zip(keys, values):
        if key == "day":
            group["day"] = dt.datetime.fromtimestamp(float(value), dt.timezone.utc).strftime("%Y-%m-%d")
        elif key == "bucket":
            bucket = float(value)
        else:
            group[key] = str(value)
    n = len(keys)
    count, orig, comp, completion, cached, before, after, compute, latency = values[n:n + 9]
    return UsageRow(group=group, requests=int(count), original_tokens=int(orig), compressed_tokens=int(comp),
                    completion_tokens=int(completion), cached_tokens=int(cached), cost_before_usd=float(before),
                    cost_after_usd=float(after), compute_usd=float(compute), latency_ms=float(latency or 0.0),
                    bucket=bucket)
