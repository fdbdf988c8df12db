"""Usage ledger, prices, metrics, GetUsage, the HTTP endpoint and ``ragpress usage`` (fast: SQLite, loopback)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import grpc
import pytest

from compressors.base import Compressor
from compressors.registry import register, unregister
from middleware.accounting import Recorder, UsageQuery, UsageRecord, cost, open_ledger
from middleware.accounting.ledger import Ledger, NullLedger
from middleware.accounting.metrics import OTHER, Metrics
from middleware.accounting.writer import BatchWriter
from middleware.cli import main
from middleware.errors import InvalidArgument
from middleware.server import start
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21 (UTC), a fixed instant so day groups are deterministic


def _rec(tenant="acme", model="gpt-4o", method="extractive", original=100, compressed=40, ts=T0, **kw) -> UsageRecord:
    c = cost(model, original, compressed)
    return UsageRecord(tenant=tenant, rpc=kw.pop("rpc", "Compress"), model=model, method=method,
                       original_tokens=original, compressed_tokens=compressed, cost_before_usd=c.before_usd,
                       cost_after_usd=c.after_usd, ts=ts, **kw)


def test_prices_come_from_litellms_map_including_cached_reads():
    import litellm

    entry = litellm.model_cost["gpt-4o"]
    c = cost("gpt-4o", 1000, 400)
    assert c.priced and c.before_usd == pytest.approx(1000 * entry["input_cost_per_token"])
    assert c.saved_usd == pytest.approx(600 * entry["input_cost_per_token"])
    cached = cost("gpt-4o", 1000, 400, completion_tokens=10, cached_tokens=300)
    expected_after = (100 * entry["input_cost_per_token"] + 300 * entry["cache_read_input_token_cost"]
                      + 10 * entry["output_cost_per_token"])
    assert cached.after_usd == pytest.approx(expected_after)
    assert entry["cache_read_input_token_cost"] < entry["input_cost_per_token"]
    assert cost("no-such-model-xyz", 10, 5) == type(c)(0.0, 0.0, priced=False)


def check_ledger_contract(open_fn) -> None:
    """The contract every ledger backend meets; ``open_fn()`` opens the same (empty) store anew."""
    ledger = open_fn()
    ledger.write([_rec(), _rec(tenant="beta", original=200, compressed=50, latency_ms=4.0),
                  _rec(method="lexical", ts=T0 + DAY, latency_ms=2.0), _rec(model="gpt-4o-mini", ts=T0 + 2 * DAY),
                  _rec(rpc="Generate", completion_tokens=7, cached_tokens=20, ts=T0 + 3)])
    ledger.close()
    ledger = open_fn()  # a new process would see the same rows
    (total,) = ledger.query(UsageQuery())
    assert total.requests == 5 and total.original_tokens == 600 and total.compressed_tokens == 210
    assert total.completion_tokens == 7 and total.cached_tokens == 20 and total.group == {}
    assert total.latency_ms == pytest.approx(6.0 / 5)
    by_tenant = {r.group["tenant"]: r for r in ledger.query(UsageQuery(group_by=("tenant",)))}
    assert by_tenant["beta"].saved_tokens == 150 and by_tenant["acme"].requests == 4
    assert by_tenant["beta"].saved_usd == pytest.approx(cost("gpt-4o", 200, 50).saved_usd)
    days = ledger.query(UsageQuery(group_by=("day", "method")))
    assert [(r.group["day"], r.group["method"], r.requests) for r in days] == [
        ("2026-09-21", "extractive", 3), ("2026-09-22", "lexical", 1), ("2026-09-23", "extractive", 1)]
    assert [r.group["model"] for r in ledger.query(UsageQuery(group_by=("model",)))] == ["gpt-4o", "gpt-4o-mini"]
    assert [r.group["rpc"] for r in ledger.query(UsageQuery(group_by=("rpc",)))] == ["Compress", "Generate"]
    # The time range is [start, end).
    (window,) = ledger.query(UsageQuery(start=T0 + 1, end=T0 + DAY))
    assert window.requests == 1 and window.completion_tokens == 7
    assert ledger.query(UsageQuery(start=T0 + 10 * DAY)) == []
    buckets = ledger.query(UsageQuery(bucket_seconds=3600))
    assert [b.bucket for b in buckets] == [T0 // 3600 * 3600, (T0 + DAY) // 3600 * 3600,
                                           (T0 + 2 * DAY) // 3600 * 3600]
    ledger.close()


def test_sqlite_ledger_meets_the_contract_and_uses_wal(tmp_path):
    settings = Settings(data_dir=str(tmp_path))
    check_ledger_contract(lambda: open_ledger(settings))
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"group_by": ("colour",)}, "cannot group usage by ['colour']"),
    ({"group_by": ("day", "day")}, "lists a key twice"),
    ({"start": 10.0, "end": 5.0}, "is before start"),
])
def test_bad_usage_queries_are_invalid_argument(kwargs, fragment):
    with pytest.raises(InvalidArgument, match=None) as info:
        UsageQuery(**kwargs)
    assert fragment in str(info.value)


def test_unknown_ledger_scheme_lists_the_known_ones(tmp_path):
    with pytest.raises(InvalidArgument) as info:
        open_ledger(Settings(data_dir=str(tmp_path)), "mongodb://x")
    assert "'postgresql'" in str(info.value) and "'sqlite'" in str(info.value)
    assert isinstance(open_ledger(Settings(), "none"), NullLedger)
    other = open_ledger(Settings(), f"sqlite://{tmp_path}/other.db")
    assert other.path == tmp_path / "other.db"
    other.close()


class _Flaky(Ledger):
    """A ledger whose first ``failures`` writes fail, as a database restart would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: list[UsageRecord] = []
        self.lock = threading.Lock()

    def write(self, records):
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("database restarting")
            self.rows.extend(records)

    def query(self, query):
        return []


