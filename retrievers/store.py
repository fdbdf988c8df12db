"""A FAISS collection: chunked documents, upsert and delete by id, metadata
filters, dense / lexical / hybrid search, crash-safe persistence.

Invariants (guarded by one lock per collection):
- every chunk id in the FAISS index is a key of ``_chunks`` and vice versa;
- ``_doc_chunks[doc_id]`` lists exactly the chunk ids of that document;
- vectors are L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from middleware import cancel
from middleware.errors import InternalError, InvalidArgument
from middleware.embedders import Embedder, word_spans
from middleware.types import Document
from retrievers import modes, persist
from retrievers.base import ChunkingParams, Hit, Query, Retriever
from retrievers.chunking import chunk_text
from retrievers.lexical import Bm25Index

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    document_id: str
    ordinal: int
    text: str


def _embed_text(title: str, text: str) -> str:
    # Titles (Wikipedia page names, file names) carry much of the meaning of a short passage.
    return f"{title}\n{text}" if title else text


def _check_metadata(doc: Document) -> None:
    try:
        json.dumps(dict(doc.metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"document {doc.id!r}: metadata must be JSON-like to be stored: {exc}") from exc


class Collection(Retriever):
    """One named set of documents. Thread-safe; searches and changes are serialised."""

    def __init__(self, name: str, embedder: Embedder, chunking: ChunkingParams | None = None,
                 folder: Path | None = None) -> None:
        self.name = name
        self.embedder = embedder
        self.chunking = chunking or ChunkingParams()
        self.folder = folder
        self._lock = threading.RLock()
        self._docs: dict[str, Document] = {}
        self._doc_chunks: dict[str, list[int]] = {}
        self._chunks: dict[int, Chunk] = {}
        self._next_id = 0
        self._index = None
        self._bm25 = Bm25Index()
        self._bm25_dirty = True
        # Bumped by every change: views derived from the collection (demonstration
        # pools' label tables) rebuild when it moves.
        self.generation = 0

    # -- reading -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._docs)

    @property
    def chunk_count(self) -> int:
        return len(self._chunks)

    def get(self, ids: Iterable[str]) -> list[Document]:
        """The stored documents with these ids, in the given order; unknown ids are skipped."""
        with self._lock:
            return [self._docs[i] for i in ids if i in self._docs]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._docs)

    def documents(self) -> list[Document]:
        """Every stored document, in insertion order (a snapshot)."""
        with self._lock:
            return list(self._docs.values())

    def chunk_ids(self, doc_ids: Iterable[str]) -> list[int]:
        """Chunk ids of these documents (unknown ids are skipped): an ``allowed`` set for searches."""
        with self._lock:
            return [cid for d in doc_ids for cid in self._doc_chunks.get(d, ())]

    def embed_query(self, text: str) -> "np.ndarray":
        """The L2-normalised query vector (1, dim) that dense search uses for ``text``."""
        embed_query = getattr(self.embedder, "embed_query", None)
        return self._normalised(embed_query(text) if embed_query else self.embedder.embed([text]))

    def search_vector(self, vector: "np.ndarray", n: int, allowed: "Sequence[int] | None" = None
                      ) -> list[tuple[str, float]]:
        """Up to ``n`` (document id, score) pairs by inner product with ``vector`` (normalised),
        best first, one per document (its best chunk), among ``allowed`` chunk ids (all when None)."""
        with self._lock:
            if self._index is None or self._index.ntotal == 0 or n < 1:
                return []
            # At most (chunks - documents) hits can repeat a document: ask for that many more.
            extra = len(self._chunks) - len(self._docs)
            pairs = self._search(vector, n + extra, None if allowed is None else set(allowed))
            out: list[tuple[str, float]] = []
            seen: set[str] = set()
            for cid, score in pairs:
                doc_id = self._chunks[cid].document_id
                if doc_id not in seen:
                    seen.add(doc_id)
                    out.append((doc_id, score))
                    if len(out) == n:
                        break
            return out

    def document_vectors(self, doc_ids: Sequence[str]) -> "np.ndarray":
        """Stored vectors (len(doc_ids), dim) of each document's first chunk, in the given order.

        The first chunk is what an embedder that truncates long inputs would see of the whole."""
        import numpy as np

        with self._lock:
            missing = [d for d in doc_ids if d not in self._doc_chunks]
            if missing:
                raise InvalidArgument(f"collection {self.name!r} has no document(s) {missing[:5]}")
            if not doc_ids:
                return np.zeros((0, self._index.d if self._index is not None else 0), dtype=np.float32)
            first = np.asarray([self._doc_chunks[d][0] for d in doc_ids], dtype=np.int64)
            return np.asarray(self._index.reconstruct_batch(first), dtype=np.float32)

    def retrieve(self, query: Query) -> list[Hit]:
        mode = modes.get(query.mode)
        with self._lock:
            allowed = self._allowed(query.filter)
            if allowed is not None and not allowed:
                return []
            pairs = mode(self, query.text, query.top_k, allowed)
            return [self._hit(cid, score) for cid, score in pairs[:query.top_k]]

    def stored_vectors(self, hits: Iterable[Hit]) -> dict[str, "np.ndarray"]:
        """The vectors stored for these hits' chunks, by the hit document's id (unit length,
        embedded from ``"{title}\n{chunk}"`` by :attr:`embedder`); hits no longer stored are skipped."""
        out = {}
        with self._lock:
            for hit in hits:
                chunks = self._doc_chunks.get(hit.document_id, [])
                if self._index is not None and hit.chunk < len(chunks):
                    out[hit.document.id] = self._index.reconstruct(int(chunks[hit.chunk]))
        return out

    # -- writing -----------------------------------------------------------------
    def upsert(self, documents: Sequence[Document], chunking: ChunkingParams | None = None) -> int:
        """Add documents, replacing those with the same id; returns the number of chunks written."""
        params = chunking or self.chunking
        seen: set[str] = set()
        for doc in documents:
            if not doc.id:
                raise InvalidArgument("documents to index need a non-empty id")
            if doc.id in seen:
                raise InvalidArgument(f"duplicate document id {doc.id!r}")
            seen.add(doc.id)
            _check_metadata(doc)
        spans = getattr(self.embedder, "token_spans", word_spans)
        limit = getattr(self.embedder, "max_tokens", params.max_tokens)
        if params.max_tokens > limit:
            params = ChunkingParams(limit, min(params.overlap_tokens, limit // 2))
        planned = []
        for doc in documents:
            cancel.check()
            planned.append((doc, chunk_text(doc.text, spans, params)))
        texts = [_embed_text(doc.title, c) for doc, chunks in planned for c in chunks]
        # Embedding is the slow part and touches no shared state: do it outside the lock,
        # in batches, so memory stays bounded and a cancelled call stops between batches.
        vectors = self._embed_batches(texts) if texts else None
        with self._lock:
            self._remove(seen)
            ids = []
            for doc, chunks in planned:
                self._docs[doc.id] = doc
                own = []
                for ordinal, text in enumerate(chunks):
                    cid = self._next_id
                    self._next_id += 1
                    self._chunks[cid] = Chunk(doc.id, ordinal, text)
                    own.append(cid)
                self._doc_chunks[doc.id] = own
                ids.extend(own)
            if ids:
                import numpy as np

                self._faiss(vectors.shape[1]).add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            self._bm25_dirty = True
            self.generation += 1
            return len(ids)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; unknown ids are ignored. Returns how many were removed."""
        with self._lock:
            return self._remove(set(ids))

    # -- persistence -------------------------------------------------------------
    def save(self) -> Path | None:
        """Write the collection to its folder (atomically); no-op without a folder."""
        if self.folder is None:
            return None
        import faiss
        import numpy as np

        with self._lock:
            index_bytes = faiss.serialize_index(self._index) if self._index is not None else np.zeros(0, np.uint8)
            state = {
                "name": self.name,
                "embedder": self.embedder.name,
                "chunking": [self.chunking.max_tokens, self.chunking.overlap_tokens],
                "next_id": self._next_id,
                "documents": [[d.id, d.title, d.text, dict(d.metadata), self._doc_chunks[d.id]]
                              for d in self._docs.values()],
                "chunks": [[cid, c.ordinal, c.text] for cid, c in self._chunks.items()],
            }
            return persist.save(self.folder, index_bytes, state)

    @classmethod
    def load(cls, name: str, embedder: Embedder, folder: Path, reembed: bool = False) -> "Collection | None":
        """The collection saved in ``folder``, or None when nothing was saved there.

        Saved vectors are only ever searched with the embedder that made them: a collection
        saved with another embedder is an error, or, with ``reembed``, embedded again from
        its stored texts (re-chunked for this embedder) and saved."""
        import faiss

        loaded = persist.load(folder)
        if loaded is None:
            return None
        index_bytes, state = loaded
        if state["embedder"] != embedder.name:
            if not reembed:
                raise InvalidArgument(f"collection {name!r} was built with embedder {state['embedder']!r}, "
                                      f"not the configured {embedder.name!r}; re-index it")
            log.warning("collection %r was built with embedder %r: embedding its %d documents again with %r",
                        name, state["embedder"], len(state["documents"]), embedder.name)
            coll = cls(name, embedder, ChunkingParams(*state["chunking"]), folder)
            docs = [Document(id=doc_id, text=text, title=title, metadata=metadata)
                    for doc_id, title, text, metadata, _ in state["documents"]]
            # A one-off migration, finished even when the call that triggered it is cancelled
            # or past its deadline: otherwise every call would start it again and none finish.
            cancel.bound(cancel.Token(), lambda: coll.upsert(docs))()
            coll.save()
            return coll
        coll = cls(name, embedder, ChunkingParams(*state["chunking"]), folder)
        coll._next_id = int(state["next_id"])
        owner: dict[int, str] = {}
        for doc_id, title, text, metadata, chunk_ids in state["documents"]:
            coll._docs[doc_id] = Document(id=doc_id, text=text, title=title, metadata=metadata)
            coll._doc_chunks[doc_id] = list(chunk_ids)
            owner.update((cid, doc_id) for cid in chunk_ids)
        for cid, ordinal, text in state["chunks"]:
            coll._chunks[cid] = Chunk(owner[cid], ordinal, text)
        if len(index_bytes):
            coll._index = faiss.deserialize_index(index_bytes)
        if (coll._index.ntotal if coll._index is not None else 0) != len(coll._chunks):
            raise InternalError(f"collection file in {folder} is inconsistent: index and chunk table differ")
        return coll

    # -- used by the retrieval modes (lock held) ----------------------------------
    def dense_search(self, text: str, n: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        if self._index is None or self._index.ntotal == 0:
            return []
        # An embedder may embed queries differently from passages (LangChain's embed_query).
        return self._search(self.embed_query(text), n, allowed)

    def lexical_search(self, text: str, n: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        if self._bm25_dirty:
            self._bm25.rebuild((cid, _embed_text(self._docs[c.document_id].title, c.text))
                               for cid, c in self._chunks.items())
            self._bm25_dirty = False
        return self._bm25.search(text, n, allowed)

    # -- internals ---------------------------------------------------------------
    EMBED_BATCH = 64

    def _embed_batches(self, texts: list[str]) -> "np.ndarray":
        import numpy as np

        parts = []
        for start in range(0, len(texts), self.EMBED_BATCH):
            cancel.check()
            parts.append(self._normalised(self.embedder.embed(texts[start:start + self.EMBED_BATCH])))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _search(self, query: "np.ndarray", n: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        import faiss
        import numpy as np

        if self._index is None or self._index.ntotal == 0:
            return []
        n = min(n, self._index.ntotal if allowed is None else len(allowed))
        if n < 1:
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64)))
        scores, ids = self._index.search(np.ascontiguousarray(query, dtype=np.float32), n, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _faiss(self, dim: int):
        if self._index is None:
            import faiss

            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif self._index.d != dim:
            raise InvalidArgument(f"collection {self.name!r} holds {self._index.d}-d vectors, got {dim}-d")
        return self._index

    @staticmethod
    def _normalised(vectors: "np.ndarray") -> "np.ndarray":
        import numpy as np

        out = np.ascontiguousarray(vectors, dtype=np.float32).copy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _remove(self, doc_ids: set[str]) -> int:
        present = [d for d in doc_ids if d in self._docs]
        if not present:
            return 0
        import numpy as np

        dead = [cid for d in present for cid in self._doc_chunks.pop(d)]
        for d in present:
            del self._docs[d]
        for cid in dead:
            del self._chunks[cid]
        if dead and self._index is not None:
            self._index.remove_ids(np.asarray(dead, dtype=np.int64))
        self._bm25_dirty = True
        self.generation += 1
        return len(present)

    def _allowed(self, filter: Mapping[str, Any]) -> set[int] | None:
        if not filter:
            return None
        return {cid for doc_id, doc in self._docs.items()
                if all(k in doc.metadata and doc.metadata[k] == v for k, v in filter.items())
                for cid in self._doc_chunks[doc_id]}

    def _hit(self, cid: int, score: float) -> Hit:
        chunk = self._chunks[cid]
        doc = self._docs[chunk.document_id]
        if len(self._doc_chunks[doc.id]) > 1:
            doc = Document(id=f"{doc.id}#{chunk.ordinal}", text=chunk.text, title=doc.title, metadata=doc.metadata)
        return Hit(doc, score, chunk.document_id, chunk.ordinal)
