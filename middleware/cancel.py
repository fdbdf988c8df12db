"""Cooperative cancellation of work running in worker threads.

A thread cannot be killed, so long work checks a token at safe points (between
pipeline stages, embedding batches, prefill chunks, decode steps) and stops
there. The service binds a token to each call it offloads (the call's deadline,
cancelled when the client hangs up); code that runs outside a call sees no token
and never stops early.

Invariant: :func:`check` is cheap (one context-variable read and one clock read),
so it can sit inside loops.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Callable, TypeVar

from middleware.errors import Cancelled, DeadlineExceeded

T = TypeVar("T")


class Token:
    """Cancelled explicitly (:meth:`cancel`) or when ``deadline`` (monotonic seconds) passes."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "the call was cancelled") -> None:
        self.reason = reason
        self.event.set()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)

    def check(self) -> None:
        """Raise :class:`Cancelled` or :class:`DeadlineExceeded` when the work should stop."""
        if self.event.is_set():
            raise Cancelled(self.reason)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded("the deadline passed while the work was running")


_CURRENT: contextvars.ContextVar[Token | None] = contextvars.ContextVar("ragpress_cancel", default=None)


def current() -> Token | None:
    """The token of the call this thread works for, if any."""
    return _CURRENT.get()


def check() -> None:
    """Stop here (raise) when the current call was cancelled or ran past its deadline."""
    token = _CURRENT.get()
    if token is not None:
        token.check()


def bound(token: Token, fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` wrapped to run with ``token`` current (in whatever thread runs it)."""
    context = contextvars.copy_context()
    context.run(_CURRENT.set, token)
    return lambda: context.run(fn)
