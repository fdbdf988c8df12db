"""Generate through litellm against a real OpenAI-compatible server on loopback.

The upstream is tests/openai_server.py (aiohttp), reached by litellm over TCP;
ragpress runs as a real gRPC server. Marked slow: it starts an external server
and imports litellm's completion stack.
"""

from __future__ import annotations

import asyncio
import email.utils
import time

import grpc
import pytest

from middleware.library import Ragpress
from middleware.server import start
from middleware.accounting import UsageQuery
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

pytestmark = [
    pytest.mark.slow,
    # litellm's streaming types trip pydantic notices (TypedDict ReadOnly items, model_computed_fields)
    # (third-party, harmless); everything else stays an error.
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier"),
    pytest.mark.filterwarnings("ignore:Accessing the 'model_(computed_)?fields' attribute"),
]

MODEL = "openai/gpt-4o-mini"


@pytest.fixture(scope="module")
async def stub(upstream, tmp_path_factory):
    settings = Settings(port=0, embedding_model="hashing", llm_api_base=upstream.api_base, llm_api_key="sk-test",
                        llm_timeout_seconds=4.0, llm_retries=2, warm_up=False,
                        data_dir=str(tmp_path_factory.mktemp("gateway")), ledger_flush_seconds=0.05)
    running = await start(settings, Ragpress(settings))
    await running.ready
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        stub.recorder = running.recorder  # for the tests that read the ledger
        # litellm's first call imports its provider stack (seconds on a busy CPU): pay it here.
        upstream.reset()
        await stub.Generate(_request(), timeout=60)
        yield stub
    await running.stop(grace=1)


def _request(**kw) -> pb.GenerateRequest:
    req = pb.GenerateRequest(
        query="How many people live in Paris?",
        documents=[pb.Document(id="a", title="Paris", text="Paris is the capital of France. It has 2,102,650 inhabitants. "
                                                           "The Seine flows through it."),
                   pb.Document(id="b", title="Bread", text="Bread is baked. Baguettes are long. Croissants are flaky.")],
        model=MODEL, system_prompt="Answer briefly.", **kw)
    req.budget.max_tokens = 25
    return req


async def _wait_for(predicate, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_generate_returns_text_usage_cost_and_the_compressed_prompt(stub, upstream):
    b = upstream.reset()
    reply = await stub.Generate(_request(), metadata=(("x-request-id", "gen-1"),))
    assert reply.text == b.reply and reply.model == MODEL and not reply.fell_back
    assert reply.usage.prompt_tokens == 42 and reply.usage.completion_tokens == 4
    # The uncompressed documents would have cost more prompt tokens.
    saved = reply.compression.original_tokens - reply.compression.compressed_tokens
    assert saved > 0 and reply.usage.original_prompt_tokens == 42 + saved
    assert reply.cost.cost_usd > 0 and reply.cost.saved_usd > 0
    assert reply.cost.original_cost_usd == pytest.approx(reply.cost.cost_usd + reply.cost.saved_usd)
    assert reply.request_id == "gen-1" and reply.compression.request_id == "gen-1"
    sent = b.requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0
    system, user = sent["messages"]
    assert system == {"role": "system", "content": "Answer briefly."}
    assert user["content"].endswith("Question: How many people live in Paris?\nAnswer:")
    assert reply.compression.context in user["content"]


async def test_generate_stream_sends_deltas_then_the_final_response(stub, upstream):
    b = upstream.reset()
    deltas, finals = [], []
    async for event in stub.GenerateStream(pb.GenerateStreamRequest(request=_request())):
        (deltas if event.WhichOneof("event") == "text_delta" else finals).append(event)
    assert len(deltas) == len(b.reply.split(" ")) and len(finals) == 1
    assert "".join(d.text_delta for d in deltas) == finals[0].final_response.text == b.reply
    assert finals[0].final_response.usage.completion_tokens == 4 and b.requests[0]["stream"] is True
    # The ledger and the token counters know a stream as GenerateStream, not Generate.
    await asyncio.to_thread(stub.recorder.flush, 30)
    rows = stub.recorder.query(UsageQuery(group_by=("rpc",)))
    assert {"Generate", "GenerateStream"} <= {r.group["rpc"] for r in rows}
    labels = {s.labels["rpc"] for m in stub.recorder.metrics.registry.collect() if m.name == "ragpress_completion_tokens"
              for s in m.samples}
    assert "GenerateStream" in labels


async def test_a_500_fails_with_unavailable_and_the_upstream_reason(stub, upstream):
    upstream.reset(fail_first=1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_FAIL))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "500" in info.value.details() and "upstream exploded" in info.value.details()


