"""The request pipeline: run the stages, enforce the ceiling, assemble the context."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import TYPE_CHECKING

from compressors import context, registry
from compressors.base import CompressionJob, StageOutput
from middleware import cancel
from middleware.errors import InternalError
from middleware.models import ModelRegistry
from middleware.types import CompressRequest, CompressResult, Document, StageStats

if TYPE_CHECKING:
    from retrievers.base import Query
    from retrievers.collections import Collections


class Pipeline:
    """Compresses requests with the methods of the registry and the injected models."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def compress(self, request: CompressRequest, request_id: str = "", deadline: float | None = None) -> CompressResult:
        """Run ``request``'s stages; ``deadline`` (``time.monotonic()`` seconds) reaches every stage.

        Without one, the deadline of the call's cancellation token (bound by the service) is used.
        """
        tok = self.models.tokenizers.get(request.model)
        fmt = request.context_format
        # Build every stage first: a bad method name or option fails before any work.
        stages = [(s, registry.create(s.method, s.options, self.models)) for s in request.pipeline]
        original = context.count(request.documents, fmt, tok)
        ceiling = request.budget.ceiling(original)
        docs = tuple(request.documents)
        stats = []
        token = cancel.current()
        if deadline is None and token is not None:
            deadline = token.deadline
        for n, (stage, compressor) in enumerate(stages):
            cancel.check()  # a cancelled or timed-out call stops between stages
            before = context.count(docs, fmt, tok)
            limit = stage.budget.ceiling(original) if stage.budget is not None else ceiling
            if n == len(stages) - 1:
                limit = min(limit, ceiling)
            started = time.perf_counter()
            out = compressor.compress(CompressionJob(request.query, docs, limit, tok, fmt, deadline))
            elapsed = (time.perf_counter() - started) * 1000.0
            _check_output(stage.method, docs, out)
            docs = tuple(context.visible(out.documents))
            after = context.count(docs, fmt, tok)
            details = dict(out.details)
            details["fewer_than_budget"] = after < limit and after < before
            stats.append(StageStats(stage.method, before, after, elapsed, details, out.usage))
        text = context.assemble(docs, fmt)
        final = tok.count(text)
        if final > ceiling:
            # Every registered method packs against the exact count, so this is a bug.
            raise InternalError(f"method produced {final} tokens over a ceiling of {ceiling}")
        kept = {d.id for d in docs}
        return CompressResult(
            documents=docs,
            dropped_ids=tuple(d.id for d in request.documents if d.id not in kept),
            context=text,
            original_tokens=original,
            compressed_tokens=final,
            budget_tokens=ceiling,
            stages=tuple(stats),
            model=request.model,
            tokenizer=tok.name,
            tokenizer_fallback=tok.fallback,
            request_id=request_id or uuid.uuid4().hex,
        )


def _check_output(method: str, inputs: tuple[Document, ...], out: StageOutput) -> None:
    """Compressors may drop and shorten documents, never invent or repeat them; they keep
    the input order unless they say they reordered (``details["reordered"]``)."""
    position = {d.id: i for i, d in enumerate(inputs)}
    seen = [position.get(doc.id) for doc in out.documents]
    if None in seen or len(set(seen)) != len(seen):
        raise InternalError(f"method {method!r} returned an unknown or repeated document")
    if seen != sorted(seen) and not out.details.get("reordered"):
        raise InternalError(f"method {method!r} reordered documents without saying so")


def fill(collections: "Collections", tenant: str, collection: str, query: "Query",
         request: CompressRequest) -> CompressRequest:
    """``request`` with its documents retrieved from ``collection`` for ``query``."""
    from retrievers import ops

    hits = ops.retrieve(collections, tenant, collection, query)
    return dataclasses.replace(request, documents=tuple(h.document for h in hits))


def retrieve_and_compress(collections: "Collections", pipeline: Pipeline, tenant: str, collection: str,
                          query: "Query", request: CompressRequest, request_id: str = "") -> CompressResult:
    """Retrieve ``query`` from ``collection`` and compress the hits with ``request``'s settings."""
    return pipeline.compress(fill(collections, tenant, collection, query, request), request_id)
