"""The LlamaIndex components in a real LlamaIndex query pipeline: a RetrieverQueryEngine
whose retriever reads a ragpress collection and whose postprocessor compresses the nodes,
in-process and against a real gRPC server on loopback. The LLM is LlamaIndex's own
MockLLM, which answers with the prompt it was given, so the test sees exactly the
context that reached the model."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode  # noqa: E402

from middleware.errors import InvalidArgument, UnknownName  # noqa: E402
from middleware.integrations.llamaindex import RagpressNodePostprocessor, RagpressRetriever  # noqa: E402
from middleware.library import Ragpress  # noqa: E402
from middleware.settings import Settings  # noqa: E402
from tests.servers import ThreadedServer  # noqa: E402

QUERY = "How many inhabitants does Paris have?"
CITIES = [
    {"id": "paris", "title": "Paris", "text": "Paris is the capital of France. Paris has 2,102,650 inhabitants. "
                                              "The Seine flows through it. Paris hosts many museums.",
     "metadata": {"country": "fr"}},
    {"id": "lyon", "title": "Lyon", "text": "Lyon is known for its cuisine. It has 522,250 inhabitants.",
     "metadata": {"country": "fr"}},
    {"id": "bread", "title": "Bread", "text": "Bread is baked from flour and water in hot ovens for an hour.",
     "metadata": {"country": "any"}},
]


@pytest.fixture(scope="module")
def engine():
    # The real embedders (the retriever below is lexical): which sentence answers is the
    # compressor's judgement, and hashing vectors would make it arbitrary.
    eng = Ragpress(Settings(port=0, persist_collections=False, ledger_url="none"))
    from retrievers import ops
    from retrievers.base import IndexRequest
    from middleware.library import as_document

    ops.index(eng.collections, "default", IndexRequest("cities", tuple(as_document(d, i) for i, d in
                                                                       enumerate(CITIES)), (), None))
    return eng


@pytest.fixture(scope="module")
def server(engine):
    with ThreadedServer(engine) as srv:
        yield srv


@pytest.fixture(params=["in-process", "remote"])
def where(request, engine):
    if request.param == "remote":
        return {"target": request.getfixturevalue("server").address}
    return {"engine": engine}


def _query_engine(where, budget):
    # As the README shows it.
    return RetrieverQueryEngine.from_args(
        RagpressRetriever("cities", k=3, mode="lexical", **where),
        node_postprocessors=[RagpressNodePostprocessor(budget=budget, **where)], llm=MockLLM())


def test_a_query_engine_answers_from_the_compressed_nodes(where):
    response = _query_engine(where, 40).query(QUERY)
    prompt = str(response)  # MockLLM answers with its prompt
    assert "2,102,650" in prompt and QUERY in prompt
    assert "Bread is baked" not in prompt
    sources = response.source_nodes
    assert [s.node.node_id for s in sources][0] == "paris"
    stats = sources[0].node.metadata["ragpress"]
    assert stats["compressed_tokens"] <= stats["budget_tokens"] == 40 < stats["original_tokens"]
    assert sources[0].node.metadata["country"] == "fr" and sources[0].node.metadata["title"] == "Paris"
    assert all(s.node.get_content() in prompt for s in sources)
    assert "original_tokens" not in prompt  # our statistics are not context


async def test_the_async_pipeline_gives_the_same_answer(where):
    sync = _query_engine(where, 20).query(QUERY)
    async_ = await _query_engine(where, 20).aquery(QUERY)
    assert str(sync) == str(async_)
    assert [s.node.get_content() for s in sync.source_nodes] == [s.node.get_content() for s in async_.source_nodes]


def test_nodes_keep_order_ids_scores_and_are_not_mutated(engine):
    nodes = [NodeWithScore(node=TextNode(id_="a", text="Paris has 2,102,650 inhabitants. Bread is baked daily.",
                                         metadata={"k": 1}), score=0.9),
             NodeWithScore(node=ImageNode(id_="img", text="a picture"), score=0.5),
             NodeWithScore(node=TextNode(id_="a", text="Paris is in France. Lyon has 522,250 inhabitants."),
                           score=0.4)]
    before = [(n.node.node_id, n.node.get_content(), dict(n.node.metadata)) for n in nodes]
    post = RagpressNodePostprocessor(engine=engine, budget=200)
    out = post.postprocess_nodes(nodes, query_str=QUERY)
    pairs = [(n.node.node_id, n.score) for n in out]
    assert pairs[:2] == [("a", 0.9), ("img", 0.5)] and pairs[2:] in ([], [("a", 0.4)])  # input order kept
    assert out[1] is nodes[1]  # the image passes through
    assert [(n.node.node_id, n.node.get_content(), dict(n.node.metadata)) for n in nodes] == before
    assert out[0].node.metadata["k"] == 1 and "ragpress" in out[0].node.metadata


def test_bad_use_fails_clearly(engine):
    post = RagpressNodePostprocessor(engine=engine, budget=50)
    with pytest.raises(InvalidArgument, match="needs the query"):
        post.postprocess_nodes([NodeWithScore(node=TextNode(text="x"), score=1.0)])
    with pytest.raises(InvalidArgument):
        RagpressNodePostprocessor(engine=engine, budget=-3)
    with pytest.raises(InvalidArgument, match="not both"):
        RagpressNodePostprocessor(engine=engine, target="127.0.0.1:1")
    with pytest.raises(UnknownName, match="retrieval mode"):
        RagpressRetriever("cities", mode="nope", engine=engine)
    assert post.postprocess_nodes([], query_bundle=QueryBundle(QUERY)) == []


def test_the_retriever_filters_and_scores(engine):
    retriever = RagpressRetriever("cities", k=3, mode="dense", filter={"country": "fr"}, engine=engine)
    nodes = retriever.retrieve("capital of France")
    assert {n.node.node_id for n in nodes} == {"paris", "lyon"}
    assert nodes == sorted(nodes, key=lambda n: -n.score)
    assert asyncio.run(retriever.aretrieve("capital of France"))[0].node.node_id == nodes[0].node.node_id