async def test_retry_policy_retries_a_500_and_answers(stub, upstream):
    b = upstream.reset(fail_first=2)
    reply = await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_RETRY))
    assert reply.text == b.reply and len(b.requests) == 3 and not reply.fell_back


async def test_retry_policy_gives_up_with_unavailable(stub, upstream):
    b = upstream.reset(fail_first=10, fail_status=503)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_RETRY))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "503" in info.value.details()
    assert len(b.requests) == 3  # one try and llm_retries=2 retries


async def test_retry_waits_at_least_the_retry_after_of_a_429_then_answers(stub, upstream):
    b = upstream.reset(fail_first=1, fail_status=429, retry_after="1")
    reply = await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_RETRY), timeout=30)
    assert reply.text == b.reply and len(b.requests) == 2 and not reply.fell_back
    # The back-off alone would be 0.2 to 0.4 s: a one-second gap is the header's.
    assert b.arrivals[1] - b.arrivals[0] >= 1.0


async def test_a_503_retry_after_as_an_http_date_is_honoured(stub, upstream):
    at = int(time.time()) + 3
    b = upstream.reset(fail_first=1, fail_status=503, retry_after=email.utils.formatdate(at, usegmt=True))
    reply = await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_RETRY), timeout=30)
    assert reply.text == b.reply and len(b.requests) == 2
    assert b.arrived_at[1] >= at - 0.05  # not before the date (the margin is clock rounding only)


async def test_a_retry_after_past_the_deadline_is_not_waited_for(stub, upstream):
    b = upstream.reset(fail_first=1, fail_status=429, retry_after="30")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_RETRY), timeout=10)
    # Not DEADLINE_EXCEEDED: the call gave up at once rather than sleep past its deadline.
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "rate-limited" in info.value.details()
    assert len(b.requests) == 1


async def test_a_4xx_is_not_retried_and_is_invalid_argument(stub, upstream):
    b = upstream.reset(fail_first=1, fail_status=400)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_RETRY))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rejected" in info.value.details()
    assert len(b.requests) == 1


async def test_a_slow_upstream_times_out_as_unavailable(stub, upstream):
    upstream.reset(delay=8.0)  # longer than llm_timeout_seconds=4
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(fallback=pb.FALLBACK_POLICY_FAIL))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "timed out" in info.value.details()


async def test_the_client_deadline_becomes_the_upstream_timeout(stub, upstream):
    b = upstream.reset(delay=3.0)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(), timeout=1.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The upstream request was abandoned when the deadline passed, not left to finish.
    assert await _wait_for(lambda: b.cancelled == 1)
    assert b.completed == 0


async def test_a_cancelled_call_cancels_the_upstream_request(stub, upstream):
    b = upstream.reset(delay=3.0)
    call = stub.Generate(_request())
    assert await _wait_for(lambda: len(b.requests) == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await _wait_for(lambda: b.cancelled == 1)
    await asyncio.sleep(3.2)  # past the upstream's delay: it must not have answered
    assert b.completed == 0


async def test_bad_generation_options_are_invalid_argument(stub, upstream):
    upstream.reset()
    req = _request()
    req.generation.temperature = 3.0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "temperature" in info.value.details()
    req = _request(template="{question} {context}")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "after {context}" in info.value.details()
    assert (await stub.Generate(_request())).text


async def test_a_deadline_the_server_notices_first_is_deadline_exceeded(upstream):
    # In-process there is no client to notice: the upstream attempt's time-out, set from
    # the caller's deadline, fires first, and must read as the deadline, not as UNAVAILABLE.
    from middleware.errors import DeadlineExceeded

    upstream.reset(delay=3.0)
    engine = Ragpress(Settings(embedding_model="hashing", llm_api_base=upstream.api_base, llm_api_key="sk-test",
                               llm_timeout_seconds=4.0, warm_up=False))
    docs = [{"id": "a", "title": "Paris", "text": "Paris has 2,102,650 inhabitants."}]
    with pytest.raises(DeadlineExceeded, match="deadline passed while waiting for openai/gpt-4o-mini"):
        await asyncio.to_thread(engine.generate, "How many people live in Paris?", docs, 50, model=MODEL,
                                fallback="local", timeout=1.0)
