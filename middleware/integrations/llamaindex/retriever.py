"""A LlamaIndex retriever over a named ragpress collection (in-process or remote)."""

from __future__ import annotations

from typing import Any, List, Mapping

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from middleware.integrations.backend import make_backend
from middleware.integrations.llamaindex.convert import to_node


class RagpressRetriever(BaseRetriever):
    """Retrieves scored nodes from a ragpress collection (``dense``, ``lexical`` or
    ``hybrid``), with optional metadata equality filters."""

    def __init__(self, collection: str, *, k: int = 4, mode: str = "dense", filter: Mapping[str, Any] | None = None,
                 engine: Any = None, target: str | None = None, tenant: str | None = None,
                 timeout: float | None = 30.0, api_key: str | None = None, credentials: Any = None,
                 **kwargs: Any) -> None:
        from retrievers import modes
        from retrievers.base import Query

        super().__init__(**kwargs)
        modes.get(mode)  # an unknown mode fails here, listing the known ones
        self.collection = collection
        self._query = lambda text: Query(text, k, mode, dict(filter or {}))
        self._backend = make_backend(engine, target, tenant, timeout, api_key=api_key, credentials=credentials)

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = self._backend.retrieve(self.collection, self._query(query_bundle.query_str))
        return [to_node(doc, score) for doc, score in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = await self._backend.aretrieve(self.collection, self._query(query_bundle.query_str))
        return [to_node(doc, score) for doc, score in hits]
