"""The one place where the error hierarchy becomes gRPC status codes.

Also gives every call its request id and tenant (metadata ``x-request-id`` and
``x-ragpress-tenant``), available to handlers through :data:`CALL`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
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
    (errors.Cancelled, grpc.StatusCode.CANCELLED),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.InternalError, grpc.StatusCode.INTERNAL),
)


@dataclass(frozen=True)
class Call:
    request_id: str
    tenant: str
    method: str
    # The caller's role when API keys are on ("reader", "writer", "admin"); "" when they
    # are off (tenants are then self-declared and nothing is restricted).
    role: str = ""
    # Size of the request message in bytes (large ones get their own worker lane).
    size: int = 0

    @property
    def all_tenants(self) -> bool:
        """May this caller see every tenant's data (usage)?"""
        return self.role in ("", "admin")


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


def _call_from(context: grpc.aio.ServicerContext, method: str, keys: Any = None) -> Call:
    pairs = tuple(context.invocation_metadata() or ())
    meta = {k: v for k, v in pairs}
    rid = meta.get(REQUEST_ID_KEY) or uuid.uuid4().hex
    if keys is not None and keys.enabled:
        from middleware.auth import key_from

        # A keyed caller's tenant is its key's; the tenant header is ignored.
        principal = keys.authorize(key_from(pairs), method)
        return Call(request_id=rid[:128], tenant=principal.tenant, method=method, role=principal.role)
    tenant = meta.get(TENANT_KEY) or DEFAULT_TENANT
    if not _TENANT_RE.match(tenant):
        raise errors.InvalidArgument(
            f"metadata {TENANT_KEY} must be 1-64 characters of letters, digits, '_', '-' or '.'")
    return Call(request_id=rid[:128], tenant=tenant, method=method)


async def _fail(context: grpc.aio.ServicerContext, call: Call | None, exc: BaseException, method: str = "?") -> None:
    rid = call.request_id if call else "-"
    if isinstance(exc, errors.RagpressError) and not isinstance(exc, errors.InternalError):
        code = status_for(exc)
        log.info("rpc %s request_id=%s -> %s: %s", call.method if call else method, rid, code.name, exc)
        await context.abort(code, str(exc))
    log.error("rpc %s request_id=%s failed", call.method if call else method, rid, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid}); see the server log")


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Sets the call context and maps exceptions to statuses for every RPC of ours."""

    def __init__(self, service_prefix: str = "/ragpress.", observer: Observer | None = None,
                 keys: Any = None, gate: Any = None, limits: Any = None) -> None:
        self._prefix = service_prefix
        self._observer = observer
        # middleware.auth.KeyStore, middleware.limits.Gate and Limits; None switches each off.
        self._keys = keys
        self._gate = gate
        self._limits = limits

    def _enter(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> tuple[Call, Any]:
        """Decode check, authentication, size limit and admission, cheapest first:
        a refused call costs no model time. Returns the call and its admission."""
        _check_decoded(request, method)
        call = _call_from(context, method, self._keys)
        size = request.ByteSize()
        if self._limits is not None:
            self._limits.check_request_size(method, size)
        call = dataclasses.replace(call, size=size)
        admission = self._gate.admit(call.tenant) if self._gate is not None else contextlib.nullcontext()
        return call, admission

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
                    call, admission = self._enter(request, context, method)
                    CALL.set(call)
                    with admission:
                        await context.send_initial_metadata(((REQUEST_ID_KEY, call.request_id),))
                        return await inner(request, context)
                except Exception as exc:  # noqa: BLE001 - this is the one place that maps them
                    failure = exc
                    if _is_abort(exc):
                        raise
                    await _fail(context, call, exc, method)
                finally:
                    self._observe(method, context, started, failure)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext):
                call = None
                started, failure = time.perf_counter(), None
                try:
                    call, admission = self._enter(request, context, method)
                    CALL.set(call)
                    with admission:
                        await context.send_initial_metadata(((REQUEST_ID_KEY, call.request_id),))
                        async for item in inner_stream(request, context):
                            yield item
                except Exception as exc:  # noqa: BLE001
                    failure = exc
                    if _is_abort(exc):
                        raise
                    await _fail(context, call, exc, method)
                finally:
                    self._observe(method, context, started, failure)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer)
        return handler


@dataclass(frozen=True)
class Undecodable:
    """A request body that failed to parse. grpc would answer UNKNOWN and log the
    traceback; the handler turns it into INVALID_ARGUMENT instead."""

    reason: str


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: the sender's fault
            return Undecodable(f"{type(exc).__name__}: {exc}")

    return parse


def _check_decoded(request: Any, method: str) -> None:
    if isinstance(request, Undecodable):
        raise errors.InvalidArgument(f"the request body is not a valid {method} request message ({request.reason})")


def _is_abort(exc: BaseException) -> bool:
    # context.abort() raises grpc.aio.AbortError; it must pass through untouched.
    return isinstance(exc, grpc.aio.AbortError)
