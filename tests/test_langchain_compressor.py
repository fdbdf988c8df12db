"""The contract suite a standard one for document compressors would have, run on
the in-process and the remote (gRPC) compressor alike."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re

import pytest
from langchain_core.documents import Document

from middleware.errors import InvalidArgument
from middleware.library import Ragpress
from middleware.settings import Settings
from middleware.integrations.langchain import RagpressCompressor
from tests.servers import ThreadedServer

QUERY = "How many people live in Paris?"
DOCS = [
    Document(page_content="Paris is the capital of France. It has 2,102,650 inhabitants. The Seine flows through it.",
             metadata={"source": "wiki/Paris", "rank": 1}, id="paris"),
    Document(page_content="Bread is baked in ovens. Baguettes are long and thin.", metadata={"source": "wiki/Bread"},
             id="bread"),
    Document(page_content="Lyon has 522,250 inhabitants. Lyon is known for its cuisine.",
             metadata={"source": "wiki/Lyon", "tags": ["city", "fr"]}),
    Document(page_content="The population of Paris fell after 1954. Many people moved to the suburbs.",
             metadata={"source": "wiki/Paris-history"}, id="paris"),  # a repeated id is allowed
]


@pytest.fixture(scope="module")
def engine():
    return Ragpress(Settings(port=0, embedding_model="hashing", persist_collections=False, ledger_url="none"))


@pytest.fixture(scope="module")
def server(engine):
    with ThreadedServer(engine) as srv:
        yield srv


@pytest.fixture(params=["in-process", "remote"])
def make(request, engine):
    def build(**kw) -> RagpressCompressor:
        if request.param == "remote":
            return RagpressCompressor(target=request.getfixturevalue("server").address, **kw)
        return RagpressCompressor(engine=engine, **kw)
    return build


def _without_request_id(docs):
    out = []
    for d in docs:
        meta = dict(d.metadata)
        meta["ragpress"] = {k: v for k, v in meta["ragpress"].items() if k != "request_id"}
        out.append((d.id, d.page_content, meta))
    return out


def test_empty_input_gives_empty_output(make):
    assert make(budget=30).compress_documents([], QUERY) == []
    assert asyncio.run(make(budget=30).acompress_documents([], QUERY)) == []


async def test_sync_and_async_give_the_same_documents(make):
    comp = make(budget=40)
    sync = comp.compress_documents(DOCS, QUERY)
    async_ = await comp.acompress_documents(DOCS, QUERY)
    assert sync and _without_request_id(sync) == _without_request_id(async_)


@pytest.mark.parametrize("budget", [25, 60, 0.5])
def test_ids_metadata_and_order_are_preserved(make, budget):
    out = make(budget=budget).compress_documents(DOCS, QUERY)
    assert out, "the budget leaves room for at least one sentence"
    # each output is a compressed version of a distinct input, in input order
    positions = []
    for doc in out:
        candidates = [i for i, d in enumerate(DOCS) if d.id == doc.id
                      and {k: v for k, v in doc.metadata.items() if k != "ragpress"} == d.metadata
                      and all(s in d.page_content for s in re.split(r"(?<=[.!?])\s+", doc.page_content))]
        assert candidates, f"{doc!r} matches no input"
        positions.append(candidates[0])
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    stats = out[0].metadata["ragpress"]
    assert stats["compressed_tokens"] <= stats["budget_tokens"] < stats["original_tokens"]
    assert all(d.metadata["ragpress"]["compressed_chars"] <= d.metadata["ragpress"]["original_chars"] for d in out)
    assert stats["tokenizer"] == "o200k_base" and stats["methods"] == ["extractive"]


def test_the_input_documents_are_not_mutated(make):
    before = [d.model_copy(deep=True) for d in DOCS]
    make(budget=30).compress_documents(DOCS, QUERY)
    assert DOCS == before


def test_without_stats_key_the_metadata_is_untouched(make):
    out = make(budget=1.0, stats_key=None).compress_documents(DOCS, QUERY)
    assert out
    for doc in out:
        assert any(doc.id == d.id and doc.metadata == d.metadata for d in DOCS)


@pytest.mark.slow
def test_real_model_output_is_the_engines_own(real_engine):
    """The adapter adds nothing and loses nothing: its texts are the engine's result."""
    out = RagpressCompressor(engine=real_engine, budget=50).compress_documents(DOCS, QUERY)
    direct = real_engine.compress(QUERY, [{"id": str(i), "text": d.page_content} for i, d in enumerate(DOCS)], 50)
    assert out and [d.page_content for d in out] == [d.text for d in direct.documents]
    assert [d.metadata["source"] for d in out] == [DOCS[int(d.id)].metadata["source"] for d in direct.documents]


