"""Generate: compress, assemble the prompt, call the target, apply the fallback policy.

Two steps so the servicer can run the CPU part off the event loop:
:meth:`Generator.prepare` (compression, prompt assembly, token counting; blocking)
and :meth:`Generator.run` (the model call; async, yields text deltas when
streaming and ends with a :class:`GenerateResult`).

Fallback is never silent: the result names the model that answered, whether it
fell back and why.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from compressors import context as ctx
from middleware.cancel import check as check_cancelled
from middleware.errors import DeadlineExceeded, InvalidArgument, Unavailable
from middleware.generation import prompt as prompts, soft as soft_generation
from middleware.llm import completion as gateway
from middleware.llm import retry
from middleware.llm.local import local_name
from middleware.generation.prompt import Demonstration, Prompt
from middleware.llm.runtime import LocalGeneration, SamplingParams
from middleware.models import ModelRegistry
from middleware.pipeline import Pipeline
from middleware.settings import Settings
from middleware.types import CompressRequest, CompressResult

log = logging.getLogger(__name__)

FALLBACKS = ("fail", "retry", "local")


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling options; ``None`` leaves the choice to the model's defaults (temperature 0 is greedy)."""

    max_tokens: int | None = None
    temperature: float = 0.0
    top_p: float | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidArgument(f"generation.max_tokens must be >= 1, got {self.max_tokens}")
        if not 0 <= self.temperature <= 2:
            raise InvalidArgument(f"generation.temperature must be in [0, 2], got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InvalidArgument(f"generation.top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class GenerateRequest:
    """A compression request plus what the LLM call needs."""

    compress: CompressRequest
    system_prompt: str = ""
    demonstrations: tuple[Demonstration, ...] = ()
    options: GenerationOptions = GenerationOptions()
    # "fail", "retry", "local", or None for the configured policy.
    fallback: str | None = None
    template: str = ""
    # A demonstration selection (middleware.demonstrations.SelectRequest) run in prepare
    # instead of passing ``demonstrations``.
    select: Any = None
    # Encoder vectors already computed for some documents (by id): a collection's stored
    # vectors, reused by the soft-token method instead of encoding those documents again.
    document_vectors: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fallback is not None and self.fallback not in FALLBACKS:
            raise InvalidArgument(f"fallback must be one of {FALLBACKS}, got {self.fallback!r}")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    original_prompt_tokens: int
    cached_prompt_tokens: int = 0
    # Soft tokens among the prompt tokens (method "soft"; 0 otherwise).
    soft_prompt_tokens: int = 0


@dataclass(frozen=True)
class Cost:
    """US dollars from litellm's offline price map (0 for local models and unpriced ones)."""

    cost_usd: float = 0.0
    original_cost_usd: float = 0.0

    @property
    def saved_usd(self) -> float:
        return self.original_cost_usd - self.cost_usd


@dataclass(frozen=True)
class GenerateResult:
    text: str
    model: str
    fell_back: bool
    fallback_reason: str
    usage: Usage
    cost: Cost
    compression: CompressResult
    request_id: str
    # What the demonstration selection did (a SelectResult), when the request had one.
    demonstrations: Any = None


@dataclass(frozen=True)
class Prepared:
    """The compressed prompt and the uncompressed one (for counting what was saved)."""

    request: GenerateRequest
    compression: CompressResult
    prompt: Prompt
    original: Prompt
    demonstrations: Any = None
    # With method "soft": the soft tokens the prompt's markers stand for (compressors.soft.SoftContext).
    soft: Any = None


class Generator:
    """Runs Generate requests against litellm targets and local models."""

    def __init__(self, settings: Settings, models: ModelRegistry, pipeline: Pipeline,
                 selector: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.models = models
        self.pipeline = pipeline
        # Gives the DemonstrationSelector (built on first use) for requests that select demonstrations.
        self.selector = selector
        # Local generation has its own threads so long generations never starve compression.
        self._local_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ragpress-local-llm")

    def prepare(self, request: GenerateRequest, request_id: str = "", tenant: str = "default") -> Prepared:
        """Select demonstrations (when asked), compress and assemble (blocking, CPU); the call's
        deadline reaches the stages through its cancellation token."""
        template = prompts.resolve_template(request.template, self.settings.prompt_template)
        selected = None
        if request.select is not None:
            if self.selector is None:
                raise InvalidArgument("this engine has no demonstration pools")
            selected = self.selector().select(request.select, tenant, request_id)
        fmt = request.compress.context_format
        system = request.system_prompt or prompts.DEFAULT_SYSTEM

        def build(text: str, demos: str | None) -> Prompt:
            return prompts.assemble(template, system, text, request.compress.query, request.demonstrations,
                                    demonstrations_text=demos)

        # The original prompt has the documents uncompressed and, for a selection, the
        # fixed-k demonstrations uncompressed: both savings are counted.
        original = build(ctx.assemble(request.compress.documents, fmt),
                         selected.original_prompt if selected else None)
        demos = selected.prompt if selected else None
        stage = soft_generation.soft_stage(request.compress, self.models)
        if stage is not None:
            result, soft = soft_generation.compress(self.pipeline, request.compress, stage, request_id,
                                                    request.document_vectors)
            check_cancelled()
            return Prepared(request, result, build(soft_generation.context_markers(soft), demos), original,
                            selected, soft)
        result = self.pipeline.compress(request.compress, request_id)
        check_cancelled()
        return Prepared(request, result, build(result.context, demos), original, selected)

    async def run(self, prepared: Prepared, *, tenant: str, timeout: float | None,
                  stream: bool) -> AsyncIterator[str | GenerateResult]:
        """Call the target; yields deltas (when ``stream``) and finally a :class:`GenerateResult`."""
        loop = asyncio.get_running_loop()
        # The client's deadline bounds everything; llm_timeout_seconds caps each upstream attempt.
        deadline = loop.time() + timeout if timeout is not None else math.inf
        model = prepared.request.compress.model
        if local_name(model) is not None:
            async for item in self._local(prepared, model, tenant, deadline, stream, fell_back=""):
                yield item
            return
        policy = prepared.request.fallback or self.settings.llm_fallback
        retries = self.settings.llm_retries if policy == "retry" else 0
        # Retried only until the first item: once text has reached the client, another
        # attempt (or another model) would splice two answers, so later failures raise.
        try:
            async for attempt in retry.async_retrying(retries, lambda: deadline - loop.time()):
                with attempt:
                    items = self._remote(prepared, model, deadline, stream)
                    first = await anext(items)
        except gateway.UpstreamError as exc:
            if not exc.transient:
                raise
            reason = str(exc)
            log.warning("upstream failure (%s policy): %s", policy, reason)
            if policy != "local":
                raise Unavailable(reason) from exc
            async for item in self._local(prepared, self.settings.local_model, tenant, deadline, stream, reason):
                yield item
            return
        yield first
        async for item in items:
            yield item

    async def _remote(self, prepared: Prepared, model: str, deadline: float,
                      stream: bool) -> AsyncIterator[str | GenerateResult]:
        left = deadline - asyncio.get_running_loop().time()
        remaining = min(left, self.settings.llm_timeout_seconds)
        if remaining <= 0:
            raise DeadlineExceeded("the deadline passed before the model was called")
        try:
            async for item in self._attempt(prepared, model, remaining, stream):
                yield item
        except gateway.UpstreamError as exc:
            # When this attempt's time-out was the client's own deadline, the client ran
            # out of time: that is DEADLINE_EXCEEDED, whichever side noticed first.
            if exc.timed_out and left <= self.settings.llm_timeout_seconds:
                raise DeadlineExceeded(f"the deadline passed while waiting for {model}") from exc
            raise

    async def _attempt(self, prepared: Prepared, model: str, remaining: float,
                       stream: bool) -> AsyncIterator[str | GenerateResult]:
        opts = prepared.request.options
        s = self.settings
        call = gateway.UpstreamCall(
            model=model, messages=tuple(prepared.prompt.messages()), timeout=remaining,
            max_tokens=opts.max_tokens, temperature=opts.temperature, top_p=opts.top_p, stop=opts.stop,
            api_base=s.llm_api_base, api_key=s.llm_api_key)
        if stream:
            done: gateway.Completion | None = None
            async for item in gateway.stream(call):
                if isinstance(item, str):
                    yield item
                else:
                    done = item
            assert done is not None  # gateway.stream always ends with a Completion
        else:
            done = await gateway.complete(call)
        yield self._remote_result(prepared, model, done)

    def _remote_result(self, prepared: Prepared, model: str, done: gateway.Completion) -> GenerateResult:
        tok = self.models.tokenizers.get(model)
        counted = tok.count(prepared.prompt.text)
        prompt_tokens = done.prompt_tokens if done.prompt_tokens is not None else counted
        # Same message overhead either way: the difference is the documents' tokens saved.
        original = prompt_tokens + tok.count(prepared.original.text) - counted
        completion = done.completion_tokens if done.completion_tokens is not None else tok.count(done.text)
        cost = gateway.cost_usd(model, prompt_tokens, completion)
        original_cost = gateway.cost_usd(model, original, completion)
        return GenerateResult(
            text=done.text, model=model, fell_back=False, fallback_reason="",
            usage=Usage(prompt_tokens, completion, original, done.cached_tokens),
            cost=Cost(cost or 0.0, original_cost or 0.0), compression=prepared.compression,
            request_id=prepared.compression.request_id, demonstrations=prepared.demonstrations)

    async def _local(self, prepared: Prepared, model: str, tenant: str, deadline: float, stream: bool,
                     fell_back: str) -> AsyncIterator[str | GenerateResult]:
        loop = asyncio.get_running_loop()
        runtime = await loop.run_in_executor(self._local_pool, self.models.local_runtime, model)
        opts = prepared.request.options
        params = SamplingParams(max_new_tokens=opts.max_tokens or self.settings.local_max_new_tokens,
                                temperature=opts.temperature, top_p=opts.top_p or 1.0, stop=opts.stop)
        # Tokenising a long prompt takes a while: off the event loop.
        if prepared.soft is not None:
            soft = await loop.run_in_executor(self._local_pool, runtime.soft_prompt, prepared.prompt.messages(),
                                              prepared.soft.vectors)
            ids = list(soft.ids)
        else:
            soft = None
            ids = await loop.run_in_executor(self._local_pool, runtime.encode_chat, prepared.prompt.messages())
        if len(ids) > self.settings.local_max_prompt_tokens:
            raise InvalidArgument(f"the prompt is {len(ids)} tokens of {model}; the limit is "
                                  f"{self.settings.local_max_prompt_tokens} (local_max_prompt_tokens): "
                                  f"compress to a smaller budget")
        original = len(await loop.run_in_executor(self._local_pool, runtime.encode_chat,
                                                  prepared.original.messages()))
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()
        on_delta = (lambda d: loop.call_soon_threadsafe(queue.put_nowait, d)) if stream else None
        future = loop.run_in_executor(self._local_pool, lambda: runtime.generate(
            ids, params, tenant=tenant, cancel=cancel, on_delta=on_delta,
            prefill_chunk=self.settings.local_prefill_chunk, soft=soft))
        future.add_done_callback(lambda _: queue.put_nowait(_DONE))
        try:
            while True:
                remaining = deadline - loop.time()
                wait = max(remaining, 0.001) if remaining < math.inf else None
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=wait)
                except asyncio.TimeoutError as exc:
                    raise DeadlineExceeded(f"the deadline passed while {model} was generating") from exc
                if item is _DONE:
                    break
                yield item
            gen: LocalGeneration = future.result()
        finally:
            # Client gone, deadline passed or done: the generation thread stops at its next step.
            cancel.set()
        yield GenerateResult(
            text=gen.text, model=model, fell_back=bool(fell_back), fallback_reason=fell_back,
            usage=Usage(gen.prompt_tokens, gen.completion_tokens, original, gen.cached_tokens,
                        soft.soft_tokens if soft is not None else 0),
            cost=Cost(), compression=prepared.compression, request_id=prepared.compression.request_id,
            demonstrations=prepared.demonstrations)

    def close(self) -> None:
        self._local_pool.shutdown(wait=False, cancel_futures=True)


_DONE = object()


async def collect(events: AsyncIterator[str | GenerateResult]) -> GenerateResult:
    """The final result of :meth:`Generator.run`, dropping the deltas."""
    final = None
    async for item in events:
        if isinstance(item, GenerateResult):
            final = item
    if final is None:
        raise Unavailable("the model returned no result")
    return final


def demonstrations(items: Sequence[tuple[str, str, str]]) -> tuple[Demonstration, ...]:
    """(id, input, output) triples -> Demonstrations (ids default to their position)."""
    return tuple(Demonstration(i or str(n), inp, out) for n, (i, inp, out) in enumerate(items))
