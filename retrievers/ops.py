"""Operations shared by the gRPC service and the library: index, retrieve,
retrieve-then-compress. Plain functions over a :class:`Collections` registry."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from retrievers.base import Hit, IndexRequest, IndexResult, Query, check_name
from retrievers.collections import Collections

if TYPE_CHECKING:
    from middleware.pipeline import Pipeline
    from middleware.types import CompressRequest, CompressResult


def index(collections: Collections, tenant: str, request: IndexRequest) -> IndexResult:
    """Apply deletes then upserts, and save the collection (when it has a folder).

    Deleting from a collection that does not exist is NotFound; upserting creates it.
    """
    if request.documents or not request.delete_ids:
        coll = collections.get_or_create(request.collection, tenant)
    else:
        coll = collections.get(request.collection, tenant)
    deleted = coll.delete(request.delete_ids)
    chunks = coll.upsert(request.documents, request.chunking) if request.documents else 0
    coll.save()
    return IndexResult(len(request.documents), deleted, chunks)


def retrieve(collections: Collections, tenant: str, collection: str, query: Query) -> list[Hit]:
    check_name("collection name", collection)
    return collections.get(collection, tenant).retrieve(query)


def fill(collections: Collections, tenant: str, collection: str, query: Query,
         request: "CompressRequest") -> "CompressRequest":
    """``request`` with its documents retrieved from ``collection`` for ``query``."""
    hits = retrieve(collections, tenant, collection, query)
    return dataclasses.replace(request, documents=tuple(h.document for h in hits))


def retrieve_and_compress(collections: Collections, pipeline: "Pipeline", tenant: str, collection: str,
                          query: Query, request: "CompressRequest", request_id: str = "") -> "CompressResult":
    """Retrieve ``query`` from ``collection`` and compress the hits with ``request``'s settings."""
    return pipeline.compress(fill(collections, tenant, collection, query, request), request_id)
