"""A demonstration pool: demonstrations stored in a retrievers :class:`Collection`
(embedded input, FAISS index, upsert and delete by id, persistence), plus the
tables strategies need that a document collection does not keep: labels and which
chunks carry each label.

A demonstration is stored as a document whose text is its input (what the query is
compared with, as in KATE) and whose metadata holds the output, the label and the
demonstration's own metadata. The derived tables are rebuilt when the collection's
``generation`` moves, so a pool is always consistent with its collection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from middleware.errors import InvalidArgument
from middleware.types import Demonstration, Document
from retrievers.demos.base import Scored

if TYPE_CHECKING:
    import numpy as np

    from retrievers.store import Collection

_OUTPUT, _LABEL, _META = "output", "label", "metadata"


def to_document(demo: Demonstration) -> Document:
    if not demo.id:
        raise InvalidArgument("a pooled demonstration needs a non-empty id")
    if not demo.input.strip():
        raise InvalidArgument(f"demonstration {demo.id!r}: input is empty")
    return Document(id=demo.id, text=demo.input,
                    metadata={_OUTPUT: demo.output, _LABEL: demo.label, _META: dict(demo.metadata)})


def from_document(doc: Document) -> Demonstration:
    meta = doc.metadata
    return Demonstration(doc.id, doc.text, meta.get(_OUTPUT, ""), meta.get(_LABEL, ""), meta.get(_META) or {})


@dataclass(frozen=True)
class _Tables:
    generation: int
    ids: tuple[str, ...]  # sorted: the canonical order, and what random draws from
    labels: dict[str, str]  # id -> label ("" when none)
    label_chunks: dict[str, tuple[int, ...]]  # label -> chunk ids of its demonstrations
    counts: dict[str, int]  # label -> demonstrations
    unlabelled: tuple[str, ...]  # sorted ids without a label


class Pool:
    """Read access for strategies; writes go through :meth:`upsert` and :meth:`delete`."""

    def __init__(self, name: str, collection: "Collection") -> None:
        self.name = name
        self.collection = collection
        self._tables: _Tables | None = None
        self._lock = threading.Lock()

    # -- writing -----------------------------------------------------------------
    def upsert(self, demonstrations: Sequence[Demonstration]) -> int:
        """Add demonstrations, replacing those with the same id; returns how many."""
        self.collection.upsert([to_document(d) for d in demonstrations])
        return len(demonstrations)

    def delete(self, ids: Iterable[str]) -> int:
        return self.collection.delete(ids)

    # -- reading -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.collection)

    def ids(self) -> tuple[str, ...]:
        """Every id, sorted."""
        return self._current().ids

    def labels(self) -> dict[str, int]:
        """How many demonstrations carry each label ("" counts those without one)."""
        return dict(self._current().counts)

    def label_of(self, demo_id: str) -> str:
        return self._current().labels.get(demo_id, "")

    def unlabelled(self, limit: int = 5) -> list[str]:
        """Up to ``limit`` ids (sorted) of demonstrations without a label."""
        return list(self._current().unlabelled[:limit])

    def get(self, ids: Sequence[str]) -> list[Demonstration]:
        """The demonstrations with these ids, in the given order; an unknown id is an error."""
        docs = self.collection.get(ids)
        if len(docs) != len(ids):
            missing = sorted(set(ids) - {d.id for d in docs})
            raise InvalidArgument(f"pool {self.name!r} has no demonstration(s) {missing[:5]}")
        return [from_document(d) for d in docs]

    def embed(self, text: str) -> "np.ndarray":
        """The query's vector (1, dim), as the pool's embedder makes it."""
        return self.collection.embed_query(text)

    def nearest(self, vector: "np.ndarray", n: int, label: str | None = None,
                exclude: frozenset[str] = frozenset()) -> list[Scored]:
        """Up to ``n`` demonstrations by similarity to ``vector``, best first, of ``label`` if given."""
        allowed = None
        if label is not None:
            allowed = self._current().label_chunks.get(label, ())
            if not allowed:
                return []
        pairs = self.collection.search_vector(vector, n + len(exclude), allowed)
        return [Scored(i, s) for i, s in pairs if i not in exclude][:n]

    def similarities(self, vector: "np.ndarray", ids: Sequence[str]) -> list[float]:
        """Cosine similarity of each demonstration (its input's stored vector) to ``vector``."""
        if not ids:
            return []
        return [float(s) for s in self.collection.document_vectors(list(ids)) @ vector[0]]

    def vectors(self, ids: Sequence[str]) -> "np.ndarray":
        return self.collection.document_vectors(list(ids))

    def _current(self) -> _Tables:
        generation = self.collection.generation
        tables = self._tables
        if tables is not None and tables.generation == generation:
            return tables
        with self._lock:
            if self._tables is None or self._tables.generation != generation:
                docs = self.collection.documents()
                labels = {d.id: str(d.metadata.get(_LABEL, "")) for d in docs}
                members: dict[str, list[str]] = {}
                for doc_id, label in labels.items():
                    members.setdefault(label, []).append(doc_id)
                chunks = {label: tuple(self.collection.chunk_ids(ids)) for label, ids in members.items()}
                counts = {label: len(ids) for label, ids in members.items()}
                self._tables = _Tables(generation, tuple(sorted(labels)), labels, chunks, counts,
                                       tuple(sorted(members.get("", ()))))
            return self._tables
