"""Collections by name (per tenant): created on first index, loaded from disk on
first use, thread-safe."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Protocol

from middleware.errors import NotFound
from middleware.embedders import Embedder
from middleware.settings import Settings
from retrievers import persist
from retrievers.base import ChunkingParams, check_name
from retrievers.store import Collection

DEFAULT_TENANT = "default"


class CollectionsMeta(Protocol):
    """Shared generation numbers of collections, for replicas over one shared ``data_dir``
    (the service injects a Redis one: middleware.shared_cache.RedisCollectionsMeta)."""

    def bump(self, tenant: str, name: str) -> int: ...

    def generation(self, tenant: str, name: str) -> int | None: ...

    def names(self, tenant: str) -> list[str]: ...

    def forget(self, tenant: str, name: str) -> None: ...


class Collections:
    """A registry of :class:`Collection` objects keyed by (tenant, name).

    With ``root`` set, each collection lives in ``root/<tenant>/<name>/`` and is
    saved by :meth:`save`; without it, collections live in memory only.
    """

    def __init__(self, embedder: Callable[[], Embedder], chunking: ChunkingParams | None = None,
                 root: Path | None = None, meta: CollectionsMeta | None = None, reembed: bool = False) -> None:
        self._embedder = embedder
        # A saved collection built with another embedder: re-embedded on load when True
        # (demonstration pools: small, and their embedder is chosen by the machine), an
        # error otherwise (document collections: re-indexing is the caller's decision).
        self._reembed = reembed
        self.chunking = chunking or ChunkingParams()
        self.root = root
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], Collection] = {}
        # With shared metadata: the generation each open collection was loaded at. A
        # collection whose shared generation moved on was changed by another replica and
        # is reloaded from the (shared) folder before use.
        self._meta = meta if root is not None else None
        self._generations: dict[tuple[str, str], int | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Callable[[], Embedder],
                      meta: CollectionsMeta | None = None) -> "Collections":
        root = Path(settings.data_dir) / "collections" if settings.persist_collections else None
        return cls(embedder, ChunkingParams(settings.chunk_tokens, settings.chunk_overlap_tokens), root, meta)

    def changed(self, name: str, tenant: str = DEFAULT_TENANT) -> None:
        """Tell the other replicas that ``name`` changed (after it was saved)."""
        if self._meta is not None:
            generation = self._meta.bump(tenant, name)
            with self._lock:
                self._generations[(tenant, name)] = generation

    def get(self, name: str, tenant: str = DEFAULT_TENANT) -> Collection:
        """The named collection; NotFound if it was never created."""
        coll = self._lookup(name, tenant, create=False)
        if coll is None:
            raise NotFound(f"collection {name!r} does not exist; index documents into it first")
        return coll

    def get_or_create(self, name: str, tenant: str = DEFAULT_TENANT) -> Collection:
        coll = self._lookup(name, tenant, create=True)
        assert coll is not None  # create=True always yields one
        return coll

    def names(self, tenant: str = DEFAULT_TENANT) -> list[str]:
        check_name("tenant", tenant)
        with self._lock:
            live = {name for (t, name) in self._open if t == tenant}
        on_disk = persist.saved_names(self.root / tenant) if self.root else []
        shared = self._meta.names(tenant) if self._meta is not None else []
        return sorted(live | set(on_disk) | set(shared))

    def drop(self, name: str, tenant: str = DEFAULT_TENANT) -> bool:
        """Forget a collection and delete its file; True if it existed."""
        folder = self._folder(name, tenant)
        with self._lock:
            existed = self._open.pop((tenant, name), None) is not None
            if folder is not None and (folder / persist.FILE_NAME).exists():
                (folder / persist.FILE_NAME).unlink()
                existed = True
            self._generations.pop((tenant, name), None)
        if self._meta is not None:
            self._meta.forget(tenant, name)
        return existed

    def _folder(self, name: str, tenant: str) -> Path | None:
        check_name("collection name", name)
        check_name("tenant", tenant)
        return self.root / tenant / name if self.root else None

    def _lookup(self, name: str, tenant: str, create: bool) -> Collection | None:
        folder = self._folder(name, tenant)
        key = (tenant, name)
        with self._lock:
            coll = self._open.get(key)
            shared = self._meta.generation(tenant, name) if self._meta is not None else None
            if coll is not None and shared is not None and shared != self._generations.get(key):
                coll = None  # another replica changed it: reload from the shared folder
            if coll is None and folder is not None:
                coll = Collection.load(name, self._embedder(), folder, reembed=self._reembed)
                self._generations[key] = shared
            if coll is None and create:
                coll = Collection(name, self._embedder(), self.chunking, folder)
            if coll is not None:
                self._open[key] = coll
            return coll
