"""The one place where the error hierarchy becomes gRPC status codes.

Also gives every call its request id and tenant (metadata ``x-request-id`` and
``x-ragpress-tenant``), available to handlers through :data:`CALL`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

import grpc

from middleware import errors

log = logging.getLogger("ragpress.rpc")

TENANT_KEY = "x-ragpress-tenant"
REQUEST_ID_KEY = "x-request-id"
DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# Order matters: subclasses before their bases.
STATUS: tuple[tuple[type[errors.RagpressError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.InternalError, grpc.StatusCode.INTERNAL),
)


@dataclass(frozen=True)
class Call:
    request_id: str
    tenant: str
    method: str


CALL: contextvars.ContextVar[Call] = contextvars.ContextVar("ragpress_call")
# A handler sets the compression method(s) of its call here, for the latency histogram.
METHOD_LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("ragpress_method_label", default="")


class Observer(Protocol):
    """Told about every finished RPC (metrics); must not raise or block."""

    def observe_rpc(self, rpc: str, method: str, code: str, seconds: float) -> None: ...


def status_for(exc: errors.RagpressError) -> grpc.StatusCode:
    for kind, code in STATUS:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _call_from(context: grpc.aio.ServicerContext, method: str) -> Call:
    meta = {k: v for k, v in (context.invocation_metadata() or ())}
    tenant = meta.get(TENANT_KEY) or DEFAULT_TENANT
    if not _TENANT_RE.match(tenant):
        raise errors.InvalidArgument(
            f"metadata {TENANT_KEY} must be 1-64 characters of letters, digits, '_', '-' or '.'")
    rid = meta.get(REQUEST_ID_KEY) or uuid.uuid4().hex
    return Call(request_id=rid[:128], tenant=tenant, method=method)


async def _fail(context: grpc.aio.ServicerContext, call: Call | None, exc: BaseException) -> None:
    rid = call.request_id if call else "-"
    if isinstance(exc, errors.RagpressError) and not isinstance(exc, errors.InternalError):
        code = status_for(exc)
        log.info("rpc %s request_id=%s -> %s: %s", call.method if call else "?", rid, code.name, exc)
        await context.abort(code, str(exc))
    log.error("rpc %s request_id=%s failed", call.method if call else "?", rid, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid}); see the server log")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Sets the call context and maps exceptions to statuses for every RPC of ours."""

    def __init__(self, service_prefix: str = "/ragpress.", observer: Observer | None = None) -> None:
        self._prefix = service_prefix
        self._observer = observer

    def _observe(self, rpc: str, context: grpc.aio.ServicerContext, started: float, exc: BaseException | None) -> None:
        if self._observer is None:
            return
        if exc is None:
            code = "OK"
        elif isinstance(exc, errors.RagpressError):
            code = status_for(exc).name
        else:  # an abort (already carries its code) or a bug (INTERNAL)
            code = getattr(context.code(), "name", None) or "INTERNAL"
        self._observer.observe_rpc(rpc, METHOD_LABEL.get(), code, time.perf_counter() - started)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler]],
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(self._prefix):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                call = None
                started, failure = time.perf_counter(), None
                try:
                    call = _call_from(context, method)
                    CALL.set(call)
                    await context.send_initial_metadata(((REQUEST_ID_KEY, call.request_id),))
                    return await inner(request, context)
                except Exception as exc:  # noqa: BLE001 - this is the one place that maps them
                    failure = exc
                    if _is_abort(exc):
                        raise
                    await _fail(context, call, exc)
                finally:
                    self._observe(method, context, started, failure)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext):
                call = None
                started, failure = time.perf_counter(), None
                try:
                    call = _call_from(context, method)
                    CALL.set(call)
                    await context.send_initial_metadata(((REQUEST_ID_KEY, call.request_id),))
                    async for item in inner_stream(request, context):
                        yield item
                except Exception as exc:  # noqa: BLE001
                    failure = exc
                    if _is_abort(exc):
                        raise
                    await _fail(context, call, exc)
                finally:
                    self._observe(method, context, started, failure)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler


def _is_abort(exc: BaseException) -> bool:
    # context.abort() raises grpc.aio.AbortError; it must pass through untouched.
    return isinstance(exc, grpc.aio.AbortError)
