"""Our LangChain components beyond the standard suites: filters, modes, scores,
chunked documents, and one collection shared by LangChain and the gRPC service."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from middleware.client import RagpressClient
from middleware.errors import InvalidArgument, UnknownName
from middleware.library import Ragpress
from middleware.settings import Settings
from retrievers import ChunkingParams
from middleware.integrations.langchain import RagpressEmbeddings, RagpressRetriever, RagpressVectorStore
from tests.servers import ThreadedServer

DOCS = [
    Document(page_content="Paris is the capital of France.", metadata={"country": "fr"}, id="paris"),
    Document(page_content="Lyon is famous for food.", metadata={"country": "fr"}, id="lyon"),
    Document(page_content="Berlin is the capital of Germany.", metadata={"country": "de"}, id="berlin"),
]


@pytest.fixture
def store():
    s = RagpressVectorStore(RagpressEmbeddings("hashing"))
    s.add_documents(DOCS)
    return s


def test_filter_mode_and_scores(store):
    french = store.similarity_search("capital", k=3, filter={"country": "fr"})
    assert [d.id for d in french] == ["paris", "lyon"]
    lexical = store.similarity_search_with_score("famous food", k=3, mode="lexical")
    assert [d.id for d, _ in lexical] == ["lyon"]
    relevance = store.similarity_search_with_relevance_scores("capital of Germany", k=1)
    assert relevance[0][0].id == "berlin" and 0.5 < relevance[0][1] <= 1.0
    with pytest.raises(UnknownName, match="retrieval mode"):
        store.similarity_search("x", mode="nope")


def test_delete_all_and_unserialisable_metadata(store):
    with pytest.raises(InvalidArgument, match="JSON-like"):
        store.add_texts(["x"], [{"when": object()}])
    store.delete()
    assert store.similarity_search("capital", k=3) == []


def test_long_documents_come_back_as_chunks():
    store = RagpressVectorStore(RagpressEmbeddings("hashing"), chunking=ChunkingParams(max_tokens=16, overlap_tokens=4))
    words = [f"w{i}" for i in range(40)]
    words[30] = "needle"
    store.add_texts([" ".join(words)], [{"a": 1}], ids=["long"])
    hit = store.similarity_search("needle", k=1, mode="lexical")[0]
    assert hit.id.startswith("long#") and "needle" in hit.page_content and hit.metadata == {"a": 1}
    assert store.get_by_ids(["long"])[0].page_content == " ".join(words)


def test_retriever_per_call_options_and_score_key():
    engine = Ragpress(Settings(embedding_model="hashing", persist_collections=False))
    RagpressVectorStore(engine=engine, collection="c").add_documents(DOCS)
    retriever = RagpressRetriever(engine=engine, collection="c", k=3, score_key="score")
    docs = retriever.invoke("capital", filter={"country": "de"})
    assert [d.id for d in docs] == ["berlin"] and isinstance(docs[0].metadata["score"], float)
    assert [d.id for d in retriever.invoke("famous food", mode="lexical")] == ["lyon"]
    with pytest.raises(UnknownName):
        RagpressRetriever(engine=engine, collection="c", mode="nope")
    with pytest.raises(InvalidArgument, match="top_k"):
        RagpressRetriever(engine=engine, collection="c", k=0)


def test_one_collection_for_langchain_and_the_service(tmp_path):
    """Documents added through the LangChain store of an engine are served over gRPC,
    and survive a restart (the store saves after each change)."""
    settings = Settings(port=0, embedding_model="hashing", data_dir=str(tmp_path))
    engine = Ragpress(settings)
    RagpressVectorStore(engine=engine, collection="shared").add_documents(DOCS)
    with ThreadedServer(engine) as srv, RagpressClient(srv.address) as client:
        assert client.retrieve("shared", "capital of Germany", top_k=1)[0][0].id == "berlin"
        remote = RagpressRetriever(target=srv.address, collection="shared", k=1)
        assert [d.id for d in remote.invoke("famous food", mode="lexical")] == ["lyon"]
    reopened = RagpressVectorStore(engine=Ragpress(settings), collection="shared")
    assert sorted(d.id for d in reopened.get_by_ids(["paris", "lyon", "berlin"])) == ["berlin", "lyon", "paris"]
