"""A real grpc.aio server on a loopback port, called over a real channel."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from compressors.registry import register, unregister
from compressors.base import Compressor, StageOutput
from middleware.server import start
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc



class _Sleepy(Compressor):
    """Test-only method that takes its time, to exercise deadlines and draining."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def compress(self, job):
        import time

        time.sleep(self.seconds)
        return StageOutput(())


class _Crash(Compressor):
    def compress(self, job):
        raise ZeroDivisionError("deliberate bug")


@pytest.fixture(scope="module")
def test_methods():
    """Test-only methods, registered for this module and removed after it."""
    register("test-sleep", "test only: sleeps, keeps nothing")(lambda o, m: _Sleepy(float(o.get("seconds", 1.0))))
    register("test-crash", "test only: raises a bug")(lambda o, m: _Crash())
    yield
    unregister("test-sleep")
    unregister("test-crash")


@pytest.fixture(scope="module")
async def server(fast_engine, test_methods, tmp_path_factory):
    settings = Settings(port=0, embedding_model="hashing", max_message_bytes=256 * 1024, workers=2,
                        data_dir=str(tmp_path_factory.mktemp("data")))
    running = await start(settings, fast_engine)
    await running.ready
    yield running
    await running.stop(grace=1)


@pytest.fixture(scope="module")
async def channel(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel):
    return pb_grpc.RagpressServiceStub(channel)


def _request(**kw) -> pb.CompressRequest:
    req = pb.CompressRequest(
        query="How many people live in Paris?",
        documents=[pb.Document(id="a", title="Paris", text="Paris is the capital of France. It has 2,102,650 inhabitants."),
                   pb.Document(id="b", title="Bread", text="Bread is baked. Baguettes are long.")],
        model="gpt-4o")
    req.budget.max_tokens = 20
    req.documents[0].metadata.update({"url": "https://example.org/paris", "rank": 1})
    for key, value in kw.items():
        setattr(req, key, value) if not isinstance(value, list) else req.ClearField(key)
    return req


async def test_health_is_serving(channel):
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="ragpress.v1.RagpressService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = []
    async for reply in stub.ServerReflectionInfo(one()):
        names = [s.name for s in reply.list_services_response.service]
    assert "ragpress.v1.RagpressService" in names and "grpc.health.v1.Health" in names


async def test_reflection_v1_describes_the_service(channel):
    """Clients that speak reflection v1 (grpcurl, Postman) get answers too, not UNIMPLEMENTED."""
    from google.protobuf import descriptor_pb2

    call = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)

    async def asks():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="ragpress.v1.RagpressService")

    replies = [reply async for reply in call(asks())]
    assert "ragpress.v1.RagpressService" in [s.name for s in replies[0].list_services_response.service]
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in replies[1].file_descriptor_response.file_descriptor_proto]
    methods = {m.name for f in files for svc in f.service if svc.name == "RagpressService" for m in svc.method}
    assert {"Compress", "Generate", "Retrieve"} <= methods


