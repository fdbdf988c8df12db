"""Index, Retrieve and Compress-from-a-collection over a real gRPC server on loopback."""

from __future__ import annotations

import grpc
import pytest

from middleware.client import AsyncRagpressClient, RagpressClient
from middleware.library import Ragpress
from middleware.settings import Settings
from retrievers.persist import FILE_NAME
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc
from tests.servers import ThreadedServer

DOCS = [
    {"id": "paris", "title": "Paris", "text": "Paris is the capital of France. It has 2,102,650 inhabitants.",
     "metadata": {"country": "fr", "rank": 1}},
    {"id": "lyon", "title": "Lyon", "text": "Lyon is a city in France known for its cuisine.",
     "metadata": {"country": "fr", "rank": 2}},
    {"id": "berlin", "title": "Berlin", "text": "Berlin is the capital of Germany with 3.7 million people.",
     "metadata": {"country": "de", "rank": 3}},
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ragpress-data")


@pytest.fixture(scope="module")
def server(data_dir):
    engine = Ragpress(Settings(port=0, embedding_model="hashing", data_dir=str(data_dir)))
    with ThreadedServer(engine) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with RagpressClient(server.address) as c:
        c.index("cities", DOCS)
        yield c


def _code(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value.code(), info.value.details()


def test_index_reports_counts_and_persists(client, data_dir):
    result = client.index("scratch", DOCS[:2])
    assert (result.upserted_documents, result.deleted_documents, result.chunks) == (2, 0, 2)
    assert (data_dir / "collections" / "default" / "scratch" / FILE_NAME).is_file()
    result = client.index("scratch", [DOCS[2]], delete_ids=["lyon", "nope"])
    assert (result.upserted_documents, result.deleted_documents, result.chunks) == (1, 1, 1)
    assert sorted(d.id for d, _ in client.retrieve("scratch", "city", top_k=10, mode="hybrid")) == ["berlin", "paris"]


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_retrieve_each_mode(client, mode):
    hits = client.retrieve("cities", "capital of Germany", top_k=2, mode=mode)
    assert hits[0][0].id == "berlin" and len(hits) <= 2
    assert hits[0][0].metadata == {"country": "de", "rank": 3}
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_retrieve_with_a_metadata_filter(client):
    hits = client.retrieve("cities", "capital", top_k=5, filter={"country": "fr"})
    assert sorted(d.id for d, _ in hits) == ["lyon", "paris"]


def test_compress_from_a_collection(client):
    result = client.compress("How many inhabitants does Paris have?", [], 40, collection="cities",
                             retrieve_top_k=2)
    assert "2,102,650" in result.context
    assert result.compressed_tokens <= 40
    assert {d.id for d in result.documents} | set(result.dropped_ids) <= {"paris", "lyon", "berlin"}
    assert len(result.documents) + len(result.dropped_ids) == 2


def test_tenants_do_not_see_each_other(server, client):
    with RagpressClient(server.address, tenant="acme") as other:
        code, details = _code(other.retrieve, "cities", "capital")
        assert code == grpc.StatusCode.NOT_FOUND and "'cities'" in details
        other.index("cities", [{"id": "x", "text": "acme private note"}])
        assert [d.id for d, _ in other.retrieve("cities", "note")] == ["x"]
    assert "x" not in [d.id for d, _ in client.retrieve("cities", "acme private note", top_k=10)]


@pytest.mark.parametrize("rpc, message, code, fragment", [
    ("Retrieve", pb.RetrieveRequest(collection="nope", query="q"), grpc.StatusCode.NOT_FOUND, "'nope' does not exist"),
    ("Retrieve", pb.RetrieveRequest(collection="../x", query="q"), grpc.StatusCode.INVALID_ARGUMENT, "collection name"),
    ("Retrieve", pb.RetrieveRequest(collection="cities", query="q", top_k=5000), grpc.StatusCode.INVALID_ARGUMENT,
     "top_k must be at most"),
    ("Retrieve", pb.RetrieveRequest(collection="cities", query="q", mode=7), grpc.StatusCode.INVALID_ARGUMENT,
     "retrieval mode"),
    ("Index", pb.IndexRequest(collection=""), grpc.StatusCode.INVALID_ARGUMENT, "collection name"),
    ("Index", pb.IndexRequest(collection="c", documents=[pb.Document(text="no id")]), grpc.StatusCode.INVALID_ARGUMENT,
     "needs an id"),
    ("Index", pb.IndexRequest(collection="c", documents=[pb.Document(id="a", text="t")], delete_ids=["a"]),
     grpc.StatusCode.INVALID_ARGUMENT, "both upserted and deleted"),
    ("Index", pb.IndexRequest(collection="c", documents=[pb.Document(id="a", text="t")],
                              chunking=pb.ChunkingOptions(max_tokens=4)), grpc.StatusCode.INVALID_ARGUMENT, "max_tokens"),
    ("Index", pb.IndexRequest(collection="never", delete_ids=["a"]), grpc.StatusCode.NOT_FOUND, "'never'"),
    ("Compress", pb.CompressRequest(query="q", collection="nope", budget=pb.Budget(max_tokens=10)),
     grpc.StatusCode.NOT_FOUND, "'nope'"),
    ("Compress", pb.CompressRequest(query="q", retrieve_top_k=3, budget=pb.Budget(max_tokens=10)),
     grpc.StatusCode.INVALID_ARGUMENT, "needs a collection"),
])
def test_bad_requests_get_specific_statuses_and_the_server_keeps_serving(client, rpc, message, code, fragment):
    stub = pb_grpc.RagpressServiceStub(client.channel)
    got, details = _code(getattr(stub, rpc), message, timeout=30)
    assert got == code and fragment in details
    assert client.retrieve("cities", "capital", top_k=1)


async def test_async_client_round_trip(server, client):
    async with AsyncRagpressClient(server.address) as ac:
        result = await ac.index("async", DOCS, chunking=None)
        assert result.chunks == 3
        hits = await ac.retrieve("async", "cuisine", top_k=1, mode="lexical")
        assert hits[0][0].id == "lyon"
        compressed = await ac.compress("cuisine", [], 200, collection="async", retrieve_top_k=1)
        assert [d.id for d in compressed.documents] == ["lyon"]


def test_a_restarted_server_serves_the_saved_collection(client, data_dir):
    client.index("durable", DOCS)
    engine = Ragpress(Settings(port=0, embedding_model="hashing", data_dir=str(data_dir)))
    with ThreadedServer(engine) as again, RagpressClient(again.address) as c2:
        assert c2.retrieve("durable", "cuisine", top_k=1, mode="lexical")[0][0].id == "lyon"


def test_generate_with_an_unknown_collection_is_not_found(client):
    stub = pb_grpc.RagpressServiceStub(client.channel)
    req = pb.GenerateRequest(query="q", collection="nope", model="local/smollm2", budget=pb.Budget(max_tokens=20))
    code, details = _code(stub.Generate, req, timeout=30)
    assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in details


def test_generate_prepares_its_prompt_from_the_retrieved_documents(server, client):
    """What Generate does with a collection, short of calling a model: retrieve, compress, prompt."""
    from middleware.generation.generate import GenerateRequest
    from middleware.pipeline import fill
    from retrievers import Query

    engine = server.engine
    base = engine.request("How many inhabitants does Paris have?", [], 200)
    filled = fill(engine.collections, "default", "cities", Query(base.query, 1, "lexical"), base)
    assert [d.id for d in filled.documents] == ["paris"]
    prepared = engine.generator.prepare(GenerateRequest(compress=filled))
    assert prepared.compression.documents and "2,102,650" in str(prepared.prompt)
