"""Method "soft" through the service: Generate and GenerateStream with soft tokens on the local
SmolLM2 (real MiniLM, real projector, real gRPC server on loopback), the prefix cache across
calls, the budget in soft tokens, vectors reused from a collection, and FAILED_PRECONDITION
wherever soft tokens cannot go."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from compressors.projector import Projector
from middleware.client import RagpressClient
from middleware.library import Ragpress
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc
from tests.conftest import DATA_DIR
from tests.servers import ThreadedServer

LOCAL = "local/smollm2"
K = Projector.load().config.k  # soft tokens per chunk of the shipped projector
DOCS = [pb.Document(id="a", title="France", text="France is a country in Europe. Its capital is Paris."),
        pb.Document(id="b", title="Bread", text="Bread is baked from flour. Baguettes are long.")]


def _request(model: str = LOCAL, tokens: int = 50, **kw) -> pb.GenerateRequest:
    req = pb.GenerateRequest(query="What is the capital of France?", documents=DOCS, model=model, method="soft", **kw)
    req.budget.max_tokens = tokens
    return req


def _code(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value.code(), info.value.details()


@pytest.fixture(scope="module")
def fast_stub(tmp_path_factory):
    engine = Ragpress(Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path_factory.mktemp("d")),
                               warm_up=False, ledger_url="none"))
    with ThreadedServer(engine) as srv, grpc.insecure_channel(srv.address) as channel:
        yield pb_grpc.RagpressServiceStub(channel)


def test_a_hosted_target_cannot_take_soft_tokens(fast_stub):
    for call in (fast_stub.Generate, lambda r, timeout: list(fast_stub.GenerateStream(
            pb.GenerateStreamRequest(request=r), timeout=timeout))):
        code, details = _code(call, _request(model="gpt-4o-mini"), timeout=180)
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "local/" in details and "gpt-4o-mini" in details and "input embeddings" in details


def test_compress_cannot_return_soft_tokens_as_text(fast_stub):
    req = pb.CompressRequest(query="q", documents=DOCS, model="gpt-4o", method="soft")
    req.budget.max_tokens = 10
    code, details = _code(fast_stub.Compress, req, timeout=180)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not text" in details and "Generate" in details


def test_soft_options_are_checked(fast_stub):
    req = pb.CompressRequest(query="q", documents=DOCS, model="gpt-4o")
    req.budget.max_tokens = 10
    shipped = Projector.load().config.k
    req.pipeline.add(method="soft").options.update({"k": shipped + 1})
    code, details = _code(fast_stub.Compress, req, timeout=180)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and f"k={shipped} " in details and "train-projector" in details
    assert f"--k {shipped + 1}" in details
    req.pipeline[0].options.Clear()
    req.pipeline[0].options.update({"tokens": 3})
    code, details = _code(fast_stub.Compress, req, timeout=180)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown option" in details


# -- on the real models ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = Settings(port=0, data_dir=str(DATA_DIR), local_device="cpu", local_threads=1,
                        local_max_new_tokens=6, prefix_cache_block=4, warm_up=False, ledger_url="none",
                        persist_collections=False)
    with ThreadedServer(Ragpress(settings)) as srv:
        yield srv


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.RagpressServiceStub(channel)


@pytest.mark.slow
def test_generate_with_soft_tokens_counts_them_and_reuses_the_prefix(stub, server):
    first = stub.Generate(_request(), timeout=300)
    second = stub.Generate(_request(), timeout=300)
    assert first.text and first.text == second.text and first.model == LOCAL
    soft_stage = first.compression.stages[-1]
    assert soft_stage.method == "soft" and soft_stage.output_tokens == 2 * K == first.compression.compressed_tokens
    assert soft_stage.details["soft_tokens"] == 2 * K and soft_stage.details["vectors_reused"] == 0
    assert soft_stage.details["chunks"] == 2  # each short document is one chunk of K soft tokens
    assert [d.id for d in first.compression.documents] == ["a", "b"] and first.compression.context == ""
    # The prompt: the chat template around 2K soft tokens (K per document), each counted once.
    runtime = server.engine.models.local_runtime(LOCAL)
    from middleware.llm.soft import MARKER

    text_ids = runtime.encode_chat([{"role": "system", "content": "Answer the question using only the context. Be brief."},
                                    {"role": "user", "content": "Context:\nX\n\nQuestion: What is the capital of France?\nAnswer:"}])
    soft = runtime.soft_prompt([{"role": "system", "content": "Answer the question using only the context. Be brief."},
                                {"role": "user", "content": f"Context:\n{MARKER}{MARKER}\n\nQuestion: What is the "
                                 "capital of France?\nAnswer:"}], [[[0.0] * 576] * K, [[0.0] * 576] * K])
    # The text prompt's context is "X" (one token); the soft one holds 2K vectors there.
    assert first.usage.prompt_tokens == len(soft.ids) and abs(len(soft.ids) - (len(text_ids) + 2 * K - 1)) <= 2
    assert first.usage.original_prompt_tokens > first.usage.prompt_tokens + 20
    assert first.usage.soft_prompt_tokens == 2 * K
    assert first.usage.cached_prompt_tokens == 0 < second.usage.cached_prompt_tokens


@pytest.mark.slow
def test_generate_stream_with_soft_tokens(stub):
    events = list(stub.GenerateStream(pb.GenerateStreamRequest(request=_request()), timeout=300))
    final = events[-1].final_response
    assert final.text and "".join(e.text_delta for e in events[:-1]) == final.text
    assert final.compression.compressed_tokens == 2 * K


@pytest.mark.slow
def test_the_budget_keeps_the_documents_nearest_the_question(stub):
    reply = stub.Generate(_request(tokens=2 * K - 1), timeout=300)  # room for one document's K
    assert [d.id for d in reply.compression.documents] == ["a"] and list(reply.compression.dropped_ids) == ["b"]
    assert reply.compression.compressed_tokens == K and reply.compression.budget_tokens == 2 * K - 1


LONG = pb.Document(id="long", title="Paris", text=(
    "Paris is the capital and the largest city of France, with a little over two million residents living in its "
    "historic centre. The Seine river flows through the middle of the city from east to west, passing under "
    "thirty-seven different bridges on its way. Bread in France is very often bought fresh every single day from a "
    "local bakery, and the long baguette is the most common loaf."))


@pytest.mark.slow
def test_a_long_document_becomes_one_group_of_k_per_chunk_and_the_budget_keeps_the_nearest_chunks(stub):
    req = _request(tokens=50)
    del req.documents[:]
    req.documents.append(LONG)
    whole = stub.Generate(req, timeout=300).compression
    # Windows of 32 words (68 words: 32, then 36, the last 4 too few for a window of their own), K each.
    assert whole.stages[-1].details["chunks"] == 2 and whole.compressed_tokens == 2 * K
    req.budget.max_tokens = 2 * K - 1
    cut = stub.Generate(req, timeout=300).compression
    # One chunk fits: the one about the capital, the nearest to the question.
    assert cut.compressed_tokens == K and cut.stages[-1].details["chunks_kept"] == 1
    assert [d.id for d in cut.documents] == ["long"]


@pytest.mark.slow
def test_a_collections_stored_vectors_are_reused(stub, server):
    with RagpressClient(server.address) as client:
        client.index("soft-test", [{"id": d.id, "title": d.title, "text": d.text} for d in DOCS])
    req = pb.GenerateRequest(query="What is the capital of France?", model=LOCAL, method="soft",
                             collection="soft-test", retrieve_top_k=2)
    req.budget.max_tokens = 50
    reply = stub.Generate(req, timeout=300)
    assert reply.compression.stages[-1].details["vectors_reused"] == 2
    # The stored vectors (the torch MiniLM's) stand in for the int8 ONNX ones the method computes
    # itself: the same answer as with the documents.
    assert reply.text == stub.Generate(_request(), timeout=300).text


@pytest.mark.slow
def test_chunks_are_read_by_the_int8_onnx_minilm(server):
    from compressors import registry
    from compressors.projector import document_text
    from middleware.types import Document

    models = server.engine.models
    soft = registry.create("soft", {}, models)
    onnx = models.onnx_embedder()
    assert models.fast_embedder() is onnx and onnx.name.startswith("onnx-int8")
    docs = [Document(id=d.id, title=d.title, text=d.text) for d in DOCS]
    ctx = soft.encode("What is the capital of France?", docs, 50)
    texts = [document_text(d.title, d.text) for d in docs]
    lexicon = soft.lexicon()
    want = soft.projector.project(onnx.embed(texts), texts, lexicon)
    got = np.stack([v.reshape(soft.k, -1) for v in ctx.vectors])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The shipped projector reads each window's own tokens too: another text gives other soft tokens.
    assert soft.projector.config.lexical_tokens > 0
    assert not np.allclose(soft.projector.project(onnx.embed(texts), texts[::-1], lexicon), want, atol=1e-3)
    # The torch model's vectors are near but not equal: the method really reads the int8 build.
    torch_vectors = models.embedder().embed(texts)
    assert not np.allclose(soft.projector.project(torch_vectors, texts, lexicon), want, atol=1e-3)


@pytest.mark.slow
def test_an_embedder_the_projector_was_not_trained_on_is_refused(tmp_path):
    engine = Ragpress(Settings(embedding_model="hashing", data_dir=str(DATA_DIR), local_device="cpu",
                               local_threads=1, warm_up=False, ledger_url="none"))
    from middleware.errors import FailedPrecondition

    with pytest.raises(FailedPrecondition, match="all-MiniLM-L6-v2"):
        engine.generate("What is the capital of France?", [{"id": "a", "text": "Paris."}], 10, model=LOCAL,
                        method="soft")


@pytest.mark.slow
def test_the_cli_generates_with_soft_tokens(monkeypatch, capsys):
    import json

    from middleware.cli import main

    monkeypatch.setenv("RAGPRESS_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("RAGPRESS_LEDGER_URL", "none")
    code = main(["generate", "--model", LOCAL, "--method", "soft", "--target-tokens", "10", "--max-tokens", "4",
                 "--query", "What is the capital of France?", "--doc", DOCS[0].text, "--doc", DOCS[1].text, "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usage"]["soft_prompt_tokens"] == 2 * K == out["compressed_tokens"] and out["text"]
