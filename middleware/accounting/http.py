"""The service's HTTP port: ``/metrics`` (Prometheus), ``/dashboard`` (HTML),
``/api/usage`` (JSON rows from the ledger). Standard library only, on its own
threads, so a slow scrape never touches the gRPC event loop.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping
from urllib.parse import parse_qs, urlparse

from middleware.accounting import dashboard
from middleware.accounting.metrics import exposition
from middleware.accounting.recorder import Recorder
from middleware.accounting.records import UsageQuery
from middleware.errors import InvalidArgument

log = logging.getLogger("ragpress.http")

MAX_HOURS = 24 * 366
# A route gets the recorder, the query parameters and the request headers.
Route = Callable[[Recorder, dict[str, list[str]], Mapping[str, str]], tuple[int, str, bytes]]
ROUTES: dict[str, Route] = {}


def route(path: str) -> Callable[[Route], Route]:
    def wrap(fn: Route) -> Route:
        ROUTES[path] = fn
        return fn

    return wrap


@route("/metrics")
def _metrics(rec: Recorder, params: dict[str, list[str]], headers: Mapping[str, str]) -> tuple[int, str, bytes]:
    body, content_type = exposition(rec.metrics.registry, headers.get("Accept"))
    return 200, content_type, body


def _number(params: dict[str, list[str]], name: str, default: float) -> float:
    try:
        value = float(params.get(name, [default])[0])
    except ValueError as exc:
        raise InvalidArgument(f"query parameter {name} must be a number") from exc
    if not value >= 0:
        raise InvalidArgument(f"query parameter {name} must be >= 0")
    return value


@route("/dashboard")
def _dashboard(rec: Recorder, params: dict[str, list[str]], headers: Mapping[str, str]) -> tuple[int, str, bytes]:
    hours = _number(params, "hours", 24.0) or 24.0
    if hours > MAX_HOURS:
        raise InvalidArgument(f"query parameter hours must be <= {MAX_HOURS}")
    return 200, "text/html; charset=utf-8", dashboard.render(rec.query, hours).encode()


@route("/api/usage")
def _usage(rec: Recorder, params: dict[str, list[str]], headers: Mapping[str, str]) -> tuple[int, str, bytes]:
    group_by = tuple(g for value in params.get("group_by", []) for g in value.split(",") if g)
    query = UsageQuery(start=_number(params, "start", 0.0), end=_number(params, "end", float("inf")),
                       group_by=group_by, bucket_seconds=int(_number(params, "bucket", 0)))
    rows = [dict(asdict(r), saved_usd=r.saved_usd, net_saved_usd=r.net_saved_usd) for r in rec.query(query)]
    return 200, "application/json", json.dumps({"rows": rows}).encode()


class _Handler(BaseHTTPRequestHandler):
    recorder: Recorder
    # middleware.auth.KeyStore when API keys are on: every page then needs an admin key
    # (metrics and the dashboard show every tenant's figures).
    keys = None

    def _denied(self) -> bool:
        if self.keys is None:
            return False
        from middleware.auth import key_from
        from middleware.errors import RagpressError

        try:
            principal = self.keys.authenticate(key_from(self.headers.items()))
        except RagpressError as exc:
            self._send(401, "text/plain", f"{exc}\n".encode(), {"WWW-Authenticate": "Bearer"})
            return True
        if not principal.admin:
            self._send(403, "text/plain", f"key {principal.name!r} is not an admin key\n".encode())
            return True
        return False

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        if self._denied():
            return
        url = urlparse(self.path)
        if url.path == "/":
            self.send_response(302)
            self.send_header("Location", "/dashboard")
            self.end_headers()
            return
        fn = ROUTES.get(url.path)
        try:
            if fn is None:
                status, ctype, body = 404, "text/plain", f"not found; try {sorted(ROUTES)}\n".encode()
            else:
                status, ctype, body = fn(self.recorder, parse_qs(url.query), self.headers)
        except InvalidArgument as exc:
            status, ctype, body = 400, "text/plain", f"{exc}\n".encode()
        except Exception:  # noqa: BLE001 - one bad page must not stop the metrics endpoint
            log.exception("http %s failed", self.path)
            status, ctype, body = 500, "text/plain", b"internal error; see the server log\n"
        self._send(status, ctype, body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes every second would flood the log
        log.debug("%s " + format, self.address_string(), *args)


class HttpEndpoint:
    """A running HTTP server on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, recorder: Recorder, host: str, port: int, keys=None) -> None:
        handler = type("Handler", (_Handler,), {"recorder": recorder, "keys": keys})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="ragpress-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
