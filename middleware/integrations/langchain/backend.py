"""Where LangChain components send their work: an in-process engine or a remote
ragpress server. Both meet one small contract, with real async paths."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any, Sequence

from middleware.types import CompressResult, Document
from retrievers.base import Query

DEFAULT_TENANT = "default"


class Backend(ABC):
    """Compress documents, retrieve from collections, select demonstrations; sync and async."""

    @abstractmethod
    def compress(self, query: str, documents: Sequence[Document], budget: int | float,
                 **options: Any) -> CompressResult: ...

    @abstractmethod
    async def acompress(self, query: str, documents: Sequence[Document], budget: int | float,
                        **options: Any) -> CompressResult: ...

    @abstractmethod
    def retrieve(self, collection: str, query: Query) -> list[tuple[Document, float]]: ...

    @abstractmethod
    async def aretrieve(self, collection: str, query: Query) -> list[tuple[Document, float]]: ...

    @abstractmethod
    def select_demonstrations(self, query: str, pool: Sequence[Any], **options: Any) -> Any:
        """A :class:`middleware.demonstrations.SelectResult`; ``options`` as
        :func:`middleware.library.build_select_request` takes them."""

    @abstractmethod
    async def aselect_demonstrations(self, query: str, pool: Sequence[Any], **options: Any) -> Any: ...

    @abstractmethod
    def index_demonstrations(self, pool: str, demonstrations: Sequence[Any]) -> Any: ...

    @abstractmethod
    async def aindex_demonstrations(self, pool: str, demonstrations: Sequence[Any]) -> Any: ...


class LocalBackend(Backend):
    """Runs in this process on a :class:`middleware.library.Ragpress` engine.

    The async methods run the CPU-bound work in a worker thread so the event loop
    keeps serving; the engine and its collections are thread-safe.
    """

    def __init__(self, engine: Any, tenant: str = DEFAULT_TENANT) -> None:
        self.engine = engine
        self.tenant = tenant

    def compress(self, query, documents, budget, **options):
        return self.engine.compress(query, documents, budget, **options)

    async def acompress(self, query, documents, budget, **options):
        return await asyncio.to_thread(self.compress, query, documents, budget, **options)

    def retrieve(self, collection, query):
        from retrievers import ops

        return [(h.document, h.score) for h in ops.retrieve(self.engine.collections, self.tenant, collection, query)]

    async def aretrieve(self, collection, query):
        return await asyncio.to_thread(self.retrieve, collection, query)

    def select_demonstrations(self, query, pool, **options):
        return self.engine.select_demonstrations(query, pool, tenant=self.tenant, **options)

    async def aselect_demonstrations(self, query, pool, **options):
        return await asyncio.to_thread(self.select_demonstrations, query, pool, **options)

    def index_demonstrations(self, pool, demonstrations):
        return self.engine.index_demonstrations(pool, demonstrations, tenant=self.tenant)

    async def aindex_demonstrations(self, pool, demonstrations):
        return await asyncio.to_thread(self.index_demonstrations, pool, demonstrations)


class RemoteBackend(Backend):
    """Calls a ragpress server over gRPC: blocking client for the sync methods,
    the asyncio client (grpc.aio, no threads) for the async ones.

    Each call opens its own channel, so one backend is safe to use from any thread
    and any event loop.
    """

    def __init__(self, target: str, tenant: str | None = None, timeout: float | None = 30.0) -> None:
        self.target = target
        self.tenant = tenant
        self.timeout = timeout

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        from middleware.types import DEFAULT_MODEL

        out = dict(options)
        if out.get("model") is None:
            out["model"] = DEFAULT_MODEL
        return out

    def compress(self, query, documents, budget, **options):
        from middleware.client import RagpressClient

        with RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return client.compress(query, documents, budget, **self._options(options))

    async def acompress(self, query, documents, budget, **options):
        from middleware.client import AsyncRagpressClient

        async with AsyncRagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return await client.compress(query, documents, budget, **self._options(options))

    def retrieve(self, collection, query):
        from middleware.client import RagpressClient

        with RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return client.retrieve(collection, query.text, query.top_k, mode=query.mode, filter=query.filter)

    async def aretrieve(self, collection, query):
        from middleware.client import AsyncRagpressClient

        async with AsyncRagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return await client.retrieve(collection, query.text, query.top_k, mode=query.mode, filter=query.filter)

    def select_demonstrations(self, query, pool, **options):
        from middleware.client import RagpressClient

        with RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return client.select_demonstrations(query, pool, **self._options(options))

    async def aselect_demonstrations(self, query, pool, **options):
        from middleware.client import AsyncRagpressClient

        async with AsyncRagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return await client.select_demonstrations(query, pool, **self._options(options))

    def index_demonstrations(self, pool, demonstrations):
        from middleware.client import RagpressClient

        with RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return client.index_demonstrations(pool, demonstrations)

    async def aindex_demonstrations(self, pool, demonstrations):
        from middleware.client import AsyncRagpressClient

        async with AsyncRagpressClient(self.target, tenant=self.tenant, timeout=self.timeout) as client:
            return await client.index_demonstrations(pool, demonstrations)


def make_backend(engine: Any, target: str | None, tenant: str | None, timeout: float | None) -> Backend:
    """The remote backend when ``target`` is given, else a local one (a default engine if none)."""
    from middleware.errors import InvalidArgument

    if engine is not None and target:
        raise InvalidArgument("give either an engine (in-process) or a target (remote server), not both")
    if target:
        return RemoteBackend(target, tenant, timeout)
    if engine is None:
        from middleware.library import Ragpress

        engine = Ragpress()
    return LocalBackend(engine, tenant or DEFAULT_TENANT)
