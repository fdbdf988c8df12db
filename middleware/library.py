"""In-process use of ragpress, without a server."""

from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping, Sequence

from middleware.embedders import Embedder
from middleware.models import ModelRegistry
from middleware.offline import configure_offline
from middleware.pipeline import Pipeline
from middleware.settings import Settings
from middleware.types import DEFAULT_METHOD, Budget, CompressRequest, CompressResult, ContextFormat, Document, Stage


class Ragpress:
    """An engine: settings, the model registry and the pipeline, built once."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None) -> None:
        configure_offline()
        self.settings = settings or Settings()
        self.models = ModelRegistry(self.settings, embedder=embedder)
        self.pipeline = Pipeline(self.models)
        self._collections = None
        self._collections_lock = threading.Lock()
        from middleware.generation.generate import Generator

        self.generator = Generator(self.settings, self.models, self.pipeline)

    @property
    def collections(self):
        """The named collections (:class:`retrievers.collections.Collections`), created on first use."""
        with self._collections_lock:
            if self._collections is None:
                from retrievers.collections import Collections

                from middleware.shared_cache import collections_meta

                self._collections = Collections.from_settings(self.settings, self.models.embedder,
                                                              collections_meta(self.settings))
            return self._collections

    def warm_up(self) -> None:
        """Load everything a default request needs and run it once (the server does this
        before it reports SERVING)."""
        from compressors import registry
        from compressors.base import CompressionJob

        tok = self.models.tokenizers.get(self.settings.default_model)
        docs = (Document(id="w", title="Warm-up", text="A first sentence. A second sentence with 42 in it."),)
        method = registry.create(self.settings.default_method, {}, self.models)
        method.compress(CompressionJob("warm-up question?", docs, 64, tok))

    def clear_caches(self) -> None:
        """Forget every per-text cache (sentence splits, token counts, vectors): for cold-text benchmarks."""
        from compressors import units

        units.split.cache_clear()
        self.models.clear_caches()

    def request(self, query: str, documents: Iterable[Document | Mapping[str, Any]],
                budget: Budget | int | float, *, model: str | None = None,
                method: str | None = None, pipeline: Sequence[Stage] | None = None,
                context_format: ContextFormat | None = None) -> CompressRequest:
        return build_request(query, documents, budget, model=model or self.settings.default_model,
                             method=method or (None if pipeline else self.settings.default_method),
                             pipeline=pipeline,
                             context_format=context_format)

    def compress(self, query: str, documents: Iterable[Document | Mapping[str, Any]],
                 budget: Budget | int | float, **kwargs: Any) -> CompressResult:
        return self.pipeline.compress(self.request(query, documents, budget, **kwargs))

    def generate(self, query: str, documents: Iterable[Document | Mapping[str, Any]],
                 budget: Budget | int | float, *, system_prompt: str = "", max_tokens: int | None = None,
                 fallback: str | None = None, tenant: str = "default", timeout: float | None = None,
                 **kwargs: Any) -> Any:
        """Compress, prompt and call the model (blocking); returns a ``GenerateResult``.

        ``kwargs`` are those of :meth:`request` (``model`` may be ``"local/smollm2"``).
        Not for use inside a running event loop (use ``generator.run`` there).
        """
        import asyncio

        from middleware.generation.generate import GenerateRequest, GenerationOptions, collect

        request = GenerateRequest(compress=self.request(query, documents, budget, **kwargs),
                                  system_prompt=system_prompt, options=GenerationOptions(max_tokens=max_tokens),
                                  fallback=fallback)
        prepared = self.generator.prepare(request)
        return asyncio.run(collect(self.generator.run(prepared, tenant=tenant, timeout=timeout, stream=False)))


def build_request(query: str, documents: Iterable[Document | Mapping[str, Any]], budget: Budget | int | float,
                  *, model: str, method: str | None = None, pipeline: Sequence[Stage] | None = None,
                  context_format: ContextFormat | None = None) -> CompressRequest:
    """A CompressRequest from friendly arguments (shared by the engine and the clients)."""
    if method and pipeline:
        from middleware.errors import InvalidArgument

        raise InvalidArgument("give either method or pipeline, not both")
    return CompressRequest(
        query=query,
        documents=tuple(as_document(d, i) for i, d in enumerate(documents)),
        budget=as_budget(budget),
        model=model,
        pipeline=tuple(pipeline) if pipeline else (Stage(method or DEFAULT_METHOD),),
        context_format=context_format or ContextFormat(),
    )


def as_budget(budget: Budget | int | float) -> Budget:
    """An int is a token ceiling, a float in (0, 1] a keep ratio."""
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, int) and not isinstance(budget, bool):
        return Budget(max_tokens=budget)
    return Budget(keep_ratio=budget)


def as_document(doc: Document | Mapping[str, Any], index: int) -> Document:
    """A Document from itself or a mapping with id/title/text/metadata (id defaults to the position)."""
    if isinstance(doc, Document):
        return doc
    from middleware.errors import InvalidArgument

    if not isinstance(doc, Mapping):
        raise InvalidArgument(f"documents[{index}] must be an object with a 'text' field")
    unknown = sorted(set(doc) - {"id", "title", "text", "metadata"})
    if unknown:
        raise InvalidArgument(f"documents[{index}]: unknown field(s) {unknown}")
    if "text" not in doc:
        raise InvalidArgument(f"documents[{index}]: missing 'text'")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(f"documents[{index}]: metadata must be an object")
    doc_id = doc.get("id")
    if doc_id is None or doc_id == "":
        doc_id = str(index)
    return Document(id=str(doc_id) if isinstance(doc_id, int) else doc_id, text=doc["text"],
                    title=doc.get("title") or "", metadata=metadata)


_default: Ragpress | None = None


def compress(query: str, documents: Iterable[Document | Mapping[str, Any]],
             budget: Budget | int | float, **kwargs: Any) -> CompressResult:
    """Compress with a process-wide default engine (built on first use)."""
    global _default
    if _default is None:
        _default = Ragpress()
    return _default.compress(query, documents, budget, **kwargs)
