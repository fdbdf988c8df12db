"""End-to-end accounting against real external programs, all on loopback (slow).

- PostgreSQL (Debian's ``postgresql``): initdb + pg_ctl in a temp folder, as the
  ``postgres`` user when the tests run as root; the ledger contract and two
  "replicas" writing one ledger.
- Prometheus (Debian's ``prometheus``): scrapes the running service; a saving is
  queried back, and every Grafana expression is evaluated by the real engine.
- ``ragpress serve`` as a subprocess under load, SIGTERM, then every answered
  call is in the ledger.
- Chromium (Debian's ``chromium``) headless loads the embedded dashboard; the
  charts must have drawn their marks; the screenshot goes to the test's temporary folder, or
  to ``$RAGPRESS_TEST_ARTIFACTS/accounting-dashboard.png`` (relative to the repository) when set.

Each test is skipped (with the reason) only when its program is not installed;
``deploy/ci-system-packages.sh`` installs them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT
from middleware.accounting import Recorder, UsageQuery, UsageRecord, cost, open_ledger
from middleware.server import start
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc
from test_accounting import check_ledger_contract
from test_grafana import DASHBOARD, _expressions

pytestmark = pytest.mark.slow

# Where the dashboard's screenshot is kept: a temporary folder, unless RAGPRESS_TEST_ARTIFACTS names one
# (e.g. "artifacts", git-ignored) to look at it after the run.
ARTIFACTS_ENV = "RAGPRESS_TEST_ARTIFACTS"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _request(i: int = 0, model: str = "gpt-4o") -> pb.CompressRequest:
    req = pb.CompressRequest(query="Who founded the city?", model=model, documents=[
        pb.Document(id=str(d), text=f"Document {d} of request {i}. The city was founded by settlers in "
                                    f"year {1000 + d}. Bread is baked daily. Cars drive on the roads.")
        for d in range(3)])
    req.budget.keep_ratio = 0.4
    return req


# --- PostgreSQL ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; see deploy/ci-system-packages.sh)")
    # PostgreSQL refuses to run as root: run it as the postgres (or nobody) user then.
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="ragpress-pg-"))
    if os.geteuid() == 0:
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None or not shutil.which("runuser"):
            pytest.skip("running as root with neither a postgres nor a nobody user and runuser")
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    data, port = folder / "data", _free_port()
    subprocess.run(prefix + [initdb, "-D", str(data), "-A", "trust", "-U", "ragpress", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(prefix + [pg_ctl, "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "-t", "60",
                             "start"], check=True, capture_output=True, timeout=90)
    try:
        yield f"postgresql://ragpress@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _drop(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ragpress_usage")


def test_postgresql_ledger_meets_the_contract(postgres_url):
    _drop(postgres_url)
    check_ledger_contract(lambda: open_ledger(Settings(), postgres_url))


def test_two_replicas_share_one_postgresql_ledger(postgres_url):
    _drop(postgres_url)
    settings = Settings(ledger_url=postgres_url, ledger_flush_seconds=0.05)
    replicas = [Recorder(settings), Recorder(settings)]
    for n in range(200):
        replicas[n % 2].record_usage("Compress", model="gpt-4o", method="extractive", original_tokens=100,
                                     compressed_tokens=30, tenant=f"t{n % 3}", request_id=f"r{n}")
    for r in replicas:
        r.close()
    ledger = open_ledger(settings)
    rows = {r.group["tenant"]: r for r in ledger.query(UsageQuery(group_by=("tenant",)))}
    assert {t: r.requests for t, r in rows.items()} == {"t0": 67, "t1": 67, "t2": 66}
    assert sum(r.saved_tokens for r in rows.values()) == 200 * 70
    assert sum(r.saved_usd for r in rows.values()) == pytest.approx(200 * cost("gpt-4o", 100, 30).saved_usd)
    ledger.close()


async def test_a_server_on_postgresql_answers_get_usage(postgres_url, fast_engine):
    _drop(postgres_url)
    settings = Settings(port=0, embedding_model="hashing", ledger_url=postgres_url, ledger_flush_seconds=0.05)
    running = await start(settings, fast_engine)
    try:
        await running.ready
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = pb_grpc.RagpressServiceStub(ch)
            reply = await stub.Compress(_request(), metadata=(("x-ragpress-tenant", "pg"),))
            await asyncio.to_thread(running.recorder.flush, 60)
            usage = await stub.GetUsage(pb.GetUsageRequest(group_by=[pb.USAGE_GROUP_BY_TENANT]))
    finally:
        await running.stop(grace=1)
    (row,) = usage.rows
    assert row.group["tenant"] == "pg" and row.original_tokens == reply.original_tokens
    assert row.compressed_tokens == reply.compressed_tokens and row.saved_usd > 0


# --- Prometheus ----------------------------------------------------------------------------------

def _prom_query(port: int, expr: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return json.loads(exc.read())


async def test_prometheus_scrapes_the_service_and_every_dashboard_expression_evaluates(fast_engine, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Prometheus is not installed (Debian package prometheus; see deploy/ci-system-packages.sh)")
    running = await _metrics_server(fast_engine, tmp_path)
    prom_port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ragpress
    static_configs:
      - targets: ["127.0.0.1:{running.metrics_port}"]
""")
    log = (tmp_path / "prometheus.log").open("w")
    prom = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        await running.ready
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = pb_grpc.RagpressServiceStub(ch)
            replies = [await stub.Compress(_request(i), metadata=(("x-ragpress-tenant", "promtest"),))
                       for i in range(5)]
        await asyncio.to_thread(running.recorder.flush, 60)
        saved_tokens = sum(r.original_tokens - r.compressed_tokens for r in replies)
        saved_usd = sum(cost("gpt-4o", r.original_tokens, r.compressed_tokens).saved_usd for r in replies)
        query = 'sum(ragpress_saved_tokens_total{tenant="promtest"})'
        value = None
        deadline = time.monotonic() + 120  # generous: CI machines are shared
        while time.monotonic() < deadline and value != saved_tokens:
            await asyncio.sleep(1)
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                result = await asyncio.to_thread(_prom_query, prom_port, query)
            except OSError:
                continue  # not listening yet
            if result.get("data", {}).get("result"):
                value = float(result["data"]["result"][0]["value"][1])
        assert value == saved_tokens
        dollars = await asyncio.to_thread(_prom_query, prom_port, "sum(ragpress_saved_dollars_total)")
        assert float(dollars["data"]["result"][0]["value"][1]) == pytest.approx(saved_usd)
        # The real PromQL engine accepts every expression of the Grafana dashboard, and each
        # panel has data on this healthy server that has served requests (no "No data":
        # error series exist at zero, the cache ratio falls back to 0, rates need two scrapes).
        exprs = _expressions(json.loads(DASHBOARD.read_text(encoding="utf-8")))
        subst = {"$__rate_interval": "1m", "$__range": "5m", "$tenant": ".*"}
        empty = exprs
        deadline = time.monotonic() + 60
        while empty and time.monotonic() < deadline:
            await asyncio.sleep(1)
            empty = []
            for expr in exprs:
                for var, value_ in subst.items():
                    expr = expr.replace(var, value_)
                result = await asyncio.to_thread(_prom_query, prom_port, expr)
                assert result["status"] == "success", (expr, result)
                if not result["data"]["result"]:
                    empty.append(expr)
        assert not empty, f"panels without data: {empty}"
        # The dashboard's range panel sees new savings (increase() needs two scrapes of a series).
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = pb_grpc.RagpressServiceStub(ch)
            for i in range(3):
                await stub.Compress(_request(10 + i), metadata=(("x-ragpress-tenant", "promtest"),))
        await asyncio.to_thread(running.recorder.flush, 60)
        increase = 0.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and increase <= 0:
            await asyncio.sleep(1)
            result = await asyncio.to_thread(
                _prom_query, prom_port, 'sum(increase(ragpress_saved_dollars_total{tenant=~".*"}[5m]))')
            if result["data"]["result"]:
                increase = float(result["data"]["result"][0]["value"][1])
        assert increase > 0
    finally:
        prom.terminate()
        prom.wait(30)
        log.close()
        await running.stop(grace=1)


