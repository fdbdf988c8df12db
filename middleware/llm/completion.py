"""Calls to hosted (or OpenAI-compatible) models through litellm (kernel floor).

The only module that talks to litellm's completion API. litellm's exceptions
are translated here, in one place, into :class:`UpstreamError` (an
:class:`~middleware.errors.Unavailable`) that says whether the failure is one
the fallback policy applies to: time-outs, 5xx, rate limits and connection
errors are; a request the upstream rejects (4xx) is not.

It lives in the kernel so that methods (the ``abstractive`` compressor's
summariser) can call a litellm model without importing the service; Generate
(``middleware.generation``) uses it too. :func:`complete` and :func:`stream` are
for the event loop, :func:`complete_blocking` for worker threads.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

from middleware.errors import InvalidArgument, Unavailable


class UpstreamError(Unavailable):
    """The upstream model failed; ``transient`` failures are eligible for retry or fallback.

    ``retry_after``: the seconds the upstream asked the client to wait (its
    ``Retry-After`` header on a 429 or 5xx), or ``None``.
    """

    def __init__(self, message: str, transient: bool, timed_out: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.timed_out = timed_out
        self.retry_after = retry_after


@dataclass(frozen=True)
class UpstreamCall:
    """One chat completion request to a litellm model."""

    model: str
    messages: tuple[dict[str, str], ...]
    timeout: float
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    api_base: str = ""
    api_key: str = field(default="", repr=False)

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in self.messages],
                               "timeout": self.timeout, "num_retries": 0}
        # Only what the caller set travels upstream; the provider's defaults apply otherwise.
        for key in ("max_tokens", "temperature", "top_p", "api_base", "api_key"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.temperature == 0:
            out["temperature"] = 0.0
        if self.stop:
            out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True)
class Completion:
    """A finished completion. Token counts are the upstream's when it reported them."""

    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int = 0
    finish_reason: str = ""


def translate(exc: BaseException, model: str) -> Exception:
    """litellm / network exceptions -> our hierarchy (the one place that knows litellm's)."""
    from middleware.offline import litellm_module
    litellm = litellm_module()

    status = getattr(exc, "status_code", None)
    detail = str(getattr(exc, "message", "") or exc).strip() or type(exc).__name__
    logging.getLogger(__name__).debug("upstream %s raised", model, exc_info=exc)
    if isinstance(exc, (asyncio.TimeoutError, litellm.Timeout)):
        return UpstreamError(f"upstream {model} timed out: {detail}", transient=True, timed_out=True)
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return UpstreamError(f"upstream {model} rate-limited the request: {detail}", transient=True,
                             retry_after=parse_retry_after(_headers(exc)))
    if isinstance(exc, (litellm.APIConnectionError, litellm.InternalServerError, litellm.ServiceUnavailableError,
                        litellm.BadGatewayError)) or (isinstance(status, int) and status >= 500):
        return UpstreamError(f"upstream {model} failed (status {status}): {detail}", transient=True,
                             retry_after=parse_retry_after(_headers(exc)))
    if isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError, litellm.UnprocessableEntityError)):
        return InvalidArgument(f"upstream {model} rejected the request: {detail}")
    return UpstreamError(f"upstream {model} failed: {detail}", transient=False)


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    # litellm keeps the upstream's response headers on the exceptions it maps; the
    # OpenAI SDK's own exceptions carry the httpx response.
    headers = getattr(exc, "litellm_response_headers", None)
    if not headers:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers if isinstance(headers, Mapping) else None


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds an HTTP ``Retry-After`` (or OpenAI's ``retry-after-ms``) header asks for.

    ``Retry-After`` is either delta-seconds or an HTTP date; ``None`` when absent or
    unreadable. Header names are matched case-insensitively.
    """
    if not headers:
        return None
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
    except ValueError:
        pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _usage(obj: Any) -> tuple[int | None, int | None, int]:
    usage = getattr(obj, "usage", None)
    if not usage:
        return None, None, 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
    return usage.prompt_tokens, usage.completion_tokens, cached


async def complete(call: UpstreamCall) -> Completion:
    """One non-streaming completion; raises :class:`UpstreamError` on failure."""
    from middleware.offline import litellm_module
    litellm = litellm_module()

    try:
        resp = await asyncio.wait_for(litellm.acompletion(**call.kwargs()), timeout=call.timeout)
    except Exception as exc:  # noqa: BLE001 - translated in one place (CancelledError passes through)
        raise translate(exc, call.model) from exc
    return _completion(resp, call.model)


def complete_blocking(call: UpstreamCall) -> Completion:
    """:func:`complete` for code that runs in a worker thread (compressors): litellm's
    synchronous client, bounded by ``call.timeout``; same errors, same result."""
    from middleware.offline import litellm_module
    litellm = litellm_module()

    try:
        resp = litellm.completion(**call.kwargs())
    except Exception as exc:  # noqa: BLE001 - translated in one place
        raise translate(exc, call.model) from exc
    return _completion(resp, call.model)


def _completion(resp: Any, model: str) -> Completion:
    choice = resp.choices[0]
    prompt, completion, cached = _usage(resp)
    return Completion(choice.message.content or "", getattr(resp, "model", None) or model,
                      prompt, completion, cached, choice.finish_reason or "")


async def stream(call: UpstreamCall) -> AsyncIterator[str | Completion]:
    """Text deltas, then one :class:`Completion` with the whole text and usage."""
    from middleware.offline import litellm_module
    litellm = litellm_module()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + call.timeout
    parts: list[str] = []
    prompt = completion = None
    cached = 0
    finish = ""
    model = call.model
    try:
        response = await asyncio.wait_for(
            litellm.acompletion(**call.kwargs(), stream=True, stream_options={"include_usage": True}),
            timeout=call.timeout)
        iterator = response.__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(iterator.__anext__(), timeout=max(0.001, deadline - loop.time()))
            except StopAsyncIteration:
                break
            model = getattr(chunk, "model", None) or model
            if getattr(chunk, "usage", None):
                prompt, completion, cached = _usage(chunk)
            for choice in chunk.choices or ():
                delta = getattr(choice.delta, "content", None)
                if delta:
                    parts.append(delta)
                    yield delta
                finish = choice.finish_reason or finish
    except Exception as exc:  # noqa: BLE001 - CancelledError is a BaseException and passes through
        raise translate(exc, call.model) from exc
    yield Completion("".join(parts), model, prompt, completion, cached, finish)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Price from litellm's offline price map; ``None`` when the model has no price there."""
    from middleware.offline import litellm_module
    litellm = litellm_module()

    try:
        p, c = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    except Exception:  # noqa: BLE001 - litellm raises its own NotFoundError/ValueError for unmapped models
        return None
    return float(p) + float(c)


async def shutdown() -> None:
    """Stop litellm's background logging worker, bound to the calling event loop; a server
    stopping its loop calls this so no pending litellm task outlives the loop. A no-op when
    litellm was never imported."""
    import sys

    if "litellm" not in sys.modules:
        return
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    await GLOBAL_LOGGING_WORKER.stop()
