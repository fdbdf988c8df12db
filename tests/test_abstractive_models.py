"""The abstractive method on real models: a litellm model behind a real OpenAI-compatible
server on loopback (tests/openai_server.py), and SmolLM2-135M-Instruct on the local runtime.

Marked slow: litellm's completion stack, a gRPC server and a real model load.
"""

from __future__ import annotations

import time

import grpc
import pytest

from compressors import faithfulness
from middleware import convert
from middleware.errors import DeadlineExceeded
from middleware.library import Ragpress
from middleware.server import start
from middleware.settings import Settings
from middleware.types import Budget, Stage
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

pytestmark = [
    pytest.mark.slow,
    # litellm's types trip pydantic notices (third-party, harmless); everything else stays an error.
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier"),
    pytest.mark.filterwarnings("ignore:Accessing the 'model_(computed_)?fields' attribute"),
]

SUMMARIZER = "openai/gpt-4o-mini"
QUERY = "How many people live in Paris?"
DOCS = [
    pb.Document(id="paris", title="Paris", text="Paris is the capital of France. It has 2,102,650 inhabitants. "
                "The Seine flows through it. The Louvre is the most visited museum in the world."),
    pb.Document(id="lyon", title="Lyon", text="Lyon is known for its cuisine. It has 522,250 inhabitants."),
    pb.Document(id="bread", title="Bread", text="Bread is baked from flour. Baguettes are long."),
]


@pytest.fixture(scope="module")
def local_dir(smollm2):
    """The converted SmolLM2 folder (the session fixture converts it once into the cache folder)."""
    return Settings().resolved_cache_dir() / "models" / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
async def served(upstream, local_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("abstractive")
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(data), llm_api_base=upstream.api_base,
                        llm_api_key="sk-test", llm_timeout_seconds=4.0, llm_retries=2, warm_up=False,
                        ledger_flush_seconds=0.05, local_model_dirs=f"smollm2={local_dir}", local_device="cpu",
                        local_threads=1)
    running = await start(settings, Ragpress(settings))
    await running.ready
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        upstream.reset()
        await stub.Compress(_request(), timeout=120)  # litellm's first call imports its provider stack
        yield stub, running
    await running.stop(grace=1)


def _request(budget: int = 40, **options) -> pb.CompressRequest:
    req = pb.CompressRequest(query=QUERY, documents=DOCS, model="gpt-4o")
    stage = req.pipeline.add(method="abstractive")
    stage.options.update({"summarizer": SUMMARIZER, "cache": False, **options})
    req.budget.max_tokens = budget
    return req


async def test_a_litellm_summariser_writes_the_context_and_its_cost_is_recorded(served, upstream):
    stub, running = served
    b = upstream.reset(reply="Paris has 2,102,650 inhabitants. Lyon has 522,250 inhabitants.")
    reply = await stub.Compress(_request(cache=True))
    assert reply.compressed_tokens <= 40
    assert [d.id for d in reply.documents] == ["paris", "lyon"]
    assert reply.documents[0].text == "Paris has 2,102,650 inhabitants."
    (stage,) = reply.stages
    details = convert.struct_to_dict(stage.details)
    assert details["outcome"] == "passed" and details["summarizer"] == SUMMARIZER
    assert stage.usage.model == SUMMARIZER and stage.usage.prompt_tokens == 42 and stage.usage.completion_tokens == 8
    assert stage.usage.cost_usd > 0 and not stage.usage.cached
    sent = b.requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0 and 4 <= sent["max_tokens"] <= 128
    assert QUERY in sent["messages"][-1]["content"] and "2,102,650" in sent["messages"][-1]["content"]
    # The same request again: from the cache, nothing sent, nothing paid.
    again = await stub.Compress(_request(cache=True))
    assert again.context == reply.context and again.stages[0].usage.cached and len(b.requests) == 1
    # The ledger counts the summariser's dollars as the compressor's cost.
    assert running.recorder.flush(30)
    rows = running.recorder.query(convert.usage_query_from_pb(pb.GetUsageRequest()))
    assert sum(r.compute_usd for r in rows) >= stage.usage.cost_usd


async def test_an_invented_figure_is_repaired_before_it_reaches_the_client(served, upstream):
    stub, _ = served
    upstream.reset(reply="Paris has 2,102,650 inhabitants. Paris had 41 million visitors in 2019.")
    reply = await stub.Compress(_request())
    details = convert.struct_to_dict(reply.stages[0].details)
    assert details["outcome"] == "repaired" and "41 million" not in reply.context
    assert {"kind": "number", "text": "41 million"} in details["guard"]["unsupported"]