# --- SIGTERM under load ---------------------------------------------------------------------------

async def test_ledger_keeps_every_answered_call_across_sigterm_under_load(tmp_path, subprocess_env):
    port = _free_port()
    env = dict(subprocess_env, RAGPRESS_EMBEDDING_MODEL="hashing", RAGPRESS_DATA_DIR=str(tmp_path),
               # Nothing is written before shutdown: every record must come from the SIGTERM flush.
               RAGPRESS_LEDGER_FLUSH_SECONDS="600", RAGPRESS_LEDGER_BATCH_SIZE="100000", RAGPRESS_WORKERS="2")
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    answered: list[str] = []
    sent = 0
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.3)
            stub = pb_grpc.RagpressServiceStub(ch)
            stop_at = time.monotonic() + 90

            async def worker(w: int) -> None:
                nonlocal sent
                for n in range(400):  # bounded: at most 8 x 400 calls
                    if time.monotonic() > stop_at:
                        return
                    rid = f"w{w}-{n}"
                    sent += 1
                    try:
                        await stub.Compress(_request(n), metadata=(("x-request-id", rid),), timeout=30)
                    except grpc.aio.AioRpcError:
                        return  # the server went away: this call may or may not be recorded
                    answered.append(rid)

            async def terminator() -> None:
                # SIGTERM mid-load: after 150 answers, or after 45 s on a very slow machine.
                give_up = time.monotonic() + 45
                while len(answered) < 150 and time.monotonic() < give_up:
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGTERM)

            await asyncio.gather(terminator(), *(worker(w) for w in range(8)))
        code = await asyncio.to_thread(proc.wait, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert len(answered) >= 10 and sent > len(answered) - 1
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        ids = [row[0] for row in conn.execute("SELECT request_id FROM ragpress_usage")]
    assert set(answered) <= set(ids), f"{len(set(answered) - set(ids))} answered calls missing from the ledger"
    assert len(ids) == len(set(ids)) and len(ids) <= sent


# --- headless Chromium ---------------------------------------------------------------------------

async def _metrics_server(engine, tmp_path):
    """A started server with its metrics/dashboard port and a SQLite ledger under ``tmp_path``."""
    settings = Settings(port=0, metrics_port=0, embedding_model="hashing", data_dir=str(tmp_path),
                        ledger_flush_seconds=0.05)
    return await start(settings, engine)


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


async def test_dashboard_renders_charts_in_headless_chromium(fast_engine, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package chromium; see deploy/ci-system-packages.sh)")
    running = await _metrics_server(fast_engine, tmp_path)
    try:
        await running.ready
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = pb_grpc.RagpressServiceStub(ch)
            for i in range(6):
                req = _request(i, model="gpt-4o" if i % 2 else "gpt-4o-mini")
                if i % 3 == 0:
                    req.pipeline.add(method="extractive")
                    req.pipeline.add(method="extractive")
                await stub.Compress(req, metadata=(("x-ragpress-tenant", f"t{i % 2}"),))
        await asyncio.to_thread(running.recorder.flush, 60)
        # Traffic in a second interval too (the dashboard's intervals are a minute for one hour):
        # records of the same calls, a minute earlier, written to the same ledger.
        earlier = [dataclasses.replace(r, ts=r.ts - 60, request_id=r.request_id + "-earlier")
                   for r in await asyncio.to_thread(_ledger_records, running.recorder.ledger)]
        await asyncio.to_thread(running.recorder.ledger.write, earlier)
        url = f"http://127.0.0.1:{running.metrics_port}/dashboard?hours=1"
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
        dom = await asyncio.to_thread(subprocess.run, flags + ["--dump-dom", url], capture_output=True, text=True,
                                      timeout=120)
        kept = os.environ.get(ARTIFACTS_ENV)
        folder = (ROOT / kept) if kept else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        shot = folder / "accounting-dashboard.png"
        shot.unlink(missing_ok=True)
        await asyncio.to_thread(subprocess.run, flags + ["--window-size=1280,1500", f"--screenshot={shot}", url],
                                capture_output=True, text=True, timeout=120)
    finally:
        await running.stop(grace=1)
    html = dom.stdout
    assert dom.returncode == 0 and "<svg" in html, dom.stderr[-2000:]
    rendered = dict(re.findall(r'<svg id="([\w-]+)" class="chart" data-points="\d+"[^>]*data-rendered="(\d+)"', html))
    # data-rendered is written by the page's script after layout: the marks the browser really drew.
    assert set(rendered) == {"savings", "tokens-by-method", "tokens-by-model", "latency", "cache"}, html[:3000]
    assert all(int(n) > 0 for n in rendered.values()), rendered
    assert int(re.search(r'<body data-ready="(\d+)"', html).group(1)) == sum(map(int, rendered.values()))
    # Two methods (one stage, a two-stage pipeline) and two models: two groups of two bars each.
    assert rendered["tokens-by-method"] == "4" and rendered["tokens-by-model"] == "4"
    # Time charts draw a line, not a dot: every interval of the hour is a point of the sums
    # (two series each), and the mean latency has a point in each of the two busy intervals.
    assert int(rendered["savings"]) > 2 and int(rendered["cache"]) > 2
    assert rendered["latency"] == "2"
    assert 'stroke-dasharray' in html  # "net of compute" no longer hides "saved"
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def _ledger_records(ledger) -> list[UsageRecord]:
    """Every record of a SQLite ledger, as written (for tests that copy traffic in time)."""
    from middleware.accounting.ledger import COLUMNS, TABLE

    with sqlite3.connect(ledger.path) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE}").fetchall()
    return [UsageRecord(**dict(zip(COLUMNS, row))) for row in rows]


