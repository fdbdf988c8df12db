"""LangChain's own standard test suites (langchain-tests) run on our components."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests, RetrieversIntegrationTests, VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

from middleware.library import Ragpress
from middleware.settings import Settings
from middleware.types import Document
from middleware.integrations.langchain import RagpressEmbeddings, RagpressRetriever, RagpressVectorStore
from tests.servers import ThreadedServer

CORPUS = [
    Document(id="paris", title="Paris", text="Paris is the capital of France.", metadata={"country": "fr"}),
    Document(id="lyon", title="Lyon", text="Lyon is a French city famous for food.", metadata={"country": "fr"}),
    Document(id="berlin", title="Berlin", text="Berlin is the capital of Germany.", metadata={"country": "de"}),
    Document(id="rome", title="Rome", text="Rome is the capital of Italy.", metadata={"country": "it"}),
    Document(id="bread", title="Bread", text="Bread is baked from flour.", metadata={"topic": "food"}),
]


def _engine() -> Ragpress:
    engine = Ragpress(Settings(port=0, embedding_model="hashing", persist_collections=False, ledger_url="none"))
    engine.collections.get_or_create("cities").upsert(CORPUS)
    return engine


# -- embeddings ---------------------------------------------------------------------
class TestEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self):
        return RagpressEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "hashing"}

    @property
    def init_from_env_params(self):
        return {"RAGPRESS_EMBEDDING_MODEL": "hashing"}, {}, {"model": "hashing"}


class TestEmbeddingsHashing(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self):
        return RagpressEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "hashing"}


@pytest.mark.slow
class TestEmbeddingsMiniLM(EmbeddingsIntegrationTests):
    """The real all-MiniLM-L6-v2 from its package."""

    @property
    def embeddings_class(self):
        return RagpressEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": ""}


# -- vector store -------------------------------------------------------------------
class TestVectorStoreInMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self):
        return RagpressVectorStore(self.get_embeddings())


class TestVectorStorePersisted(VectorStoreIntegrationTests):
    """Saved to a folder after every change (write, then rename)."""

    @pytest.fixture
    def vectorstore(self, tmp_path):
        return RagpressVectorStore(self.get_embeddings(), folder=str(tmp_path / "store"))


# -- retrievers ---------------------------------------------------------------------
class TestRetrieverInProcess(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return RagpressRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"engine": _SHARED_ENGINE, "collection": "cities", "mode": "hybrid"}

    @property
    def retriever_query_example(self) -> str:
        return "capital city"


class TestRetrieverRemote(RetrieversIntegrationTests):
    """Over gRPC: the sync paths use the blocking client, the async ones grpc.aio."""

    address = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _server(cls):
        with ThreadedServer(_engine()) as srv:
            cls.address = srv.address
            yield

    @property
    def retriever_constructor(self):
        return RagpressRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"target": type(self).address, "collection": "cities"}

    @property
    def retriever_query_example(self) -> str:
        return "capital city"


_SHARED_ENGINE = _engine()


def test_pytest_socket_does_not_run(pytestconfig):
    """langchain-tests brings pytest-socket; it is switched off (``-p no:socket``) so
    that nothing it does can block the loopback servers of the rest of the suite."""
    assert not pytestconfig.pluginmanager.has_plugin("socket")
