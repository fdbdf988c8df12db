"""When to retry a transient upstream failure, and how long to wait first (kernel floor).

One policy for every caller of a litellm model (Generate's ``retry`` fallback policy,
the abstractive summariser's): up to ``retries`` more attempts for a transient
:class:`~middleware.llm.completion.UpstreamError`, each after an exponential back-off
with random jitter (``base * 2**n`` plus up to ``base`` more, so replicas that failed
together do not retry together), or after the upstream's ``Retry-After`` when it asked
for longer. A wait that would end past the call's deadline, or a ``Retry-After`` longer
than :data:`RETRY_AFTER_CAP`, is not waited: the last error is raised at once, so the
caller's fallback (or its error) comes while the client still listens.

Built on tenacity; :func:`retrying` is for worker threads, :func:`async_retrying` for
the event loop. Both re-raise the last error when they stop.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import tenacity

from middleware.llm.completion import UpstreamError

log = logging.getLogger(__name__)

# An upstream that asks for a longer pause than this is treated as down for now:
# failing over (or failing) beats holding the call for minutes.
RETRY_AFTER_CAP = 60.0


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.transient


class _Wait(tenacity.wait.wait_base):
    """Exponential back-off with jitter, or the upstream's Retry-After when that is longer."""

    def __init__(self, base: float) -> None:
        self._backoff = tenacity.wait_exponential_jitter(multiplier=base, jitter=base, max=RETRY_AFTER_CAP)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        asked = getattr(retry_state.outcome.exception(), "retry_after", None) if retry_state.outcome else None
        return max(self._backoff(retry_state), asked or 0.0)


class _Stop(tenacity.stop.stop_base):
    """After ``retries`` retries, or when the coming wait would not end before the deadline."""

    def __init__(self, retries: int, left: Callable[[], float]) -> None:
        self._retries = retries
        self._left = left

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number > self._retries:
            return True
        wait = retry_state.upcoming_sleep
        if wait > RETRY_AFTER_CAP or wait >= self._left():
            log.warning("not retrying: the next attempt would wait %.1f s, %.1f s are left", wait, self._left())
            return True
        return False


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    log.warning("upstream failure, retry %d in %.2f s: %s", retry_state.attempt_number,
                retry_state.upcoming_sleep, exc)


def _kwargs(retries: int, left: Callable[[], float], base: float) -> dict[str, Any]:
    if retries < 0:
        raise ValueError("retries must be >= 0")
    return {"retry": tenacity.retry_if_exception(_transient), "wait": _Wait(base), "stop": _Stop(retries, left),
            "before_sleep": _log_retry, "reraise": True}


def retrying(retries: int, left: Callable[[], float], base: float = 0.2) -> tenacity.Retrying:
    """The policy for blocking code: ``for attempt in retrying(...): with attempt: ...``.

    ``left`` returns the seconds left before the caller's deadline (``math.inf`` for none).
    """
    return tenacity.Retrying(**_kwargs(retries, left, base))


def async_retrying(retries: int, left: Callable[[], float], base: float = 0.2) -> tenacity.AsyncRetrying:
    """The policy on the event loop (waits with ``asyncio.sleep``): ``async for attempt in ...``."""
    return tenacity.AsyncRetrying(**_kwargs(retries, left, base))
