"""Small Python clients (sync and asyncio) for the ragpress gRPC service.

They speak domain types; protobuf stays inside :mod:`middleware.convert`.
gRPC errors surface as ``grpc.RpcError`` with the server's status and message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import grpc

from middleware import convert
from middleware.interceptors import TENANT_KEY
from middleware.library import as_document, build_request
from middleware.types import (
    DEFAULT_MODEL, Budget, CompressRequest, CompressResult, ContextFormat, Document, Stage,
)
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from middleware.demonstrations import SelectResult
    from retrievers.base import ChunkingParams, IndexResult
    from retrievers.demos.pools import PoolIndexResult

_MAX_MESSAGE = 64 * 1024 * 1024


def _request(query: str, documents: Iterable[Document | Mapping[str, Any]], budget: Budget | int | float,
             model: str, method: str | None, pipeline: Sequence[Stage] | None,
             context_format: ContextFormat | None) -> CompressRequest:
    return build_request(query, documents, budget, model=model, method=method, pipeline=pipeline,
                         context_format=context_format)


def _compress_pb(req: CompressRequest, collection: str | None, retrieve_top_k: int | None):
    msg = convert.compress_request_to_pb(req)
    if collection:
        msg.collection = collection
        msg.retrieve_top_k = retrieve_top_k or 0
    return msg


def _index_pb(collection: str, documents: Iterable[Document | Mapping[str, Any]], delete_ids: Iterable[str],
              chunking: "ChunkingParams | None"):
    from retrievers.base import IndexRequest

    docs = tuple(as_document(d, i) for i, d in enumerate(documents))
    return convert.index_request_to_pb(IndexRequest(collection, docs, tuple(delete_ids), chunking))


def _index_result(msg) -> "IndexResult":
    from retrievers.base import IndexResult

    return IndexResult(msg.upserted_documents, msg.deleted_documents, msg.chunks)


def _select_pb(query: str, pool: Iterable[Any], options: dict[str, Any]):
    from middleware.library import build_select_request

    options.setdefault("model", DEFAULT_MODEL)
    return convert.select_request_to_pb(build_select_request(query, pool, **options))


def _index_demos_pb(pool: str, demonstrations: Iterable[Any], delete_ids: Iterable[str]):
    from middleware.library import as_demonstration

    demos = [as_demonstration(d, i, need_id=True) for i, d in enumerate(demonstrations)]
    return convert.index_demonstrations_to_pb(pool, demos, delete_ids)


def _retrieve_pb(collection: str, query: str, top_k: int, mode: str, filter: Mapping[str, Any] | None):
    from retrievers.base import Query

    return convert.retrieve_request_to_pb(collection, Query(query, top_k, mode, filter or {}))


class _Base:
    """Shared set-up. ``api_key`` travels as ``authorization: Bearer <key>`` (a keyed server
    takes the tenant from the key); ``credentials`` (:func:`middleware.tls.client_credentials`)
    make the channel TLS or mutual TLS."""

    def __init__(self, target: str, tenant: str | None, timeout: float | None, api_key: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self.target = target
        self.timeout = timeout
        metadata = [(TENANT_KEY, tenant)] if tenant else []
        if api_key:
            metadata.append(("authorization", f"Bearer {api_key}"))
        self.metadata = tuple(metadata)
        self.credentials = credentials
        self.options = [("grpc.max_receive_message_length", _MAX_MESSAGE),
                        ("grpc.max_send_message_length", _MAX_MESSAGE)]


class RagpressClient(_Base):
    """Blocking client. ``with RagpressClient("127.0.0.1:50051") as c: c.compress(...)``."""

    def __init__(self, target: str, *, tenant: str | None = None, timeout: float | None = 30.0,
                 api_key: str | None = None, credentials: grpc.ChannelCredentials | None = None) -> None:
        super().__init__(target, tenant, timeout, api_key, credentials)
        self.channel = (grpc.secure_channel(target, credentials, options=self.options) if credentials
                        else grpc.insecure_channel(target, options=self.options))
        self.stub = pb_grpc.RagpressServiceStub(self.channel)

    def compress(self, query: str, documents: Iterable[Document | Mapping[str, Any]],
                 budget: Budget | int | float, *, model: str = DEFAULT_MODEL, method: str | None = None,
                 pipeline: Sequence[Stage] | None = None,
                 context_format: ContextFormat | None = None, collection: str | None = None,
                 retrieve_top_k: int | None = None) -> CompressResult:
        """Compress ``documents``, or (with ``collection``) the top documents retrieved for ``query``."""
        req = _request(query, documents, budget, model, method, pipeline, context_format)
        reply = self.stub.Compress(_compress_pb(req, collection, retrieve_top_k), timeout=self.timeout,
                                   metadata=self.metadata)
        return convert.compress_result_from_pb(reply)

    def index(self, collection: str, documents: Iterable[Document | Mapping[str, Any]] = (),
              delete_ids: Iterable[str] = (), chunking: "ChunkingParams | None" = None) -> "IndexResult":
        """Upsert ``documents`` into and delete ``delete_ids`` from a named collection."""
        reply = self.stub.Index(_index_pb(collection, documents, delete_ids, chunking), timeout=self.timeout,
                                metadata=self.metadata)
        return _index_result(reply)

    def retrieve(self, collection: str, query: str, top_k: int = 10, *, mode: str = "dense",
                 filter: Mapping[str, Any] | None = None) -> list[tuple[Document, float]]:
        """(document, score) pairs, best first."""
        reply = self.stub.Retrieve(_retrieve_pb(collection, query, top_k, mode, filter), timeout=self.timeout,
                                   metadata=self.metadata)
        return convert.scored_from_pb(reply)

    def select_demonstrations(self, query: str, pool: Iterable[Any] = (), **options: Any) -> "SelectResult":
        """Few-shot demonstrations for ``query`` from an inline ``pool`` or ``pool_name=...``;
        ``options`` are :func:`middleware.library.build_select_request`'s."""
        reply = self.stub.SelectDemonstrations(_select_pb(query, pool, options), timeout=self.timeout,
                                               metadata=self.metadata)
        return convert.select_result_from_pb(reply)

    def index_demonstrations(self, pool: str, demonstrations: Iterable[Any] = (),
                             delete_ids: Iterable[str] = ()) -> "PoolIndexResult":
        """Upsert demonstrations into (and delete ids from) a named pool of this tenant."""
        reply = self.stub.IndexDemonstrations(_index_demos_pb(pool, demonstrations, delete_ids),
                                              timeout=self.timeout, metadata=self.metadata)
        return convert.pool_index_result_from_pb(reply)

    def health(self, service: str = "") -> str:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        reply = health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "RagpressClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRagpressClient(_Base):
    """asyncio client. ``async with AsyncRagpressClient(addr) as c: await c.compress(...)``."""

    def __init__(self, target: str, *, tenant: str | None = None, timeout: float | None = 30.0,
                 api_key: str | None = None, credentials: grpc.ChannelCredentials | None = None) -> None:
        super().__init__(target, tenant, timeout, api_key, credentials)
        self.channel = (grpc.aio.secure_channel(target, credentials, options=self.options) if credentials
                        else grpc.aio.insecure_channel(target, options=self.options))
        self.stub = pb_grpc.RagpressServiceStub(self.channel)

    async def compress(self, query: str, documents: Iterable[Document | Mapping[str, Any]],
                       budget: Budget | int | float, *, model: str = DEFAULT_MODEL, method: str | None = None,
                       pipeline: Sequence[Stage] | None = None,
                       context_format: ContextFormat | None = None, collection: str | None = None,
                 retrieve_top_k: int | None = None) -> CompressResult:
        """Compress ``documents``, or (with ``collection``) the top documents retrieved for ``query``."""
        req = _request(query, documents, budget, model, method, pipeline, context_format)
        reply = await self.stub.Compress(_compress_pb(req, collection, retrieve_top_k), timeout=self.timeout,
                                         metadata=self.metadata)
        return convert.compress_result_from_pb(reply)

    async def index(self, collection: str, documents: Iterable[Document | Mapping[str, Any]] = (),
                    delete_ids: Iterable[str] = (), chunking: "ChunkingParams | None" = None) -> "IndexResult":
        reply = await self.stub.Index(_index_pb(collection, documents, delete_ids, chunking),
                                      timeout=self.timeout, metadata=self.metadata)
        return _index_result(reply)

    async def retrieve(self, collection: str, query: str, top_k: int = 10, *, mode: str = "dense",
                       filter: Mapping[str, Any] | None = None) -> list[tuple[Document, float]]:
        reply = await self.stub.Retrieve(_retrieve_pb(collection, query, top_k, mode, filter),
                                         timeout=self.timeout, metadata=self.metadata)
        return convert.scored_from_pb(reply)

    async def select_demonstrations(self, query: str, pool: Iterable[Any] = (), **options: Any) -> "SelectResult":
        reply = await self.stub.SelectDemonstrations(_select_pb(query, pool, options), timeout=self.timeout,
                                                     metadata=self.metadata)
        return convert.select_result_from_pb(reply)

    async def index_demonstrations(self, pool: str, demonstrations: Iterable[Any] = (),
                                   delete_ids: Iterable[str] = ()) -> "PoolIndexResult":
        reply = await self.stub.IndexDemonstrations(_index_demos_pb(pool, demonstrations, delete_ids),
                                                    timeout=self.timeout, metadata=self.metadata)
        return convert.pool_index_result_from_pb(reply)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "AsyncRagpressClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
