"""The one error hierarchy of ragpress.

::

    RagpressError                 base; never raised itself
    ├── InvalidArgument           the caller's input is wrong      -> INVALID_ARGUMENT
    │   └── UnknownName           an unknown method/model/...      -> INVALID_ARGUMENT
    ├── NotFound                  a named thing does not exist     -> NOT_FOUND
    ├── FailedPrecondition        valid, but not in this set-up    -> FAILED_PRECONDITION
    ├── Unimplemented             an RPC or feature not built yet  -> UNIMPLEMENTED
    ├── Unavailable               an upstream or model is down     -> UNAVAILABLE
    ├── DeadlineExceeded          the caller's deadline ran out    -> DEADLINE_EXCEEDED
    │   └── Cancelled             the caller went away             -> CANCELLED
    ├── ResourceExhausted         a limit of concurrency or memory -> RESOURCE_EXHAUSTED
    ├── Unauthenticated           no valid API key                 -> UNAUTHENTICATED
    ├── PermissionDenied          the key's role forbids the call  -> PERMISSION_DENIED
    └── InternalError             a bug; logged with a request id  -> INTERNAL

Lower libraries' errors are translated where they are caught
(``raise InvalidArgument(...) from exc``); the mapping to gRPC status codes
lives in :mod:`middleware.interceptors` only.
"""

from __future__ import annotations

from collections.abc import Iterable


class RagpressError(Exception):
    """Base of every error ragpress raises on purpose."""


class InvalidArgument(RagpressError):
    """The request is malformed; the message says which field and why."""


class UnknownName(InvalidArgument):
    """A name (method, model, option) that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}")


class NotFound(RagpressError):
    """A named resource (a collection, say) does not exist."""


class FailedPrecondition(RagpressError):
    """The request is well formed but cannot run as set up (e.g. soft tokens for a hosted model);
    the message says what must change."""


class Unimplemented(RagpressError):
    """Declared in the API but not built yet."""


class Unavailable(RagpressError):
    """An upstream model or service could not answer."""


class DeadlineExceeded(RagpressError):
    """The caller's deadline passed before the work finished."""


class Cancelled(DeadlineExceeded):
    """The caller cancelled the call (or hung up); work in progress stops."""


class ResourceExhausted(RagpressError):
    """The service is at a concurrency, queue or memory limit; retry later or elsewhere."""


class Unauthenticated(RagpressError):
    """The call carries no API key, or one the service does not know."""


class PermissionDenied(RagpressError):
    """The caller's key is valid but its role does not allow this call."""


class InternalError(RagpressError):
    """A bug: something that should not happen did."""
