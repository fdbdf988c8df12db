"""Generate's side of soft tokens (method ``soft`` as the last pipeline stage).

The service decides whether a request may use soft tokens at all: only a local target
accepts vectors in its input embeddings, so any other target is FAILED_PRECONDITION
before anything is encoded. Text stages before ``soft`` run as usual (same ceiling);
the soft stage then encodes the surviving documents, ``k`` soft tokens each, and the
response counts ``compressed_tokens`` as soft tokens (the prompt's ``prompt_tokens``
count them once each, plus the text around them).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import TYPE_CHECKING, Any, Mapping

from compressors import context, registry
from compressors.soft import SoftContext, SoftTokens
from middleware.errors import FailedPrecondition
from middleware.llm.local import local_name
from middleware.llm.soft import MARKER
from middleware.models import ModelRegistry
from middleware.pipeline import Pipeline
from middleware.types import CompressRequest, CompressResult, StageStats

if TYPE_CHECKING:
    from retrievers.base import Query
    from retrievers.collections import Collections

SOFT_OUTPUT = "soft-tokens"


def soft_stage(request: CompressRequest, models: ModelRegistry) -> SoftTokens | None:
    """The request's soft-token stage (its last), or None for a text-only pipeline.

    Raises FAILED_PRECONDITION when the target cannot read soft tokens.
    """
    last = request.pipeline[-1]
    if registry.get(last.method).output != SOFT_OUTPUT:
        return None
    if local_name(request.model) is None:
        raise FailedPrecondition(
            f"method {last.method!r} needs a local/... model: soft tokens are vectors written into the model's "
            f"input embeddings, and {request.model!r} is reached through a text API that cannot take them "
            "(use model 'local/smollm2', or a text method such as 'extractive')")
    stage = registry.create(last.method, last.options, models)
    if not isinstance(stage, SoftTokens):
        raise FailedPrecondition(f"method {last.method!r} does not produce soft tokens this service can splice")
    return stage


def fill(collections: "Collections", tenant: str, collection: str, query: "Query", request: Any,
         models: ModelRegistry) -> Any:
    """``request`` (a :class:`~middleware.generation.generate.GenerateRequest`, which imports
    this module) with its documents retrieved from ``collection``; for a soft-token request
    also the vectors the collection stored for them (when its embedder is the service's), so
    that the soft stage projects them instead of encoding the documents again."""
    from retrievers import ops

    hits = ops.retrieve(collections, tenant, collection, query)
    vectors: dict[str, Any] = {}
    if registry.get(request.compress.pipeline[-1].method).output == SOFT_OUTPUT:
        coll = collections.get(collection, tenant)
        if coll.embedder.name == models.embedder().name:
            vectors = coll.stored_vectors(hits)
    compress = dataclasses.replace(request.compress, documents=tuple(h.document for h in hits))
    return dataclasses.replace(request, compress=compress, document_vectors=vectors)


def compress(pipeline: Pipeline, request: CompressRequest, stage: SoftTokens, request_id: str,
             known: Mapping[str, Any] | None = None) -> tuple[CompressResult, SoftContext]:
    """Run the text stages before ``stage``, then encode what is left as soft tokens."""
    models = pipeline.models
    runtime = models.local_runtime(request.model)
    stage.check_target(runtime.model.name, int(runtime.model.config.hidden_size))
    tok = models.tokenizers.get(request.model)
    fmt = request.context_format
    original = context.count(request.documents, fmt, tok)
    ceiling = request.budget.ceiling(original)
    docs, stages = request.documents, ()
    if len(request.pipeline) > 1:
        head = pipeline.compress(dataclasses.replace(request, pipeline=request.pipeline[:-1]), request_id)
        docs, stages = head.documents, head.stages
    before = context.count(docs, fmt, tok)
    started = time.perf_counter()
    soft = stage.encode(request.query, docs, ceiling, known)
    elapsed = (time.perf_counter() - started) * 1000.0
    kept = {d.id for d in soft.documents}
    stats = StageStats(request.pipeline[-1].method, before, soft.soft_tokens, elapsed,
                       dict(soft.details, fewer_than_budget=soft.soft_tokens < ceiling and soft.soft_tokens < before))
    result = CompressResult(
        documents=soft.documents, dropped_ids=tuple(d.id for d in request.documents if d.id not in kept),
        context="", original_tokens=original, compressed_tokens=soft.soft_tokens, budget_tokens=ceiling,
        stages=tuple(stages) + (stats,), model=request.model, tokenizer=tok.name,
        tokenizer_fallback=tok.fallback, request_id=request_id or uuid.uuid4().hex)
    return result, soft


def context_markers(soft: SoftContext) -> str:
    """The prompt's context: one marker per document, where its soft tokens go (no text between:
    the projector was trained with the documents' soft tokens side by side)."""
    return MARKER * len(soft.documents)
