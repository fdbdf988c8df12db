"""Where framework adapters (LangChain, LlamaIndex) send their work: an in-process
engine or a remote ragpress server. Both meet one small contract, with real async paths."""

from __future__ import annotations

import asyncio
import threading
import weakref
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
    """Calls a ragpress server over gRPC: the blocking client for the sync methods,
    the asyncio client (grpc.aio, no threads) for the async ones.

    Channels are opened on first use and reused: one blocking channel (gRPC channels
    are thread-safe) and one asyncio channel per event loop (an aio channel belongs
    to the loop that made it). Reusing a channel saves a connection set-up per call.
    :meth:`close` / :meth:`aclose` release them.
    """

    def __init__(self, target: str, tenant: str | None = None, timeout: float | None = 30.0,
                 api_key: str | None = None, credentials: Any = None) -> None:
        self.target = target
        self.tenant = tenant
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()
        # An API key (the server then takes the tenant from it) and grpc.ChannelCredentials (TLS).
        self._auth = {"api_key": api_key, "credentials": credentials}

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        from middleware.types import DEFAULT_MODEL

        out = dict(options)
        if out.get("model") is None:
            out["model"] = DEFAULT_MODEL
        return out

    def client(self) -> Any:
        """The shared blocking :class:`~middleware.client.RagpressClient`."""
        with self._lock:
            if self._sync is None:
                from middleware.client import RagpressClient

                self._sync = RagpressClient(self.target, tenant=self.tenant, timeout=self.timeout, **self._auth)
            return self._sync

    def aclient(self) -> Any:
        """The :class:`~middleware.client.AsyncRagpressClient` of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                from middleware.client import AsyncRagpressClient

                client = self._async[loop] = AsyncRagpressClient(self.target, tenant=self.tenant,
                                                                 timeout=self.timeout, **self._auth)
            return client

    def close(self) -> None:
        """Close the blocking channel (the next call opens a new one)."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's asyncio channel, and the blocking one."""
        with self._lock:
            client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()
        self.close()

    def compress(self, query, documents, budget, **options):
        return self.client().compress(query, documents, budget, **self._options(options))

    async def acompress(self, query, documents, budget, **options):
        return await self.aclient().compress(query, documents, budget, **self._options(options))

    def retrieve(self, collection, query):
        return self.client().retrieve(collection, query.text, query.top_k, mode=query.mode, filter=query.filter)

    async def aretrieve(self, collection, query):
        return await self.aclient().retrieve(collection, query.text, query.top_k, mode=query.mode,
                                             filter=query.filter)

    def select_demonstrations(self, query, pool, **options):
        return self.client().select_demonstrations(query, pool, **self._options(options))

    async def aselect_demonstrations(self, query, pool, **options):
        return await self.aclient().select_demonstrations(query, pool, **self._options(options))

    def index_demonstrations(self, pool, demonstrations):
        return self.client().index_demonstrations(pool, demonstrations)

    async def aindex_demonstrations(self, pool, demonstrations):
        return await self.aclient().index_demonstrations(pool, demonstrations)


def make_backend(engine: Any, target: str | None, tenant: str | None, timeout: float | None,
                 budget: int | float | None = None, api_key: str | None = None, credentials: Any = None) -> Backend:
    """The remote backend when ``target`` is given, else a local one (a default engine if none).

    A component's ``budget``, when given, is checked here, so a bad one fails when the
    component is built rather than at its first call. ``api_key`` and ``credentials``
    (grpc.ChannelCredentials, for TLS) reach a remote server.
    """
    from middleware.errors import InvalidArgument
    from middleware.library import as_budget

    if budget is not None:
        as_budget(budget)
    if engine is not None and target:
        raise InvalidArgument("give either an engine (in-process) or a target (remote server), not both")
    if target:
        return RemoteBackend(target, tenant, timeout, api_key, credentials)
    if engine is None:
        from middleware.library import Ragpress

        engine = Ragpress()
    return LocalBackend(engine, tenant or DEFAULT_TENANT)
