"""The gRPC servicer: thin handlers that convert, run off the loop, convert back."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Callable, TypeVar

import grpc

from middleware import convert
from middleware.errors import DeadlineExceeded, Unimplemented
from middleware.interceptors import CALL, METHOD_LABEL
from middleware.pipeline import Pipeline
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from retrievers.collections import Collections

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RagpressService"].full_name


class RagpressServicer(pb_grpc.RagpressServiceServicer):
    def __init__(self, settings: Settings, pipeline: Pipeline, executor: Executor, recorder=None,
                 collections: "Collections | None" = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.executor = executor
        # middleware.accounting.Recorder, or None (no ledger, no metrics). Token-spending
        # handlers call self.recorder.record_usage(...) once per call; see docs/accounting.md.
        self.recorder = recorder
        self.collections = collections

    async def _offload(self, context: grpc.aio.ServicerContext, fn: Callable[[], T]) -> T:
        """Run CPU-heavy work in the executor, within the caller's deadline."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn)
        remaining = context.time_remaining()
        try:
            return await asyncio.wait_for(future, timeout=remaining)
        except asyncio.TimeoutError as exc:
            raise DeadlineExceeded("the deadline passed before the work finished") from exc

    async def Compress(self, request: pb.CompressRequest, context: grpc.aio.ServicerContext) -> pb.CompressResponse:
        domain = convert.compress_request_from_pb(request, self.settings)
        METHOD_LABEL.set("+".join(s.method for s in domain.pipeline))
        source = convert.compress_source_from_pb(request)
        call = CALL.get()
        if source is None:
            work = functools.partial(self.pipeline.compress, domain, call.request_id)
        else:
            from retrievers import ops

            work = functools.partial(ops.retrieve_and_compress, self._collections(), self.pipeline, call.tenant,
                                     *source, domain, call.request_id)
        result = await self._offload(context, work)
        if self.recorder is not None:
            self.recorder.record_compress(result)
        return convert.compress_result_to_pb(result)

    def _collections(self) -> "Collections":
        if self.collections is None:
            raise Unimplemented("this server was started without collections")
        return self.collections

    async def SelectDemonstrations(self, request, context):
        raise Unimplemented("SelectDemonstrations is not implemented yet (demonstration selection issue)")

    async def Generate(self, request, context):
        raise Unimplemented("Generate is not implemented yet (LLM gateway issue)")

    async def GenerateStream(self, request, context):
        raise Unimplemented("GenerateStream is not implemented yet (LLM gateway issue)")
        yield  # pragma: no cover - makes this an async generator

    async def Index(self, request: pb.IndexRequest, context: grpc.aio.ServicerContext) -> pb.IndexResponse:
        from retrievers import ops

        domain = convert.index_request_from_pb(request)
        work = functools.partial(ops.index, self._collections(), CALL.get().tenant, domain)
        return convert.index_result_to_pb(await self._offload(context, work))

    async def Retrieve(self, request: pb.RetrieveRequest, context: grpc.aio.ServicerContext) -> pb.RetrieveResponse:
        from retrievers import ops

        name, query = convert.retrieve_request_from_pb(request)
        work = functools.partial(ops.retrieve, self._collections(), CALL.get().tenant, name, query)
        return convert.hits_to_pb(await self._offload(context, work))

    async def GetUsage(self, request: pb.GetUsageRequest, context: grpc.aio.ServicerContext) -> pb.GetUsageResponse:
        query = convert.usage_query_from_pb(request)
        if self.recorder is None:
            raise Unimplemented("this server runs without a usage ledger")
        rows = await self._offload(context, functools.partial(self.recorder.query, query))
        return convert.usage_rows_to_pb(rows)