async def test_fail_policy_is_unavailable_with_the_upstream_reason(served, upstream):
    stub, _ = served
    upstream.reset(fail_first=1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_request(fallback="fail"))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "upstream exploded" in info.value.details()


async def test_retry_policy_retries_then_answers(served, upstream):
    stub, _ = served
    b = upstream.reset(fail_first=2, reply="Paris has 2,102,650 inhabitants.")
    reply = await stub.Compress(_request(fallback="retry"))
    assert len(b.requests) == 3 and "2,102,650" in reply.context


async def test_a_rejected_request_is_invalid_argument(served, upstream):
    stub, _ = served
    b = upstream.reset(fail_first=1, fail_status=400)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_request(fallback="retry"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and len(b.requests) == 1


async def test_the_client_deadline_bounds_the_summariser(served, upstream):
    stub, _ = served
    upstream.reset(delay=3.0)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Compress(_request(), timeout=1.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_local_policy_lets_the_local_model_summarise(served, upstream):
    stub, _ = served
    upstream.reset(fail_first=5, fail_status=503)
    reply = await stub.Compress(_request(budget=60, fallback="local"), timeout=300)
    details = convert.struct_to_dict(reply.stages[0].details)
    assert details["fell_back"] is True and "503" in details["fallback_reason"]
    assert details["answered_by"] == ["local/smollm2-summarizer"] and reply.stages[0].usage.model == "local/smollm2-summarizer"
    assert reply.compressed_tokens <= 60 and reply.stages[0].usage.completion_tokens > 0


def test_the_local_summariser_on_the_real_model(local_dir):
    engine = Ragpress(Settings(embedding_model="hashing", local_model_dirs=f"smollm2={local_dir}",
                               local_device="cpu", local_threads=1))
    docs = [convert.document_from_pb(d, i) for i, d in enumerate(DOCS)]
    pipeline = [Stage("extractive", budget=Budget(max_tokens=300)), Stage("abstractive", {"max_new_tokens": 48})]
    result = engine.compress(QUERY, docs, 50, pipeline=pipeline)
    stage = result.stages[-1]
    assert result.compressed_tokens <= 50
    assert stage.usage.model == "local/smollm2-summarizer" and 0 < stage.usage.completion_tokens <= 48
    assert stage.usage.cost_usd == 0.0
    details = stage.details
    assert details["outcome"] in ("passed", "repaired", "replaced")
    ids = {d.id for d in docs}
    assert {d.id for d in result.documents} <= ids
    if details["outcome"] != "replaced":
        # What it returns states nothing the documents lack, and names its documents.
        source = faithfulness.index(f"{d.title}\n{d.text}" for d in docs)
        for item in details["attribution"]:
            assert faithfulness.check(item["text"], source).ok and set(item["documents"]) <= ids
    again = engine.compress(QUERY, docs, 50, pipeline=pipeline)
    assert again.context == result.context and again.stages[-1].details["cache"] == "hit"
    assert again.stages[-1].usage == type(stage.usage)("local/smollm2-summarizer", cached=True)
    # A deadline that has passed stops the local summariser.
    from compressors import registry
    from compressors.base import CompressionJob

    method = registry.create("abstractive", {"cache": False}, engine.models)
    job = CompressionJob(QUERY, tuple(docs), 50, engine.models.tokenizers.get("gpt-4o"), deadline=time.monotonic())
    with pytest.raises(DeadlineExceeded):
        method.compress(job)


async def test_generate_with_an_abstractive_pipeline_counts_the_summariser_in_the_ledger(served, upstream):
    stub, running = served
    b = upstream.reset(reply="Paris has 2,102,650 inhabitants.")
    req = pb.GenerateRequest(query=QUERY, documents=DOCS, model="openai/gpt-4o-mini")
    stage = req.pipeline.add(method="abstractive")
    stage.options.update({"summarizer": SUMMARIZER, "cache": False})
    req.budget.max_tokens = 40
    running.recorder.flush(30)
    before = sum(r.compute_usd for r in running.recorder.query(convert.usage_query_from_pb(pb.GetUsageRequest())))
    reply = await stub.Generate(req)
    # Two upstream calls: the summariser's, then the answer's, whose prompt holds the summary.
    assert len(b.requests) == 2 and "2,102,650" in b.requests[1]["messages"][-1]["content"]
    summariser_cost = reply.compression.stages[0].usage.cost_usd
    assert reply.text == b.reply and summariser_cost > 0
    assert running.recorder.flush(30)
    after = sum(r.compute_usd for r in running.recorder.query(convert.usage_query_from_pb(pb.GetUsageRequest())))
    assert after - before >= summariser_cost