def test_writer_batches_retries_and_writes_everything_on_close(caplog):
    ledger = _Flaky(failures=2)
    writer = BatchWriter(ledger, flush_seconds=30.0, batch_size=64)  # only size or close triggers a write
    for i in range(1000):
        writer.submit(lambda i=i: _rec(request_id=f"r{i}", original=i + 1, compressed=0))
    writer.close()
    assert sorted(r.request_id for r in ledger.rows) == sorted(f"r{i}" for i in range(1000))
    assert writer.pending == 0 and writer.written == 1000
    assert any("retrying" in r.getMessage() for r in caplog.records)


class _Crash(Compressor):
    def compress(self, job):
        raise ZeroDivisionError("deliberate bug")


def test_label_values_are_capped():
    metrics = Metrics(max_label_values=2)
    assert [metrics.tenant(t) for t in ("a", "b", "c", "a")] == ["a", "b", OTHER, "a"]


def test_recorder_counts_tokens_and_dollars(tmp_path):
    settings = Settings(data_dir=str(tmp_path), metrics_max_label_values=1, compute_usd_per_hour=3600.0)
    rec = Recorder(settings)
    rec.record_usage("Generate", model="gpt-4o", method="extractive", original_tokens=1000, compressed_tokens=300,
                     completion_tokens=5, cached_tokens=100, cache_query_tokens=300, compressor_latency_ms=2.0,
                     tenant="t1", request_id="g1")
    rec.record_usage("Compress", model="gpt-4o", method="lexical", original_tokens=10, compressed_tokens=4,
                     tenant="t2")
    with pytest.raises(InvalidArgument):
        rec.record_usage("Nope", model="gpt-4o", method="x", original_tokens=1, compressed_tokens=1)
    with pytest.raises(InvalidArgument, match="completion_tokens must be an integer >= 0"):
        rec.record_usage("Generate", model="gpt-4o", method="x", original_tokens=1, compressed_tokens=1,
                         completion_tokens=-3)
    assert rec.flush(60)
    value = rec.metrics.registry.get_sample_value
    assert value("ragpress_saved_tokens_total", {"rpc": "Generate", "tenant": "t1", "model": "gpt-4o",
                                                  "method": "extractive"}) == 700
    # The second tenant and method exceed the cap of one label value each.
    assert value("ragpress_saved_tokens_total", {"rpc": "Compress", "tenant": OTHER, "model": "gpt-4o",
                                                  "method": OTHER}) == 6
    assert value("ragpress_prefix_cache_hit_tokens_total", {"model": "gpt-4o"}) == 100
    assert value("ragpress_prefix_cache_query_tokens_total", {"model": "gpt-4o"}) == 300
    expected = cost("gpt-4o", 1000, 300, 5, 100)
    assert value("ragpress_saved_dollars_total", {"rpc": "Generate", "tenant": "t1", "model": "gpt-4o",
                                                   "method": "extractive"}) == pytest.approx(expected.saved_usd)
    assert value("ragpress_compute_dollars_total", {"rpc": "Generate", "tenant": "t1", "model": "gpt-4o",
                                                     "method": "extractive"}) == pytest.approx(2.0 / 1000)
    rows = {r.group["tenant"]: r for r in rec.query(UsageQuery(group_by=("tenant",)))}
    assert rows["t1"].cost_after_usd == pytest.approx(expected.after_usd) and rows["t2"].original_tokens == 10
    assert rows["t1"].net_saved_usd == pytest.approx(expected.saved_usd - 0.002)
    rec.close()


