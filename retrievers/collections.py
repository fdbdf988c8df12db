"""Collections by name (per tenant): created on first index, loaded from disk on
first use, thread-safe."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from middleware.errors import NotFound
from middleware.embedders import Embedder
from middleware.settings import Settings
from retrievers import persist
from retrievers.base import ChunkingParams, check_name
from retrievers.store import Collection

DEFAULT_TENANT = "default"


class Collections:
    """A registry of :class:`Collection` objects keyed by (tenant, name).

    With ``root`` set, each collection lives in ``root/<tenant>/<name>/`` and is
    saved by :meth:`save`; without it, collections live in memory only.
    """

    def __init__(self, embedder: Callable[[], Embedder], chunking: ChunkingParams | None = None,
                 root: Path | None = None) -> None:
        self._embedder = embedder
        self.chunking = chunking or ChunkingParams()
        self.root = root
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], Collection] = {}

    @classmethod
    def from_settings(cls, settings: Settings, embedder: Callable[[], Embedder]) -> "Collections":
        root = Path(settings.data_dir) / "collections" if settings.persist_collections else None
        return cls(embedder, ChunkingParams(settings.chunk_tokens, settings.chunk_overlap_tokens), root)

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
        return sorted(live | set(on_disk))

    def drop(self, name: str, tenant: str = DEFAULT_TENANT) -> bool:
        """Forget a collection and delete its file; True if it existed."""
        folder = self._folder(name, tenant)
        with self._lock:
            existed = self._open.pop((tenant, name), None) is not None
            if folder is not None and (folder / persist.FILE_NAME).exists():
                (folder / persist.FILE_NAME).unlink()
                existed = True
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
            if coll is None and folder is not None:
                coll = Collection.load(name, self._embedder(), folder)
            if coll is None and create:
                coll = Collection(name, self._embedder(), self.chunking, folder)
            if coll is not None:
                self._open[key] = coll
            return coll
