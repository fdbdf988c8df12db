"""Who writes an abstractive summary: the local model or a litellm model, with Generate's policy.

A :class:`Summarizer` turns chat messages into text within ``max_new_tokens`` and
the caller's deadline, and says what it spent (:class:`Summary`). Two kinds:

- :class:`LocalSummarizer`: a ``local/<name>`` model on the kernel's runtime
  (SmolLM2-135M-Instruct by default; CUDA when present), greedy, optionally biased
  towards the source's own tokens; cancelled at the deadline;
- :class:`RemoteSummarizer`: any litellm model (``llm_api_base`` for an
  OpenAI-compatible server), through the kernel's :mod:`middleware.llm.completion`,
  priced from litellm's offline price map.

:class:`PolicySummarizer` applies Generate's fallback policy to a remote one:
``fail`` (UNAVAILABLE with the upstream's reason), ``retry`` (back-off within the
deadline, then UNAVAILABLE) or ``local`` (the local model answers and the summary
says why). A request the upstream rejects (4xx) is INVALID_ARGUMENT under every
policy; a deadline that passes is DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from middleware.errors import DeadlineExceeded, Unavailable
from middleware.llm import completion, retry
from middleware.settings import Settings

POLICIES = ("fail", "retry", "local")


@dataclass(frozen=True)
class Summary:
    """A summariser's text and what it cost (tokens in the summariser's tokenizer)."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    finish_reason: str
    # Why another model wrote it ("" when the requested one did).
    fallback_reason: str = ""


class Summarizer(ABC):
    """Writes text for chat ``messages``; ``source`` is the text being summarised."""

    model: str

    @abstractmethod
    def summarize(self, messages: Sequence[dict[str, str]], max_new_tokens: int, deadline: float | None,
                  source: str = "") -> Summary:
        """Generate at most ``max_new_tokens`` tokens before ``deadline`` (monotonic seconds)."""

    @abstractmethod
    def count(self, text: str) -> int:
        """Tokens of ``text`` in this summariser's tokenizer (for sizing the generation)."""


def _left(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline - time.monotonic()


class _DeadlineEvent(threading.Event):
    """Reads as set once the deadline passes, so the local decode loop stops at its next step."""

    def __init__(self, deadline: float | None) -> None:
        super().__init__()
        self.deadline = deadline

    def is_set(self) -> bool:
        return super().is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)


class LocalSummarizer(Summarizer):
    """A local model on the kernel's runtime (:class:`middleware.llm.runtime.LocalRuntime`)."""

    def __init__(self, model: str, runtime: Any, copy_bias: float = 0.0) -> None:
        self.model = model
        self.runtime = runtime
        self.copy_bias = copy_bias

    def count(self, text: str) -> int:
        return len(self.runtime.model.tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def summarize(self, messages: Sequence[dict[str, str]], max_new_tokens: int, deadline: float | None,
                  source: str = "") -> Summary:
        from middleware.llm.runtime import SamplingParams

        if _left(deadline) <= 0:
            raise DeadlineExceeded("the deadline passed before the summariser started")
        ids = self.runtime.encode_chat(list(messages))
        params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0,
                                logit_bias=self._bias(source) if self.copy_bias else ())
        # No shared KV prefix cache: the compressor does not know the tenant, and the
        # prompt's only shared prefix (the instruction) is a few dozen tokens.
        gen = self.runtime.generate(ids, params, use_cache=False, cancel=_DeadlineEvent(deadline))
        if gen.finish_reason == "cancelled":
            raise DeadlineExceeded(f"the deadline passed while {self.model} was summarising")
        return Summary(gen.text, self.model, gen.prompt_tokens, gen.completion_tokens, 0.0, gen.finish_reason)

    def _bias(self, source: str) -> tuple[tuple[int, float], ...]:
        """Every token of the source (with and without a leading space) and the end of turn."""
        tok = self.runtime.model.tokenizer
        ids: set[int] = set()
        for line in source.splitlines():
            if line.strip():
                ids.update(tok.encode(line, add_special_tokens=False))
                ids.update(tok.encode(" " + line, add_special_tokens=False))
        ids.update(self.runtime.model.eos_ids())
        return tuple((i, self.copy_bias) for i in sorted(ids))


class RemoteSummarizer(Summarizer):
    """Any litellm model; ``settings`` give the API base, key and per-attempt time-out."""

    def __init__(self, model: str, settings: Settings, counter: Callable[[str], int]) -> None:
        self.model = model
        self.settings = settings
        self._count = counter

    def count(self, text: str) -> int:
        return self._count(text)

    def summarize(self, messages: Sequence[dict[str, str]], max_new_tokens: int, deadline: float | None,
                  source: str = "") -> Summary:
        left = _left(deadline)
        timeout = min(left, self.settings.llm_timeout_seconds)
        if timeout <= 0:
            raise DeadlineExceeded("the deadline passed before the summariser was called")
        s = self.settings
        call = completion.UpstreamCall(model=self.model, messages=tuple(dict(m) for m in messages), timeout=timeout,
                                       max_tokens=max_new_tokens, temperature=0.0, api_base=s.llm_api_base,
                                       api_key=s.llm_api_key)
        try:
            done = completion.complete_blocking(call)
        except completion.UpstreamError as exc:
            # The attempt's time-out was the caller's deadline: that is the deadline, not an outage.
            if exc.timed_out and left <= s.llm_timeout_seconds:
                raise DeadlineExceeded(f"the deadline passed while waiting for {self.model}") from exc
            raise
        prompt = done.prompt_tokens if done.prompt_tokens is not None \
            else sum(self.count(m["content"]) for m in messages)
        written = done.completion_tokens if done.completion_tokens is not None else self.count(done.text)
        cost = completion.cost_usd(self.model, prompt, written) or 0.0
        return Summary(done.text, self.model, prompt, written, cost, done.finish_reason)


class PolicySummarizer(Summarizer):
    """A remote summariser under a fallback policy (``fail``, ``retry`` or ``local``)."""

    def __init__(self, remote: RemoteSummarizer, policy: str, retries: int,
                 local: Callable[[], Summarizer]) -> None:
        self.remote = remote
        self.model = remote.model
        self.policy = policy
        self.retries = retries
        self._local = local

    def count(self, text: str) -> int:
        return self.remote.count(text)

    def summarize(self, messages: Sequence[dict[str, str]], max_new_tokens: int, deadline: float | None,
                  source: str = "") -> Summary:
        retries = self.retries if self.policy == "retry" else 0
        try:
            for attempt in retry.retrying(retries, lambda: _left(deadline)):
                with attempt:
                    return self.remote.summarize(messages, max_new_tokens, deadline, source)
        except completion.UpstreamError as exc:
            if not exc.transient:
                raise
            reason = str(exc)
            if self.policy != "local":
                raise Unavailable(reason) from exc
        local = self._local()
        # The local model counts its own tokens: size its generation in them.
        scaled = max(1, math.ceil(max_new_tokens * local.count(source) / max(1, self.remote.count(source)))) \
            if source else max_new_tokens
        summary = local.summarize(messages, scaled, deadline, source)
        return dataclasses.replace(summary, fallback_reason=reason)