async def test_compress_round_trip(stub):
    call = stub.Compress(_request(), metadata=(("x-ragpress-tenant", "acme"), ("x-request-id", "rid-123")))
    reply = await call
    assert reply.compressed_tokens <= reply.budget_tokens == 20
    assert reply.original_tokens > reply.compressed_tokens > 0
    assert reply.tokenizer == "o200k_base" and reply.request_id == "rid-123"
    assert [d.id for d in reply.documents] + list(reply.dropped_ids) in (["a", "b"], ["a"], ["b", "a"])
    kept = {d.id: d for d in reply.documents}
    if "a" in kept:
        assert dict(kept["a"].metadata) == {"url": "https://example.org/paris", "rank": 1.0}
    assert reply.context.startswith("Paris\n")
    assert ("x-request-id", "rid-123") in tuple(await call.initial_metadata())
    assert reply.stages[0].method == "extractive"


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r.ClearField("budget"), "budget is required"),
    (lambda r: setattr(r.budget, "max_tokens", 0), "max_tokens must be >= 1"),
    (lambda r: setattr(r.budget, "keep_ratio", 1.5), "keep_ratio must be in (0, 1]"),
    (lambda r: setattr(r, "method", "nope"), "unknown method 'nope'; known:"),
    (lambda r: setattr(r, "model", "no-such-model-x"), "unknown model 'no-such-model-x'"),
    (lambda r: r.documents[1].__setattr__("id", "a"), "duplicate document id 'a'"),
    (lambda r: (setattr(r, "method", "extractive"), r.pipeline.add(method="extractive")), "either method or pipeline"),
    (lambda r: r.pipeline.add(method="extractive").options.update({"bogus": 1}), "unknown option(s) ['bogus']"),
    (lambda r: r.pipeline.add(method="extractive").options.update({"min_probability": "x"}), "must be float"),
])
async def test_bad_input_is_invalid_argument_and_the_server_keeps_serving(stub, mutate, fragment):
    req = _request()
    mutate(req)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()
    assert (await stub.Compress(_request())).compressed_tokens > 0


async def test_bad_tenant_is_invalid_argument(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_request(), metadata=(("x-ragpress-tenant", "a b/c"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "x-ragpress-tenant" in info.value.details()


async def test_a_bug_is_internal_with_a_request_id_and_a_log_line(stub, caplog):
    req = _request()
    req.pipeline.add(method="test-crash")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(req, metadata=(("x-request-id", "bug-1"),))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "bug-1" in info.value.details() and "deliberate" not in info.value.details()
    assert any("bug-1" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_an_empty_demonstration_request_is_invalid_and_says_what_is_missing(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SelectDemonstrations(pb.SelectDemonstrationsRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "query is required" in info.value.details()


async def test_generate_stream_without_budget_is_invalid_argument(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.GenerateStream(pb.GenerateStreamRequest()):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "budget is required" in info.value.details()


async def test_documents_and_collection_together_are_invalid(stub):
    req = _request(collection="wiki")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not both" in info.value.details()


async def test_deadline_is_honoured(stub):
    req = _request()
    req.pipeline.add(method="test-sleep").options.update({"seconds": 1.5})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(req, timeout=0.3)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert (await stub.Compress(_request())).compressed_tokens > 0


async def test_oversized_message_is_refused(stub):
    req = _request()
    req.documents.add(id="huge", text="word " * 100_000)  # 500 kB > the 256 kB limit of this server
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(req)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await stub.Compress(_request())).compressed_tokens > 0


async def test_concurrent_calls_do_not_block_each_other(stub):
    replies = await asyncio.gather(*(stub.Compress(_request()) for _ in range(16)))
    assert len({r.context for r in replies}) == 1


async def test_health_reports_not_serving_until_warm(fast_engine):
    """Warm-up that blocks keeps health at NOT_SERVING; it turns SERVING when done."""
    import threading

    gate = threading.Event()
    original = fast_engine.warm_up
    fast_engine.warm_up = lambda: (gate.wait(10), original())
    try:
        running = await start(Settings(port=0, embedding_model="hashing", ledger_url="none"), fast_engine)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            first = await health.Check(health_pb2.HealthCheckRequest(service=""))
            gate.set()
            await running.ready
            second = await health.Check(health_pb2.HealthCheckRequest(service=""))
        await running.stop(grace=1)
    finally:
        fast_engine.warm_up = original
    assert first.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert second.status == health_pb2.HealthCheckResponse.SERVING


async def test_stop_drains_in_flight_calls(fast_engine, test_methods):
    running = await start(Settings(port=0, embedding_model="hashing", ledger_url="none"), fast_engine)
    await running.ready
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        req = _request()
        req.pipeline.add(method="test-sleep").options.update({"seconds": 1.0})
        call = asyncio.ensure_future(stub.Compress(req, timeout=10))
        await asyncio.sleep(0.3)
        await running.stop(grace=5)  # what SIGTERM triggers
        reply = await call
    assert reply.stages[0].method == "test-sleep" and reply.context == ""
