"""Limits, the admission gate, load shedding and cancellation, on real servers.

Refused work costs nothing (no stage runs, no usage record); a call past its
deadline or cancelled by its client stops its work at the next check (between
pipeline stages, embedding batches, prefill chunks), not minutes later.
"""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from compressors.base import Compressor, StageOutput
from compressors.registry import register, unregister
from middleware.errors import ResourceExhausted
from middleware.library import Ragpress
from middleware.limits import Gate
from middleware.server import start
from middleware.service import SERVICE_NAME
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

RUNS: list[float] = []


class _Slow(Compressor):
    """Test-only: sleeps, notes that it ran, keeps its input."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def compress(self, job):
        RUNS.append(time.monotonic())
        time.sleep(self.seconds)
        return StageOutput(job.documents)


class SlowEmbedder:
    """A hashing-like embedder that takes ``seconds`` per batch and counts its batches."""

    name = "slow-test"
    max_tokens = 256

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.batches = 0

    def embed(self, texts):
        self.batches += 1
        time.sleep(self.seconds)
        rng = np.random.default_rng(len(texts))
        return rng.random((len(texts), 8), dtype=np.float32)


@pytest.fixture(scope="module", autouse=True)
def slow_method():
    register("test-slow", "test only: sleeps, keeps everything")(lambda o, m: _Slow(float(o.get("seconds", 0.3))))
    yield
    unregister("test-slow")


def _slow_request(stages: int, seconds: float) -> pb.CompressRequest:
    req = pb.CompressRequest(query="q?", model="gpt-4o", documents=[pb.Document(id="a", text="Some words here.")])
    req.budget.max_tokens = 50
    for _ in range(stages):
        req.pipeline.add(method="test-slow").options.update({"seconds": seconds})
    return req


@pytest.fixture
async def make_server(tmp_path):
    started = []

    async def make(engine=None, **kw):
        settings = Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path), warm_up=False,
                            ledger_flush_seconds=0.05, **kw)
        running = await start(settings, engine or Ragpress(settings))
        await running.ready
        started.append(running)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        return running, pb_grpc.RagpressServiceStub(channel), channel

    yield make
    for running in started:
        await running.stop(grace=1)


def test_the_gate_counts_per_tenant_and_in_total_and_names_the_setting():
    gate = Gate(total=3, per_tenant=2)
    with gate.admit("a"), gate.admit("a"):
        with pytest.raises(ResourceExhausted, match="max_concurrent_per_tenant 2"):
            with gate.admit("a"):
                pass
        with gate.admit("b"):
            with pytest.raises(ResourceExhausted, match="max_concurrent_requests 3"):
                with gate.admit("c"):
                    pass
    assert gate.in_flight == 0 and gate.refused == 2
    with gate.admit("a"):  # released: admitted again
        assert gate.in_flight == 1


async def test_a_busy_server_refuses_at_once_and_the_refused_call_costs_nothing(make_server):
    running, stub, channel = await make_server(max_concurrent_requests=2, max_concurrent_per_tenant=2)
    RUNS.clear()
    slow = [asyncio.ensure_future(stub.Compress(_slow_request(1, 1.0), timeout=20)) for _ in range(2)]
    while len(RUNS) < 2:
        await asyncio.sleep(0.02)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_slow_request(1, 1.0), timeout=20)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_concurrent_requests 2" in info.value.details()
    await asyncio.gather(*slow)
    assert len(RUNS) == 2  # the refused call never reached a stage
    assert await asyncio.to_thread(running.recorder.flush, 10)
    rows = await stub.GetUsage(pb.GetUsageRequest())
    assert sum(r.requests for r in rows.rows) == 2  # and was not billed
    await channel.close()


async def test_one_tenant_at_its_limit_does_not_block_another(make_server):
    _, stub, channel = await make_server(max_concurrent_per_tenant=1)
    RUNS.clear()
    busy = asyncio.ensure_future(stub.Compress(_slow_request(1, 0.8), metadata=(("x-ragpress-tenant", "a"),)))
    while not RUNS:
        await asyncio.sleep(0.02)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_slow_request(1, 0.1), metadata=(("x-ragpress-tenant", "a"),))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "tenant 'a'" in info.value.details()
    await stub.Compress(_slow_request(1, 0.1), metadata=(("x-ragpress-tenant", "b"),))
    await busy
    await channel.close()


async def test_memory_pressure_sheds_load_and_readiness_reports_it(make_server):
    running, stub, channel = await make_server(max_rss_bytes=1)  # always over: every call is shed
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_slow_request(1, 0.0))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_rss_bytes" in info.value.details()
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(50):
        ready = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        if ready.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        await asyncio.sleep(0.1)
    assert ready.status == health_pb2.HealthCheckResponse.NOT_SERVING
    live = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert live.status == health_pb2.HealthCheckResponse.SERVING
    await channel.close()


async def _stops_soon(count, settle: float = 1.5) -> tuple[int, int]:
    at_end = count()
    await asyncio.sleep(settle)
    return at_end, count()


async def test_a_call_past_its_deadline_stops_between_pipeline_stages(make_server):
    _, stub, channel = await make_server()
    RUNS.clear()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_slow_request(10, 0.3), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    at_end, later = await _stops_soon(lambda: len(RUNS))
    # Without cancellation all ten 0.3 s stages would run (3 s); the stage running at the
    # deadline finishes and nothing after it starts.
    assert later <= at_end + 1 and later <= 3, (at_end, later)
    await channel.close()


async def test_a_cancelled_call_stops_its_work(make_server):
    _, stub, channel = await make_server()
    RUNS.clear()
    call = stub.Compress(_slow_request(10, 0.3), timeout=30)
    while not RUNS:
        await asyncio.sleep(0.02)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    at_end, later = await _stops_soon(lambda: len(RUNS))
    assert later <= at_end + 1 and later <= 3, (at_end, later)
    await channel.close()


async def test_indexing_past_the_deadline_stops_between_embedding_batches(make_server, tmp_path):
    embedder = SlowEmbedder(0.2)
    settings = Settings(embedding_model="hashing", data_dir=str(tmp_path / "slow"))
    _, stub, channel = await make_server(engine=Ragpress(settings, embedder=embedder))
    docs = [pb.Document(id=str(i), text=f"Document number {i} says something.") for i in range(640)]  # 10 batches
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Index(pb.IndexRequest(collection="big", documents=docs), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    at_end, later = await _stops_soon(lambda: embedder.batches)
    assert later <= at_end + 1 and later < 10, (at_end, later)
    # Nothing half-written was kept: vectors are added only after every batch is embedded.
    try:
        hits = (await stub.Retrieve(pb.RetrieveRequest(collection="big", query="Document"))).documents
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        hits = []
    assert len(hits) == 0
    await channel.close()


@pytest.mark.slow
def test_chunked_prefill_gives_the_same_tokens_and_honours_cancel(smollm2):
    from middleware.llm.runtime import LocalRuntime, SamplingParams

    rt = LocalRuntime(smollm2)
    ids = rt.encode_chat([{"role": "user", "content": "List three colours of the rainbow, briefly. " * 4}])
    params = SamplingParams(max_new_tokens=6)
    whole = rt.generate(ids, params, use_cache=False, prefill_chunk=10_000)
    chunked = rt.generate(ids, params, use_cache=False, prefill_chunk=7)
    assert len(ids) > 14 and whole.token_ids == chunked.token_ids and len(whole.token_ids) > 0
    stop = threading.Event()
    stop.set()
    assert rt.generate(ids, params, use_cache=False, cancel=stop, prefill_chunk=7).finish_reason == "cancelled"


async def test_large_requests_take_their_own_lane_and_never_stall_small_ones(make_server):
    _, stub, channel = await make_server(heavy_request_bytes=2048, workers=1)
    RUNS.clear()
    big = _slow_request(1, 0.6)
    big.documents.add(id="pad", text="padding " * 400)  # over heavy_request_bytes
    big.budget.max_tokens = 5000
    heavy = [asyncio.ensure_future(stub.Compress(big, timeout=30)) for _ in range(2)]
    while not RUNS:
        await asyncio.sleep(0.02)
    # Two large calls queue on the one heavy thread; the small call runs on the worker pool.
    small = await stub.Compress(_slow_request(1, 0.0), timeout=30)
    assert small.compressed_tokens > 0
    assert not all(h.done() for h in heavy)  # it did not wait for both large calls
    await asyncio.gather(*heavy)
    await channel.close()
