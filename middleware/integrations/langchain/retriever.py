"""A LangChain retriever over a ragpress collection (in-process or remote)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr, SecretStr, model_validator

from retrievers.base import Query
from middleware.integrations.backend import Backend, make_backend
from middleware.integrations.langchain.convert import to_langchain


class RagpressRetriever(BaseRetriever):
    """Retrieves the ``k`` best chunks of a named collection.

    ``k``, ``mode`` ("dense", "lexical", "hybrid") and ``filter`` (metadata
    equality) can also be given per call: ``retriever.invoke("q", k=3)``.
    With ``score_key`` set, each document's score is put in its metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: str
    k: int = 4
    mode: str = "dense"
    filter: dict[str, Any] | None = None
    score_key: str | None = None
    engine: Any = None
    target: str | None = None
    tenant: str | None = None
    timeout: float | None = 30.0
    # Remote servers with keys or TLS: the API key (kept out of reprs) and grpc.ChannelCredentials.
    api_key: SecretStr | None = None
    credentials: Any = None
    _backend: Backend = PrivateAttr()

    @model_validator(mode="after")
    def _connect(self) -> "RagpressRetriever":
        self._query("probe", {})  # bad k, mode or filter fail at construction
        self._backend = make_backend(self.engine, self.target, self.tenant, self.timeout,
                                     api_key=self.api_key.get_secret_value() if self.api_key else None,
                                     credentials=self.credentials)
        return self

    def _query(self, text: str, kwargs: dict[str, Any]) -> Query:
        from retrievers import modes

        query = Query(text, kwargs.get("k", self.k), kwargs.get("mode", self.mode),
                      kwargs.get("filter", self.filter) or {})
        modes.get(query.mode)
        return query

    def _documents(self, pairs) -> list[LCDocument]:
        return [to_langchain(doc, {self.score_key: score} if self.score_key else None) for doc, score in pairs]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[LCDocument]:
        return self._documents(self._backend.retrieve(self.collection, self._query(query, kwargs)))

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[LCDocument]:
        return self._documents(await self._backend.aretrieve(self.collection, self._query(query, kwargs)))
