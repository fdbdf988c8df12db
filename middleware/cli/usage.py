"""``ragpress usage``: tokens and dollars saved, from the ledger or a server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from middleware.cli import common
from middleware.errors import InvalidArgument

def cmd_usage(args: argparse.Namespace) -> int:
    """Usage from the ledger (local, by settings) or from a server (GetUsage)."""
    from middleware.accounting import report

    start, end = report.parse_when(args.since), report.parse_when(args.until)
    keys = tuple(k for k in args.group_by.split(",") if k)
    fetch, close = _usage_fetch(args)
    try:
        return _usage_report(args, fetch, start, end, keys)
    finally:
        close()


def _usage_report(args: argparse.Namespace, fetch: Callable, start: float | None, end: float | None,
                  keys: tuple[str, ...]) -> int:
    from dataclasses import asdict

    from middleware.accounting import report
    from middleware.accounting.records import UsageQuery

    rows = fetch(UsageQuery(start=start or 0.0, end=end if end is not None else float("inf"), group_by=keys))
    if args.json:
        print(json.dumps([dict(asdict(r), saved_usd=r.saved_usd, net_saved_usd=r.net_saved_usd) for r in rows],
                         indent=2))
    else:
        print(report.table(rows, keys))
    if args.chart:
        # The chart runs over days, one line per group of the other keys.
        by_day = keys if "day" in keys else (*keys, "day")
        daily = rows if by_day == keys else fetch(UsageQuery(start=start or 0.0, end=end if end is not None
                                                             else float("inf"), group_by=by_day))
        try:
            Path(args.chart).write_text(report.chart_html(daily, keys), encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(f"cannot write {args.chart}: {exc.strerror}") from exc
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0


def _usage_fetch(args: argparse.Namespace) -> tuple[Callable, Callable[[], None]]:
    """(fetch rows for a UsageQuery, release the ledger or channel)."""
    if not args.server:
        from middleware.accounting import open_ledger

        from middleware.accounting.sqlite import sqlite_path

        settings = common.settings(args, ledger_url=args.ledger_url)
        if not settings.ledger_url or settings.ledger_url.startswith("sqlite:"):
            path = sqlite_path(settings.ledger_url, settings)
            if not path.exists():
                raise InvalidArgument(f"no usage ledger at {path}; has the service run with this data_dir? "
                                      f"(or give --ledger-url / --server)")
        ledger = open_ledger(settings)
        return ledger.query, ledger.close
    import grpc

    from middleware import convert
    from middleware.client import RagpressClient

    client = RagpressClient(args.server, timeout=args.timeout)

    def remote(query):
        msg = convert.usage_request_to_pb(query.start, query.end, query.group_by)
        try:
            return convert.usage_rows_from_pb(client.stub.GetUsage(msg, timeout=client.timeout))
        except grpc.RpcError as exc:
            raise common.remote_error(exc) from exc

    return remote, client.close


def add_commands(sub: "argparse._SubParsersAction") -> None:
    usage = sub.add_parser("usage", help="tokens and dollars saved, from the usage ledger")
    usage.add_argument("--since", default="30d", help="start: 7d, 12h, 30m, an ISO date/time, or epoch seconds")
    usage.add_argument("--until", default=None, help="end (default now), same forms as --since")
    usage.add_argument("--group-by", default="day", help="comma list of tenant, model, method, day ('' = total)")
    usage.add_argument("--json", action="store_true", help="print rows as JSON instead of a table")
    usage.add_argument("--chart", default=None, help="also write an HTML chart of dollars saved per day to this file, one line per group "
                            "of the other --group-by keys")
    usage.add_argument("--server", default=None, help="ask this gRPC address (GetUsage) instead of the local ledger")
    usage.add_argument("--ledger-url", default=None, help="local ledger (default: settings' ledger_url)")
    usage.add_argument("--config", default=None, help="TOML settings file (local ledger)")
    usage.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server")
    usage.set_defaults(func=cmd_usage)
