"""The gRPC servicer: thin handlers that convert, run off the loop, convert back."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from typing import Callable, TypeVar

import grpc

from middleware import convert
from middleware.errors import DeadlineExceeded, Unimplemented
from middleware.interceptors import CALL
from middleware.pipeline import Pipeline
from middleware.settings import Settings
from ragpress.v1 import ragpress_pb2 as pb
from ragpress.v1 import ragpress_pb2_grpc as pb_grpc

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RagpressService"].full_name


class RagpressServicer(pb_grpc.RagpressServiceServicer):
    def __init__(self, settings: Settings, pipeline: Pipeline, executor: Executor) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.executor = executor

    async def _offload(self, context: grpc.aio.ServicerContext, fn: Callable[[], T]) -> T:
        """Run CPU-heavy work in the executor, within the caller's deadline."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn)
        remaining = context.time_remaining()
        try:
            return await asyncio.wait_for(future, timeout=remaining)
        except asyncio.TimeoutError as exc:
            raise DeadlineExceeded("the deadline passed while compressing") from exc

    async def Compress(self, request: pb.CompressRequest, context: grpc.aio.ServicerContext) -> pb.CompressResponse:
        domain = convert.compress_request_from_pb(request, self.settings)
        rid = CALL.get().request_id
        result = await self._offload(context, functools.partial(self.pipeline.compress, domain, rid))
        return convert.compress_result_to_pb(result)

    async def SelectDemonstrations(self, request, context):
        raise Unimplemented("SelectDemonstrations is not implemented yet (demonstration selection issue)")

    async def Generate(self, request, context):
        raise Unimplemented("Generate is not implemented yet (LLM gateway issue)")

    async def GenerateStream(self, request, context):
        raise Unimplemented("GenerateStream is not implemented yet (LLM gateway issue)")
        yield  # pragma: no cover - makes this an async generator

    async def Index(self, request, context):
        raise Unimplemented("Index is not implemented yet (retrievers issue)")

    async def Retrieve(self, request, context):
        raise Unimplemented("Retrieve is not implemented yet (retrievers issue)")

    async def GetUsage(self, request, context):
        raise Unimplemented("GetUsage is not implemented yet (cost accounting issue)")
