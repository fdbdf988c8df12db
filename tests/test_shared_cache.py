"""The result cache (embedded and in a real redis-server started here) and shared
collections metadata between two replicas; no tenant ever hits another's entry."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import grpc
import pytest

from middleware import shared_cache
from middleware.auth import new_key
from middleware.library import Ragpress
from middleware.server import start
from middleware.settings import Settings
from middleware.types import Budget, CompressRequest, Document, Stage
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

ACME, GLOBEX = new_key(), new_key()
KEYS = f"{ACME[1]}:acme:writer;{GLOBEX[1]}:globex:writer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; see deploy/ci-system-packages.sh)")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = shared_cache.redis_client(f"redis://127.0.0.1:{port}/0")
    for _ in range(100):
        try:
            if client.ping():
                break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def _request(query: str = "How many people live in Paris?", **kw) -> CompressRequest:
    docs = (Document(id="a", title="Paris", text="Paris has 2,102,650 inhabitants. Bread is baked."),)
    return CompressRequest(query=query, documents=docs, **{"budget": Budget(max_tokens=40), **kw})


def test_the_key_covers_tenant_options_input_and_tokenizer():
    base = shared_cache.result_key("acme", _request(), "o200k_base")
    assert base == shared_cache.result_key("acme", _request(), "o200k_base")
    others = [shared_cache.result_key("globex", _request(), "o200k_base"),
              shared_cache.result_key("acme", _request("Other?"), "o200k_base"),
              shared_cache.result_key("acme", _request(), "cl100k_base"),
              shared_cache.result_key("acme", _request(pipeline=(Stage("extractive", {"reorder": True}),)), "o200k_base"),
              shared_cache.result_key("acme", _request(budget=Budget(max_tokens=41)), "o200k_base")]
    assert base not in others and len(set(others)) == len(others)


def test_results_survive_encoding_exactly(fast_engine):
    result = fast_engine.pipeline.compress(_request(), "rid")
    assert shared_cache.decode(shared_cache.encode(result)) == result


def test_the_memory_cache_is_bounded_and_expires():
    cache = shared_cache.MemoryCache(entries=2, ttl=0.2)
    for key in "abc":
        cache.put(key, key.encode())
    assert cache.get("a") is None and cache.get("c") == b"c"
    time.sleep(0.25)
    assert cache.get("c") is None


async def _replica(tmp_path, **kw):
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path), ledger_url="none", warm_up=False,
                        api_keys=KEYS, **kw)
    running = await start(settings, Ragpress(settings))
    await running.ready
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    return running, pb_grpc.RagpressServiceStub(channel), channel


def _pb_request() -> pb.CompressRequest:
    req = pb.CompressRequest(query="How many people live in Paris?", model="gpt-4o",
                             documents=[pb.Document(id="a", title="Paris", text="Paris has 2,102,650 inhabitants.")])
    req.budget.max_tokens = 30
    return req


def _as(key) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key[0]}"),)


async def test_the_embedded_cache_serves_a_repeat_and_never_another_tenant(tmp_path):
    running, stub, channel = await _replica(tmp_path)
    try:
        first = await stub.Compress(_pb_request(), metadata=_as(ACME))
        again = await stub.Compress(_pb_request(), metadata=_as(ACME))
        other = await stub.Compress(_pb_request(), metadata=_as(GLOBEX) + (("x-ragpress-tenant", "acme"),))
        assert (first.cached, again.cached, other.cached) == (False, True, False)
        assert again.context == first.context and again.request_id != first.request_id
    finally:
        await channel.close()
        await running.stop(grace=1)


async def test_replicas_share_results_and_collections_through_redis(tmp_path, redis_url):
    a, stub_a, ch_a = await _replica(tmp_path, redis_url=redis_url)
    b, stub_b, ch_b = await _replica(tmp_path, redis_url=redis_url)
    try:
        first = await stub_a.Compress(_pb_request(), metadata=_as(ACME))
        on_b = await stub_b.Compress(_pb_request(), metadata=_as(ACME))
        theirs = await stub_b.Compress(_pb_request(), metadata=_as(GLOBEX))
        assert (first.cached, on_b.cached, theirs.cached) == (False, True, False)
        assert on_b.context == first.context

        # Replica B opens acme's collection, then A changes it: B serves the new version.
        await stub_a.Index(pb.IndexRequest(collection="wiki", documents=[pb.Document(id="p", text="Version one.")]),
                           metadata=_as(ACME))
        hits = await stub_b.Retrieve(pb.RetrieveRequest(collection="wiki", query="Version"), metadata=_as(ACME))
        assert [h.document.text for h in hits.documents] == ["Version one."]
        await stub_a.Index(pb.IndexRequest(collection="wiki", documents=[pb.Document(id="p", text="Version two.")]),
                           metadata=_as(ACME))
        hits = await stub_b.Retrieve(pb.RetrieveRequest(collection="wiki", query="Version"), metadata=_as(ACME))
        assert [h.document.text for h in hits.documents] == ["Version two."]
        with pytest.raises(grpc.aio.AioRpcError) as info:  # and globex still cannot see it
            await stub_b.Retrieve(pb.RetrieveRequest(collection="wiki", query="Version"), metadata=_as(GLOBEX))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        for ch, running in ((ch_a, a), (ch_b, b)):
            await ch.close()
            await running.stop(grace=1)


async def test_a_result_cache_outage_never_fails_a_call(tmp_path):
    running, stub, channel = await _replica(tmp_path, redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    try:
        reply = await stub.Compress(_pb_request(), metadata=_as(ACME))
        assert reply.compressed_tokens > 0 and not reply.cached
    finally:
        await channel.close()
        await running.stop(grace=1)


def test_a_stage_that_opts_out_of_caching_skips_the_result_cache_and_hits_carry_no_cost():
    from middleware.shared_cache import MemoryCache, cached_compress, decode, encode
    from middleware.types import CompressResult
    from middleware.types import CompressorUsage, StageStats

    calls = []

    def compute():
        calls.append(1)
        return CompressResult(documents=(), dropped_ids=(), context="", original_tokens=5, compressed_tokens=0,
                              budget_tokens=3, stages=(StageStats("abstractive", 5, 0, 1.0, {},
                                                                  CompressorUsage("openai/x", 40, 8, 0.01)),),
                              model="gpt-4o", tokenizer="o200k_base", tokenizer_fallback=False, request_id="r")

    cache = MemoryCache(8, 60)
    fresh = CompressRequest(query="q", documents=(Document("a", "text"),), budget=Budget(max_tokens=3),
                            pipeline=(Stage("abstractive", {"cache": False}),))
    for _ in range(2):
        cached_compress(cache, "t", fresh, "o200k_base", compute, "r")
    assert len(calls) == 2
    stored = decode(encode(compute()))
    (stage,) = stored.stages
    assert stage.usage == CompressorUsage("openai/x", cached=True)
