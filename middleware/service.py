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
    from middleware.generation.generate import Generator, Prepared

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RagpressService"].full_name


class RagpressServicer(pb_grpc.RagpressServiceServicer):
    def __init__(self, settings: Settings, pipeline: Pipeline, executor: Executor, recorder=None,
                 generator: "Generator | None" = None, collections: "Collections | None" = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.executor = executor
        # middleware.accounting.Recorder, or None (no ledger, no metrics). Token-spending
        # handlers call self.recorder.record_usage(...) once per call; see docs/accounting.md.
        self.recorder = recorder
        if generator is None:
            from middleware.generation.generate import Generator

            generator = Generator(settings, pipeline.models, pipeline)
        self.generator = generator
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
            from middleware.pipeline import retrieve_and_compress

            work = functools.partial(retrieve_and_compress, self._collections(), self.pipeline, call.tenant,
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

    async def _prepare(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> "Prepared":
        domain = convert.generate_request_from_pb(request, self.settings)
        source = convert.compress_source_from_pb(
            pb.CompressRequest(query=request.query, collection=request.collection,
                               retrieve_top_k=request.retrieve_top_k))
        call = CALL.get()

        def work() -> "Prepared":
            prepared = domain
            if source is not None:
                from middleware.generation import soft

                # Also carries the collection's stored vectors to the soft-token method.
                prepared = soft.fill(self._collections(), call.tenant, *source, domain, self.pipeline.models)
            return self.generator.prepare(prepared, call.request_id)

        return await self._offload(context, work)

    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        from middleware.generation.generate import collect

        prepared = await self._prepare(request, context)
        events = self.generator.run(prepared, tenant=CALL.get().tenant, timeout=context.time_remaining(), stream=False)
        result = await collect(events)
        self._record_generate(result)
        return convert.generate_result_to_pb(result)

    async def GenerateStream(self, request: pb.GenerateStreamRequest, context: grpc.aio.ServicerContext):
        prepared = await self._prepare(request.request, context)
        events = self.generator.run(prepared, tenant=CALL.get().tenant, timeout=context.time_remaining(), stream=True)
        async for item in events:
            if isinstance(item, str):
                yield pb.GenerateStreamResponse(text_delta=item)
            else:
                self._record_generate(item)
                yield pb.GenerateStreamResponse(final_response=convert.generate_result_to_pb(item))

    def _record_generate(self, result) -> None:
        """One ledger record and metrics update per answered Generate(Stream) call."""
        if self.recorder is None:
            return
        u = result.usage
        local = result.model.startswith("local/")
        self.recorder.record_usage(
            "Generate", model=result.model, method="+".join(s.method for s in result.compression.stages),
            original_tokens=u.original_prompt_tokens, compressed_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, cached_tokens=u.cached_prompt_tokens,
            cache_query_tokens=u.prompt_tokens if local else 0,
            compressor_latency_ms=sum(s.latency_ms for s in result.compression.stages))

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
