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
    """Compress documents and retrieve from collections, sync and async."""

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


class RemoteBackend(Backend):
    """Calls a ragpress server over gRPC: blocking client for the sync methods,
    the asyncio client (grpc.aio, no threads) for the async ones.

    Each call opens its own channel, so one backend is safe to use from any thread
    and any event loop.
    """

    def __init__(self, target: str, tenant: str | None = None, timeout: float | None = 30.0,
                 api_key: str | None = None, credentials: Any = None) -> None:
        self.target = target
        self.tenant = tenant
        self.timeout = timeout
        # An API key (the server then takes the tenant from it) and grpc.ChannelCredentials (TLS).
        self._auth = {"api_key": api_key, "credentials": credentials}

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        from middleware.types import DEFAULT_MODEL

        out = dict(options)
        if out.get("model") is None:
            out["model"] = DEFAULT_MODEL
        return out

    def compress(self, query, documents, budget, **options):
        from middleware.client import RagpressClient

        with RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout, **self._auth) as client:
            return client.compress(query, documents, budget, **self._options(options))

    async def acompress(self, query, documents, budget, **options):
        from middleware.client import AsyncRagpressClient

        async with AsyncRagpressClient(self.target, tenant=self.tenant, timeout=self.timeout, **self._auth) as client:
            return await client.compress(query, documents, budget, **self._options(options))

    def retrieve(self, collection, query):
        from middleware.client import RagpressClient

        with RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout, **self._auth) as client:
            return client.retrieve(collection, query.text, query.top_k, mode=query.mode, filter=query.filter)

    async def aretrieve(self, collection, query):
        from middleware.client import AsyncRagpressClient

        async with AsyncRagpressClient(self.target, tenant=self.tenant, timeout=self.timeout, **self._auth) as client:
            return await client.retrieve(collection, query.text, query.top_k, mode=query.mode, filter=query.filter)


def make_backend(engine: Any, target: str | None, tenant: str | None, timeout: float | None,
                 api_key: str | None = None, credentials: Any = None) -> Backend:
    """The remote backend when ``target`` is given, else a local one (a default engine if none)."""
    from middleware.errors import InvalidArgument

    if engine is not None and target:
        raise InvalidArgument("give either an engine (in-process) or a target (remote server), not both")
    if target:
        return RemoteBackend(target, tenant, timeout, api_key, credentials)
    if engine is None:
        from middleware.library import Ragpress

        engine = Ragpress()
    return LocalBackend(engine, tenant or DEFAULT_TENANT)
