"""Retrievers: a FAISS vector store over sentence-transformers embeddings with
chunking, upsert/delete by id, metadata filters, crash-safe persistence, BM25
and hybrid (reciprocal rank fusion) search, and collections by name.

LangChain adapters live in :mod:`middleware.integrations.langchain`. Nothing here imports
faiss, torch or sentence-transformers until a collection is used::

    from retrievers import Collections, Query
    from middleware.types import Document
    from middleware.embedders import hashing_embedder

    colls = Collections(hashing_embedder)
    notes = colls.get_or_create("notes")
    notes.upsert([Document(id="a", text="Paris is the capital of France.")])
    hits = notes.retrieve(Query("capital of France", top_k=3, mode="hybrid"))
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ChunkingParams": "retrievers.base",
    "Hit": "retrievers.base",
    "Query": "retrievers.base",
    "Retriever": "retrievers.base",
    "Collection": "retrievers.store",
    "Collections": "retrievers.collections",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrievers' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
