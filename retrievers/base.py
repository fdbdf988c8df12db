"""The retriever contract and its typed results.

A retriever answers ``retrieve(query, top_k, filter, mode)`` with scored hits,
best first. Every backend (an in-process collection, the gRPC service) meets
the same contract, so LangChain adapters and the service are written once.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from middleware.errors import InvalidArgument
from middleware.types import Document, _frozen

DEFAULT_MODE = "dense"
DEFAULT_TOP_K = 10
# A collection name is also a folder name: no separators, no leading dot.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a safe collection (or tenant) name, else InvalidArgument."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            f"{kind} {name!r} must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class ChunkingParams:
    """Chunk size and overlap in tokens of the embedding model.

    Without ``overlap_tokens`` the overlap is a quarter of the chunk, at most 32 tokens.
    """

    max_tokens: int = 200
    overlap_tokens: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 8:
            raise InvalidArgument(f"chunking.max_tokens must be an integer >= 8, got {self.max_tokens!r}")
        if self.overlap_tokens is None:
            object.__setattr__(self, "overlap_tokens", min(32, self.max_tokens // 4))
        if (isinstance(self.overlap_tokens, bool) or not isinstance(self.overlap_tokens, int)
                or not 0 <= self.overlap_tokens <= self.max_tokens // 2):
            raise InvalidArgument(
                f"chunking.overlap_tokens must be in 0..{self.max_tokens // 2}, got {self.overlap_tokens!r}")


@dataclass(frozen=True)
class Query:
    """What to retrieve: ``filter`` is an equality match on document metadata."""

    text: str
    top_k: int = DEFAULT_TOP_K
    mode: str = DEFAULT_MODE
    filter: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidArgument("query must be a string")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise InvalidArgument(f"top_k must be an integer >= 1, got {self.top_k!r}")
        if not isinstance(self.filter, Mapping):
            raise InvalidArgument("filter must be an object of metadata key -> value")
        object.__setattr__(self, "filter", _frozen(self.filter))


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. ``document.id`` is the document id when the document
    is a single chunk, else ``"<id>#<n>"``; ``document_id`` is always the document's."""

    document: Document
    score: float
    document_id: str
    chunk: int = 0


class Retriever(ABC):
    """Anything that retrieves scored documents for a query."""

    @abstractmethod
    def retrieve(self, query: Query) -> list[Hit]:
        """Hits for ``query``, best first, at most ``query.top_k``."""


@dataclass(frozen=True)
class IndexRequest:
    """Upsert ``documents`` and delete ``delete_ids`` in one collection."""

    collection: str
    documents: tuple[Document, ...] = ()
    delete_ids: tuple[str, ...] = ()
    chunking: ChunkingParams | None = None

    def __post_init__(self) -> None:
        check_name("collection name", self.collection)
        object.__setattr__(self, "documents", tuple(self.documents))
        object.__setattr__(self, "delete_ids", tuple(self.delete_ids))
        both = {d.id for d in self.documents} & set(self.delete_ids)
        if both:
            raise InvalidArgument(f"document id(s) {sorted(both)} are both upserted and deleted")


@dataclass(frozen=True)
class IndexResult:
    upserted_documents: int
    deleted_documents: int
    chunks: int


class Searchable(Protocol):
    """What a retrieval mode searches: chunk ids with scores, best first, among ``allowed``
    chunk ids (all when None). :class:`retrievers.store.Collection` meets it."""

    def dense_search(self, text: str, n: int, allowed: set[int] | None) -> list[tuple[int, float]]: ...

    def lexical_search(self, text: str, n: int, allowed: set[int] | None) -> list[tuple[int, float]]: ...
