"""Operations shared by the gRPC service and the library: index and retrieve.
Plain functions over a :class:`Collections` registry (retrieve-then-compress is the
service's: :func:`middleware.pipeline.retrieve_and_compress`)."""

from __future__ import annotations

from retrievers.base import Hit, IndexRequest, IndexResult, Query, check_name
from retrievers.collections import Collections


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
    collections.changed(request.collection, tenant)
    return IndexResult(len(request.documents), deleted, chunks)


def retrieve(collections: Collections, tenant: str, collection: str, query: Query) -> list[Hit]:
    check_name("collection name", collection)
    return collections.get(collection, tenant).retrieve(query)
