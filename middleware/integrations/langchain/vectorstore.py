"""A LangChain vector store on a ragpress :class:`~retrievers.store.Collection`."""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Sequence

from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from middleware.errors import InvalidArgument
from middleware.types import Document
from retrievers.base import ChunkingParams, Query
from middleware.integrations.langchain.convert import to_langchain
from middleware.integrations.langchain.embeddings import LangChainEmbedder, RagpressEmbeddings
from retrievers.store import Collection


class RagpressVectorStore(VectorStore):
    """FAISS-backed store with chunking, upsert by id, metadata filters and
    dense / lexical / hybrid search.

    Either stand-alone (``RagpressVectorStore(embeddings)``: memory only, or saved
    to ``folder``), or a named collection of an engine
    (``RagpressVectorStore(engine=engine, collection="docs")``), which the gRPC
    service of that engine then serves too; it is saved after every change.
    Search results are chunks: a document longer than one chunk comes back as
    ``"<id>#<n>"`` pieces; ``get_by_ids`` returns whole documents.
    """

    def __init__(self, embedding: Embeddings | None = None, *, engine: Any = None, collection: str = "langchain",
                 chunking: ChunkingParams | None = None, folder: str | None = None) -> None:
        if engine is not None:
            if embedding is not None or folder is not None:
                raise InvalidArgument("with an engine, the engine's embedder and data_dir are used")
            self._collection = engine.collections.get_or_create(collection)
            self._embedding: Embeddings = RagpressEmbeddings(engine=engine)
        else:
            from pathlib import Path

            self._embedding = embedding or RagpressEmbeddings()
            embedder = LangChainEmbedder(self._embedding)
            path = Path(folder) if folder else None
            loaded = Collection.load(collection, embedder, path) if path else None
            self._collection = loaded or Collection(collection, embedder, chunking, path)

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def collection(self) -> Collection:
        return self._collection

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        texts = list(texts)
        metadatas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        ids = list(ids) if ids is not None else [None] * len(texts)
        if not len(texts) == len(metadatas) == len(ids):
            raise ValueError(f"got {len(texts)} texts, {len(metadatas)} metadatas and {len(ids)} ids")
        ids = [i if i else str(uuid.uuid4()) for i in ids]
        # Within one call the last text given for an id wins, as with consecutive calls.
        docs = {i: Document(id=i, text=t, metadata=m or {}) for i, t, m in zip(ids, texts, metadatas)}
        self._collection.upsert(list(docs.values()))
        self._collection.save()
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (unknown ids are ignored); ``ids=None`` deletes everything."""
        self._collection.delete(self._collection.ids() if ids is None else ids)
        self._collection.save()
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[LCDocument]:
        return [to_langchain(d) for d in self._collection.get(ids)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                     mode: str = "dense", **kwargs: Any) -> list[tuple[LCDocument, float]]:
        """(document, score) pairs, best first; dense scores are cosine similarities."""
        hits = self._collection.retrieve(Query(query, k, mode, filter or {}))
        return [(to_langchain(h.document), h.score) for h in hits]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[LCDocument]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def _select_relevance_score_fn(self):
        # Dense scores are cosine similarities in [-1, 1]; map them to [0, 1].
        return lambda score: (score + 1.0) / 2.0

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, **kwargs: Any) -> "RagpressVectorStore":
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store