def test_bad_configuration_fails_at_construction(engine):
    with pytest.raises(InvalidArgument, match="max_tokens must be >= 1"):
        RagpressCompressor(engine=engine, budget=0)
    with pytest.raises(InvalidArgument, match="not both"):
        RagpressCompressor(engine=engine, target="127.0.0.1:1")


class _NoThreads(concurrent.futures.ThreadPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("the async path used a worker thread")


def test_remote_async_path_uses_no_threads(server):
    """acompress_documents on a server awaits grpc.aio; it never falls back to a thread."""
    comp = RagpressCompressor(target=server.address, budget=30)

    async def main():
        asyncio.get_running_loop().set_default_executor(_NoThreads())
        return await asyncio.gather(*(comp.acompress_documents(DOCS, QUERY) for _ in range(4)))

    results = asyncio.run(main())
    assert all(_without_request_id(r) == _without_request_id(results[0]) for r in results)


async def test_as_runnable_in_a_chain(make):
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    comp = make(budget=25)
    chain = ({"documents": RunnableLambda(lambda q: DOCS), "query": RunnablePassthrough()}
             | comp.as_runnable()
             | ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}"))
    prompt = chain.invoke(QUERY).to_string()
    aprompt = (await chain.ainvoke(QUERY)).to_string()
    context = "\n\n".join(d.page_content for d in comp.compress_documents(DOCS, QUERY))
    assert context and prompt == aprompt == f"Human: Context:\n{context}\n\nQuestion: {QUERY}"


class _Recorder:
    """A real callback handler that keeps the custom events it receives."""

    def __new__(cls):
        from langchain_core.callbacks import BaseCallbackHandler

        class Handler(BaseCallbackHandler):
            def __init__(self):
                self.events = []

            def on_custom_event(self, name, data, *, run_id, tags=None, metadata=None, **kwargs):
                self.events.append((name, data))

        return Handler()


async def test_callbacks_receive_the_compression_figures(make):
    comp = make(budget=25)
    sync_handler, async_handler, chain_handler = _Recorder(), _Recorder(), _Recorder()
    kept = comp.compress_documents(DOCS, QUERY, callbacks=[sync_handler])
    await comp.acompress_documents(DOCS, QUERY, callbacks=[async_handler])
    comp.as_runnable().invoke({"documents": DOCS, "query": QUERY}, config={"callbacks": [chain_handler]})
    for handler in (sync_handler, async_handler, chain_handler):
        assert [name for name, _ in handler.events] == ["ragpress_compression"]
        data = handler.events[0][1]
        assert data["budget_tokens"] == 25 and 0 < data["compressed_tokens"] <= 25 < data["original_tokens"]
        assert data["methods"] == ["extractive"] and data["request_id"]
        assert len(data["dropped_ids"]) == len(DOCS) - len(kept)


def test_remote_calls_reuse_one_channel(server):
    comp = RagpressCompressor(target=server.address, budget=30)
    backend = comp._backend
    first = comp.compress_documents(DOCS, QUERY)
    client = backend.client()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: comp.compress_documents(DOCS, QUERY), range(8)))
    assert backend.client() is client  # the same channel served every call, from every thread
    assert all(_without_request_id(r) == _without_request_id(first) for r in results)
    backend.close()
    assert _without_request_id(comp.compress_documents(DOCS, QUERY)) == _without_request_id(first)
    assert backend.client() is not client  # closed, then reopened on the next call
    backend.close()