async def test_metrics_pass_promtool_and_speak_openmetrics_on_request(fast_engine, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; see deploy/ci-system-packages.sh)")
    running = await _metrics_server(fast_engine, tmp_path)
    try:
        await running.ready
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = pb_grpc.RagpressServiceStub(ch)
            await stub.Compress(_request(1), metadata=(("x-ragpress-tenant", "lint"),))
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Compress(pb.CompressRequest(query="q", model="gpt-4o", method="no-such-method"))
        await asyncio.to_thread(running.recorder.flush, 60)
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"

        def get(accept: str | None) -> tuple[str, str]:
            req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.headers["Content-Type"], resp.read().decode()

        ctype, text = await asyncio.to_thread(get, None)
        octype, otext = await asyncio.to_thread(get, "application/openmetrics-text; version=1.0.0")
    finally:
        await running.stop(grace=1)
    assert ctype.startswith("text/plain") and octype.startswith("application/openmetrics-text")
    assert otext.rstrip().endswith("# EOF") and "# EOF" not in text
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # Healthy-server series exist before any error of their kind; process and build metrics are there.
    assert 'ragpress_rpc_errors_total{code="INTERNAL",rpc="Generate"} 0.0' in text
    assert 'ragpress_rpc_errors_total{code="INVALID_ARGUMENT",rpc="Compress"} 1.0' in text
    assert "process_resident_memory_bytes" in text and 'ragpress_build_info{' in text
    assert 'ragpress_saved_tokens_total{' in text and "ragpress_" + "tokens_saved" not in text  # the old name
