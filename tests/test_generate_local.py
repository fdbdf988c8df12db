"""Generate over a real gRPC server with the local SmolLM2: answers, streaming,
prefix-cache reuse across calls, fallback from a failing upstream, cancellation."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from middleware.library import Ragpress
from middleware.server import start
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc
from tests.conftest import DATA_DIR

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier"),
              pytest.mark.filterwarnings("ignore:Accessing the 'model_(computed_)?fields' attribute")]

LOCAL = "local/smollm2"


@pytest.fixture(scope="module")
async def engine(upstream):
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(DATA_DIR), local_device="cpu",
                        local_threads=1, llm_api_base=upstream.api_base, llm_api_key="sk-test", local_max_new_tokens=4,
                        prefix_cache_block=16, warm_up=False)
    engine = Ragpress(settings)
    # Load (on a fresh clone: convert) the model before the tests' deadlines start to run.
    await asyncio.to_thread(engine.models.local_runtime, LOCAL)
    return engine


@pytest.fixture(scope="module")
async def stub(engine):
    running = await start(engine.settings, engine)
    await running.ready
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield pb_grpc.RagpressServiceStub(ch)
    await running.stop(grace=1)


def _request(model: str = LOCAL, **kw) -> pb.GenerateRequest:
    req = pb.GenerateRequest(
        query="What is the capital of France?",
        documents=[pb.Document(id="a", title="France", text="France is a country in Europe. Its capital is Paris."),
                   pb.Document(id="b", title="Bread", text="Bread is baked. Baguettes are long.")],
        model=model, system_prompt="Answer in a few words.", **kw)
    req.budget.max_tokens = 30
    return req


async def test_generate_on_the_local_model_reuses_the_prefix_on_the_next_call(stub, engine):
    first = await stub.Generate(_request(), timeout=120)
    second = await stub.Generate(_request(), timeout=120)
    assert first.text and first.text == second.text and first.model == LOCAL and not first.fell_back
    ids = engine.models.local_runtime(LOCAL).encode_chat(
        [{"role": "system", "content": "Answer in a few words."},
         {"role": "user",
          "content": f"Context:\n{second.compression.context}\n\nQuestion: What is the capital of France?\nAnswer:"}])
    assert second.usage.prompt_tokens == len(ids)
    assert first.usage.cached_prompt_tokens == 0 < second.usage.cached_prompt_tokens < len(ids)
    assert 1 <= second.usage.completion_tokens <= 4 and second.cost.cost_usd == 0
    # Budget counted in SmolLM2's own tokenizer.
    assert second.compression.tokenizer == "hf:smollm2" and second.compression.compressed_tokens <= 30


async def test_generate_stream_on_the_local_model(stub):
    deltas, final = [], None
    async for event in stub.GenerateStream(pb.GenerateStreamRequest(request=_request()), timeout=120):
        if event.WhichOneof("event") == "text_delta":
            deltas.append(event.text_delta)
        else:
            final = event.final_response
    assert final is not None and deltas and "".join(deltas) == final.text


async def test_a_failing_upstream_falls_back_to_the_local_model_and_says_so(stub, upstream):
    upstream.reset(fail_first=5)
    reply = await stub.Generate(_request("openai/gpt-4o-mini", fallback=pb.FALLBACK_POLICY_LOCAL), timeout=120)
    assert reply.fell_back and reply.model == LOCAL and "500" in reply.fallback_reason and reply.text
    assert len(upstream.behaviour.requests) == 1


async def test_a_cancelled_stream_stops_local_generation(stub, engine):
    runtime = engine.models.local_runtime(LOCAL)
    before = runtime.finished["cancelled"]
    req = _request()
    req.generation.max_tokens = 200
    call = stub.GenerateStream(pb.GenerateStreamRequest(request=req), timeout=120)
    async for event in call:
        assert event.WhichOneof("event") == "text_delta"
        call.cancel()
        break
    for _ in range(600):
        if runtime.finished["cancelled"] > before:
            break
        await asyncio.sleep(0.05)
    assert runtime.finished["cancelled"] == before + 1


def test_cli_generate_answers_with_the_local_model(monkeypatch, capsys):
    import json

    from middleware.cli import main

    for key, value in {"DATA_DIR": str(DATA_DIR), "LOCAL_THREADS": "1", "EMBEDDING_MODEL": "hashing",
                       "LOCAL_DEVICE": "cpu"}.items():
        monkeypatch.setenv("RAGPRESS_" + key, value)
    argv = ["generate", "--query", "What is the capital of France?", "--doc", "The capital of France is Paris.",
            "--doc", "Bread is baked.", "--target-tokens", "40", "--max-tokens", "4"]
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == LOCAL and out["text"] and 1 <= out["usage"]["completion_tokens"] <= 4
    assert out["usage"]["prompt_tokens"] > 0 and out["cost"]["cost_usd"] == 0
    assert main(argv + ["--keep-ratio", "0.5"]) == 2
    assert "exactly one of --target-tokens or --keep-ratio" in capsys.readouterr().err


def test_library_generate_in_process(smollm2):
    settings = Settings(embedding_model="hashing", data_dir=str(DATA_DIR), local_device="cpu",
                        local_threads=1, local_max_new_tokens=3)
    engine = Ragpress(settings)
    docs = [{"id": "a", "text": "The capital of France is Paris."}, {"id": "b", "text": "Bread is baked."}]
    first = engine.generate("What is the capital of France?", docs, 40, model=LOCAL, tenant="t1")
    second = engine.generate("What is the capital of France?", docs, 40, model=LOCAL, tenant="t1")
    assert first.model == LOCAL and first.text == second.text and 1 <= first.usage.completion_tokens <= 3
    assert first.usage.cached_prompt_tokens == 0 < second.usage.cached_prompt_tokens
    stats = engine.models.loaded_local_runtimes()[LOCAL].cache.stats()
    assert stats["hit_tokens"] == second.usage.cached_prompt_tokens and stats["lookups"] == 2