# --- the real server: GetUsage, /metrics, /dashboard ------------------------------------------

@pytest.fixture(scope="module")
async def acct_server(fast_engine, tmp_path_factory):
    data = tmp_path_factory.mktemp("acct")
    settings = Settings(port=0, metrics_port=0, embedding_model="hashing", data_dir=str(data),
                        ledger_flush_seconds=0.05)
    running = await start(settings, fast_engine)
    await running.ready
    yield running
    await running.stop(grace=1)


def _compress_request(tenant_docs: int = 2) -> pb.CompressRequest:
    req = pb.CompressRequest(query="Who founded the city?", model="gpt-4o", documents=[
        pb.Document(id=str(i), text=f"Document {i}. The city was founded by settlers in year {1000 + i}. "
                                    "Bread is baked daily. Cars drive on roads.") for i in range(tenant_docs)])
    req.budget.keep_ratio = 0.5
    return req


async def _get(url: str) -> tuple[int, str, str]:
    import asyncio

    def fetch():
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()

    return await asyncio.to_thread(fetch)


async def test_compress_is_recorded_and_get_usage_groups_it(acct_server):
    import asyncio

    async with grpc.aio.insecure_channel(f"127.0.0.1:{acct_server.port}") as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        replies = {}
        for tenant, n in (("acme", 3), ("beta", 2)):
            for _ in range(n):
                reply = await stub.Compress(_compress_request(), metadata=(("x-ragpress-tenant", tenant),))
                replies.setdefault(tenant, []).append(reply)
        await asyncio.to_thread(acct_server.recorder.flush, 60)
        usage = await stub.GetUsage(pb.GetUsageRequest(group_by=[pb.USAGE_GROUP_BY_TENANT, pb.USAGE_GROUP_BY_DAY]))
        rows = {r.group["tenant"]: r for r in usage.rows}
        for tenant, sent in replies.items():
            assert rows[tenant].requests == len(sent)
            assert rows[tenant].original_tokens == sum(r.original_tokens for r in sent)
            assert rows[tenant].compressed_tokens == sum(r.compressed_tokens for r in sent)
            priced = cost("gpt-4o", sum(r.original_tokens for r in sent), sum(r.compressed_tokens for r in sent))
            assert rows[tenant].saved_usd == pytest.approx(priced.saved_usd)
            assert rows[tenant].net_saved_usd == pytest.approx(rows[tenant].saved_usd - rows[tenant].compute_usd)
            assert len(rows[tenant].group["day"]) == 10
        future = pb.GetUsageRequest()
        future.start_time.FromSeconds(4_000_000_000)
        assert list((await stub.GetUsage(future)).rows) == []
        bad = pb.GetUsageRequest()
        bad.start_time.FromSeconds(200)
        bad.end_time.FromSeconds(100)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetUsage(bad)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "before start" in info.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetUsage(pb.GetUsageRequest(group_by=[pb.USAGE_GROUP_BY_UNSPECIFIED]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "USAGE_GROUP_BY_UNSPECIFIED" in info.value.details()


async def test_metrics_endpoint_exports_savings_latency_and_errors(acct_server):
    import asyncio

    async with grpc.aio.insecure_channel(f"127.0.0.1:{acct_server.port}") as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        reply = await stub.Compress(_compress_request(), metadata=(("x-ragpress-tenant", "gamma"),))
        bad = _compress_request()
        bad.budget.keep_ratio = 2.0
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Compress(bad)
        with pytest.raises(grpc.aio.AioRpcError) as empty:  # UNIMPLEMENTED today, INVALID_ARGUMENT once built
            await stub.Generate(pb.GenerateRequest())
        crash = _compress_request()
        crash.pipeline.add(method="acct-crash")
        register("acct-crash", "test only: raises a bug")(lambda o, m: _Crash())
        try:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Compress(crash)
        finally:
            unregister("acct-crash")
        assert info.value.code() == grpc.StatusCode.INTERNAL
    await asyncio.to_thread(acct_server.recorder.flush, 60)
    status, ctype, text = await _get(f"http://127.0.0.1:{acct_server.metrics_port}/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    labels = (("method", "extractive"), ("model", "gpt-4o"), ("rpc", "Compress"), ("tenant", "gamma"))
    assert samples[("ragpress_saved_tokens_total", labels)] == reply.original_tokens - reply.compressed_tokens
    assert samples[("ragpress_saved_dollars_total", labels)] == pytest.approx(
        cost("gpt-4o", reply.original_tokens, reply.compressed_tokens).saved_usd)
    assert samples[("ragpress_rpc_errors_total", (("code", "INVALID_ARGUMENT"), ("rpc", "Compress")))] >= 1
    assert samples[("ragpress_rpc_errors_total", (("code", empty.value.code().name), ("rpc", "Generate")))] == 1
    assert samples[("ragpress_rpc_errors_total", (("code", "INTERNAL"), ("rpc", "Compress")))] == 1
    assert samples[("ragpress_rpc_requests_total", (("code", "OK"), ("rpc", "Compress")))] >= 1
    assert samples[("ragpress_request_latency_seconds_count", (("method", "extractive"), ("rpc", "Compress")))] >= 1
    assert samples[("ragpress_stage_tokens_total", (("direction", "in"), ("method", "extractive")))] > 0
    assert not any("request_id" in dict(key) for _, key in samples)


async def test_dashboard_and_json_api_read_the_ledger(acct_server):
    base = f"http://127.0.0.1:{acct_server.metrics_port}"
    status, ctype, page = await _get(f"{base}/dashboard?hours=1")
    assert status == 200 and ctype.startswith("text/html")
    for chart in ("savings", "tokens-by-method", "tokens-by-model", "latency", "cache"):
        assert f'id="{chart}"' in page
    assert 'class="mark"' in page and "no data" not in page
    status, _, body = await _get(f"{base}/api/usage?group_by=tenant")
    tenants = {row["group"]["tenant"] for row in json.loads(body)["rows"]}
    assert status == 200 and {"acme", "beta", "gamma"} <= tenants
    assert (await _get(f"{base}/api/usage?group_by=colour"))[0] == 400
    assert (await _get(f"{base}/api/usage?start=x"))[0] == 400
    assert (await _get(f"{base}/nope"))[0] == 404
    assert (await _get(f"{base}/dashboard?hours=inf"))[0] == 400


async def test_usage_cli_reads_the_server_and_the_local_ledger(acct_server, tmp_path, capsys):
    import asyncio

    chart = tmp_path / "savings.html"
    code = await asyncio.to_thread(main, ["usage", "--server", f"127.0.0.1:{acct_server.port}", "--group-by",
                                          "tenant", "--chart", str(chart)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].split()[:3] == ["tenant", "requests", "original"]
    assert any(line.startswith("acme ") for line in out) and any(line.startswith("beta ") for line in out)
    html = chart.read_text(encoding="utf-8")
    assert '<svg id="savings"' in html and 'class="mark"' in html
    assert "by tenant" in html  # one line per tenant, as --group-by asked
    assert all(f"<title>{t}: " in html for t in ("acme", "beta", "gamma"))
    url = f"sqlite://{acct_server.recorder.ledger.path}"
    code = await asyncio.to_thread(main, ["usage", "--ledger-url", url, "--group-by", "", "--json"])
    (total,) = json.loads(capsys.readouterr().out)
    assert code == 0 and total["requests"] >= 6 and total["saved_usd"] > 0
    assert await asyncio.to_thread(main, ["usage", "--ledger-url", url, "--since", "yesterday-ish"]) == 2
    assert "cannot read time 'yesterday-ish'" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["usage", "--ledger-url", f"sqlite://{tmp_path}/none.db"]) == 2
    assert "no usage ledger at" in capsys.readouterr().err and not (tmp_path / "none.db").exists()


def test_records_the_ledger_refuses_at_shutdown_are_spilled_and_recovered(tmp_path, caplog):
    settings = Settings(data_dir=str(tmp_path), ledger_flush_seconds=0.05)
    down = _Flaky(failures=10**9)  # a database that stays down
    rec = Recorder(settings, ledger=down)
    for n in range(25):
        rec.record_usage("Compress", model="gpt-4o", method="extractive", original_tokens=10, compressed_tokens=4,
                         tenant="t", request_id=f"s{n}")
    rec.close()
    (spill,) = tmp_path.glob("ledger-unwritten-*.jsonl")
    assert len(spill.read_text().splitlines()) == 25 and down.rows == []
    up = _Flaky(failures=0)
    Recorder(settings, ledger=up).close()  # the next start writes them
    assert sorted(r.request_id for r in up.rows) == sorted(f"s{n}" for n in range(25))
    assert up.rows[0].cost_before_usd == pytest.approx(cost("gpt-4o", 10, 4).before_usd)
    assert list(tmp_path.glob("ledger-unwritten-*")) == []
