"""Generate with a demonstration pool and a strategy, through a real gRPC server and
litellm against a real OpenAI-compatible server on loopback (slow: litellm's stack)."""

from __future__ import annotations

import grpc
import pytest

from middleware.library import Ragpress
from middleware.server import start
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc
from tests.test_demonstrations import POOL

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier"),
    pytest.mark.filterwarnings("ignore:Accessing the 'model_(computed_)?fields' attribute"),
]


@pytest.fixture(scope="module")
async def stub(upstream, tmp_path_factory):
    settings = Settings(port=0, embedding_model="hashing", llm_api_base=upstream.api_base, llm_api_key="sk-test",
                        warm_up=False, data_dir=str(tmp_path_factory.mktemp("gen-demos")))
    running = await start(settings, Ragpress(settings))
    await running.ready
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stub = pb_grpc.RagpressServiceStub(ch)
        await stub.IndexDemonstrations(pb.IndexDemonstrationsRequest(pool="trec", demonstrations=[
            pb.Demonstration(id=d["id"], input=d["input"], output=d["output"], label=d["label"]) for d in POOL]),
            metadata=(("x-ragpress-tenant", "acme"),))
        yield stub
    await running.stop(grace=1)


def _request(**select) -> pb.GenerateRequest:
    req = pb.GenerateRequest(query="Who painted the ceiling ?", model="openai/gpt-4o-mini",
                             documents=[pb.Document(id="a", text="Michelangelo painted the Sistine Chapel ceiling.")])
    req.budget.max_tokens = 50
    req.select_demonstrations.CopyFrom(pb.SelectDemonstrationsRequest(**select))
    return req


async def test_generate_selects_places_and_counts_the_demonstrations(stub, upstream):
    b = upstream.reset()
    req = _request(pool_name="trec", max_demonstrations=4, budget=pb.Budget(max_tokens=30))
    # The first litellm call imports its provider stack: seconds to minutes on a busy CPU.
    reply = await stub.Generate(req, metadata=(("x-ragpress-tenant", "acme"),), timeout=300)
    chosen = reply.demonstrations
    assert chosen.method == "similar" and chosen.model == "openai/gpt-4o-mini" and chosen.demonstrations
    assert chosen.demonstrations[-1].id == "h2" and 0 < chosen.selected_tokens <= 30 < chosen.original_tokens
    user = b.requests[0]["messages"][-1]["content"]
    assert user.startswith(chosen.prompt) and "Question: Who painted the Mona Lisa ?\nAnswer: person" in user
    # The savings count the fixed-k demonstrations dropped by the budget, like context tokens.
    assert reply.usage.original_prompt_tokens - reply.usage.prompt_tokens >= \
        chosen.original_tokens - chosen.selected_tokens


async def test_generate_rejects_two_sources_of_demonstrations_and_unknown_pools(stub, upstream):
    upstream.reset()
    both = _request(pool_name="trec")
    both.demonstrations.add(id="x", input="a", output="b")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(both, metadata=(("x-ragpress-tenant", "acme"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not both" in info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(_request(pool_name="trec"), metadata=(("x-ragpress-tenant", "other"),))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "tenant 'other'" in info.value.details()
