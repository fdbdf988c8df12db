"""The gRPC servicer: thin handlers that convert, run off the loop, convert back."""

from __future__ import annotations

import asyncio
import functools
import threading
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
    from middleware.demonstrations import DemonstrationSelector
    from retrievers.collections import Collections
    from middleware.generation.generate import Generator, Prepared

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RagpressService"].full_name


class RagpressServicer(pb_grpc.RagpressServiceServicer):
    def __init__(self, settings: Settings, pipeline: Pipeline, executor: Executor, recorder=None,
                 generator: "Generator | None" = None, collections: "Collections | None" = None,
                 demonstrations: "DemonstrationSelector | None" = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.executor = executor
        # middleware.accounting.Recorder, or None (no ledger, no metrics). Token-spending
        # handlers call self.recorder.record_usage(...) once per call; see docs/accounting.md.
        self.recorder = recorder
        self._selector = demonstrations
        self._selector_lock = threading.Lock()
        if generator is None:
            from middleware.generation.generate import Generator

            generator = Generator(settings, pipeline.models, pipeline, self._demonstrations)
        self.generator = generator
        self.collections = collections
        # Set by the server: one thread for requests over heavy_request_bytes (None: one pool).
        self.heavy_executor: Executor | None = None
        from middleware import shared_cache
        from middleware.limits import Limits

        self.limits = Limits.from_settings(settings)
        # Compress results by tenant and input: in memory, or in Redis shared by replicas.
        self.results = shared_cache.from_settings(settings)

    async def _offload(self, context: grpc.aio.ServicerContext, fn: Callable[[], T]) -> T:
        """Run CPU-heavy work in the executor, within the caller's deadline.

        The work runs with a cancellation token (middleware.cancel): past the deadline or
        when the client hangs up, it stops at its next check instead of running on.
        """
        import time

        from middleware import cancel

        remaining = context.time_remaining()
        token = cancel.Token(time.monotonic() + remaining if remaining is not None else None)
        call = CALL.get(None)
        heavy = self.heavy_executor is not None and call is not None and \
            call.size > self.settings.heavy_request_bytes
        executor = self.heavy_executor if heavy else self.executor
        future = asyncio.get_running_loop().run_in_executor(executor, cancel.bound(token, fn))
        try:
            return await asyncio.wait_for(future, timeout=remaining)
        except asyncio.TimeoutError as exc:
            token.cancel("the deadline passed")
            raise DeadlineExceeded("the deadline passed before the work finished") from exc
        except asyncio.CancelledError:
            token.cancel("the client cancelled the call")
            raise

    async def Compress(self, request: pb.CompressRequest, context: grpc.aio.ServicerContext) -> pb.CompressResponse:
        domain = convert.compress_request_from_pb(request, self.settings)
        self.limits.check_compress(domain)
        METHOD_LABEL.set("+".join(s.method for s in domain.pipeline))
        source = convert.compress_source_from_pb(request)
        call = CALL.get()
        if source is None:
            work = functools.partial(self._compress_cached, domain, call.tenant, call.request_id)
        else:
            from middleware.pipeline import retrieve_and_compress

            work = functools.partial(retrieve_and_compress, self._collections(), self.pipeline, call.tenant,
                                     *source, domain, call.request_id)
        result = await self._offload(context, work)
        if self.recorder is not None:
            self.recorder.record_compress(result)
        return convert.compress_result_to_pb(result)

    def _compress_cached(self, domain, tenant: str, request_id: str):
        from middleware.shared_cache import cached_compress

        tokenizer = self.pipeline.models.tokenizers.get(domain.model).name
        return cached_compress(self.results, tenant, domain, tokenizer,
                               lambda: self.pipeline.compress(domain, request_id), request_id)

    def _collections(self) -> "Collections":
        if self.collections is None:
            raise Unimplemented("this server was started without collections")
        return self.collections

    def _demonstrations(self) -> "DemonstrationSelector":
        # Called from worker threads too (Generate's prepare): build it once.
        with self._selector_lock:
            if self._selector is None:
                from middleware.demonstrations import DemonstrationSelector
                from retrievers.demos.pools import DemoPools

                pools = DemoPools.from_settings(self.settings, self.pipeline.models.fast_embedder)
                self._selector = DemonstrationSelector(self.pipeline.models, self.pipeline, pools)
            return self._selector

    async def SelectDemonstrations(self, request: pb.SelectDemonstrationsRequest,
                                   context: grpc.aio.ServicerContext) -> pb.SelectDemonstrationsResponse:
        domain = convert.select_request_from_pb(request, self.settings)
        self.limits.check_select(domain)
        METHOD_LABEL.set(domain.method)
        call = CALL.get()
        work = functools.partial(self._demonstrations().select, domain, call.tenant, call.request_id)
        result = await self._offload(context, work)
        if self.recorder is not None:
            self.recorder.record_usage(
                "SelectDemonstrations", model=result.model, method=result.method_label,
                original_tokens=result.original_tokens, compressed_tokens=result.selected_tokens,
                compressor_latency_ms=result.latency_ms, request_id=result.request_id)
        return convert.select_result_to_pb(result)

    async def IndexDemonstrations(self, request: pb.IndexDemonstrationsRequest,
                                  context: grpc.aio.ServicerContext) -> pb.IndexDemonstrationsResponse:
        pool, demos, delete_ids = convert.index_demonstrations_from_pb(request)
        self.limits.check_demonstrations(demos, "demonstrations")
        work = functools.partial(self._demonstrations().index, pool, CALL.get().tenant, demos, delete_ids)
        return convert.pool_index_result_to_pb(await self._offload(context, work))

    async def _prepare(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> "Prepared":
        domain = convert.generate_request_from_pb(request, self.settings)
        self.limits.check_generate(domain)
        source = convert.compress_source_from_pb(
            pb.CompressRequest(query=request.query, collection=request.collection,
                               retrieve_top_k=request.retrieve_top_k))
        call = CALL.get()

        def work() -> "Prepared":
            prepared = domain
            if source is not None:
                from middleware.generation import soft

                from middleware.generation import soft

                # Also carries the collection's stored vectors to the soft-token method.
                prepared = soft.fill(self._collections(), call.tenant, *source, domain, self.pipeline.models)
            return self.generator.prepare(prepared, call.request_id, call.tenant)

        return await self._offload(context, work)

    async def Generate(self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext) -> pb.GenerateResponse:
        from middleware.generation.generate import collect

        prepared = await self._prepare(request, context)
        events = self.generator.run(prepared, tenant=CALL.get().tenant, timeout=context.time_remaining(), stream=False)
        result = await collect(events)
        self._record_generate("Generate", result)
        return convert.generate_result_to_pb(result)

    async def GenerateStream(self, request: pb.GenerateStreamRequest, context: grpc.aio.ServicerContext):
        prepared = await self._prepare(request.request, context)
        events = self.generator.run(prepared, tenant=CALL.get().tenant, timeout=context.time_remaining(), stream=True)
        async for item in events:
            if isinstance(item, str):
                yield pb.GenerateStreamResponse(text_delta=item)
            else:
                self._record_generate("GenerateStream", item)
                yield pb.GenerateStreamResponse(final_response=convert.generate_result_to_pb(item))

    def _record_generate(self, rpc: str, result) -> None:
        """One ledger record and metrics update per answered Generate or GenerateStream call."""
        if self.recorder is None:
            return
        u = result.usage
        local = result.model.startswith("local/")
        self.recorder.record_usage(
            rpc, model=result.model, method="+".join(s.method for s in result.compression.stages),
            original_tokens=u.original_prompt_tokens, compressed_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, cached_tokens=u.cached_prompt_tokens,
            cache_query_tokens=u.prompt_tokens if local else 0,
            compressor_latency_ms=sum(s.latency_ms for s in result.compression.stages),
            compressor_usd=self.recorder.compressor_usd(result.compression.stages))

    async def Index(self, request: pb.IndexRequest, context: grpc.aio.ServicerContext) -> pb.IndexResponse:
        from retrievers import ops

        domain = convert.index_request_from_pb(request)
        self.limits.check_index(domain)
        work = functools.partial(ops.index, self._collections(), CALL.get().tenant, domain)
        return convert.index_result_to_pb(await self._offload(context, work))

    async def Retrieve(self, request: pb.RetrieveRequest, context: grpc.aio.ServicerContext) -> pb.RetrieveResponse:
        from retrievers import ops

        name, query = convert.retrieve_request_from_pb(request)
        self.limits.check_retrieve(query)
        work = functools.partial(ops.retrieve, self._collections(), CALL.get().tenant, name, query)
        return convert.hits_to_pb(await self._offload(context, work))

    async def GetUsage(self, request: pb.GetUsageRequest, context: grpc.aio.ServicerContext) -> pb.GetUsageResponse:
        query = convert.usage_query_from_pb(request)
        call = CALL.get()
        if not call.all_tenants:
            import dataclasses

            # A keyed non-admin caller sees its own tenant's usage only.
            query = dataclasses.replace(query, tenant=call.tenant)
        if self.recorder is None:
            raise Unimplemented("this server runs without a usage ledger")
        rows = await self._offload(context, functools.partial(self.recorder.query, query))
        return convert.usage_rows_to_pb(rows)

