"""Named demonstration pools per tenant, on the retrievers' collections machinery:
each pool is a collection of its own (``<data_dir>/demonstrations/<tenant>/<pool>/``,
saved atomically after every change), apart from the document collections, so a
pool and a document collection may share a name."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from middleware.embedders import Embedder
from middleware.errors import InvalidArgument, NotFound
from middleware.settings import Settings
from middleware.types import Demonstration
from retrievers.base import ChunkingParams, check_name
from retrievers.collections import Collections
from retrievers.demos.pool import Pool
from retrievers.store import Collection

# One vector per demonstration where the embedder allows: chunks are capped at what
# the embedder reads, so only inputs longer than that are split (and matched by their
# best chunk).
POOL_CHUNKING = ChunkingParams(max_tokens=1_000_000, overlap_tokens=0)


@dataclass(frozen=True)
class PoolIndexResult:
    upserted: int
    deleted: int
    size: int


class DemoPools:
    """Pools by (tenant, name); thread-safe. Without ``root`` they live in memory only."""

    def __init__(self, embedder: Callable[[], Embedder], root: Path | None = None) -> None:
        self._embedder = embedder
        # Pools are re-embedded on load when the embedder changed (the ONNX MiniLM and the
        # torch fallback make different vectors, and the embedder's name says which).
        self._collections = Collections(embedder, POOL_CHUNKING, root, reembed=True)
        self._pools: dict[tuple[str, str], Pool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Callable[[], Embedder]) -> "DemoPools":
        root = Path(settings.data_dir) / "demonstrations" if settings.persist_collections else None
        return cls(embedder, root)

    def get(self, name: str, tenant: str) -> Pool:
        """The named pool; NotFound when this tenant never indexed it."""
        check_name("pool name", name)
        try:
            collection = self._collections.get(name, tenant)
        except NotFound:
            raise NotFound(f"demonstration pool {name!r} does not exist for tenant {tenant!r}; "
                           f"index demonstrations into it first (IndexDemonstrations, `ragpress demos index`)"
                           ) from None
        return self._wrap(name, tenant, collection)

    def names(self, tenant: str) -> list[str]:
        return self._collections.names(tenant)

    def index(self, name: str, tenant: str, demonstrations: Sequence[Demonstration] = (),
              delete_ids: Sequence[str] = ()) -> PoolIndexResult:
        """Delete then upsert, and save. Deleting from a pool that does not exist is NotFound."""
        check_name("pool name", name)
        both = {d.id for d in demonstrations} & set(delete_ids)
        if both:
            raise InvalidArgument(f"demonstration id(s) {sorted(both)} are both upserted and deleted")
        _unique(demonstrations)
        if demonstrations or not delete_ids:
            pool = self._wrap(name, tenant, self._collections.get_or_create(name, tenant))
        else:
            pool = self.get(name, tenant)
        deleted = pool.delete(delete_ids)
        upserted = pool.upsert(demonstrations) if demonstrations else 0
        pool.collection.save()
        return PoolIndexResult(upserted, deleted, len(pool))

    def drop(self, name: str, tenant: str) -> bool:
        """Forget a pool and delete its file; True if it existed."""
        with self._lock:
            self._pools.pop((tenant, name), None)
        return self._collections.drop(name, tenant)

    def inline(self, demonstrations: Sequence[Demonstration]) -> Pool:
        """A throw-away pool for one request's inline demonstrations (in memory)."""
        _unique(demonstrations)
        pool = Pool("(inline)", Collection("inline", self._embedder(), POOL_CHUNKING))
        pool.upsert(demonstrations)
        return pool

    def _wrap(self, name: str, tenant: str, collection: Collection) -> Pool:
        with self._lock:
            pool = self._pools.get((tenant, name))
            if pool is None or pool.collection is not collection:
                pool = self._pools[(tenant, name)] = Pool(name, collection)
            return pool


def _unique(demonstrations: Sequence[Demonstration]) -> None:
    seen: set[str] = set()
    for d in demonstrations:
        if d.id in seen:
            raise InvalidArgument(f"duplicate demonstration id {d.id!r}")
        seen.add(d.id)
