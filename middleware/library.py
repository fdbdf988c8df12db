"""In-process use of ragpress, without a server."""

from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping, Sequence

from middleware.embedders import Embedder
from middleware.models import ModelRegistry
from middleware.offline import configure_offline
from middleware.pipeline import Pipeline
from middleware.settings import Settings
from middleware.types import (
    DEFAULT_METHOD, DEFAULT_MODEL, Budget, CompressRequest, CompressResult, ContextFormat, Demonstration, Document,
    Stage,
)


class Ragpress:
    """An engine: settings, the model registry and the pipeline, built once."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None) -> None:
        configure_offline()
        self.settings = settings or Settings()
        self.models = ModelRegistry(self.settings, embedder=embedder)
        self.pipeline = Pipeline(self.models)
        self._collections = None
        self._collections_lock = threading.Lock()
        self._demonstrations = None
        from middleware.generation.generate import Generator

        self.generator = Generator(self.settings, self.models, self.pipeline, lambda: self.demonstrations)

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

    @property
    def demonstrations(self):
        """The demonstration selector and its pools (:class:`middleware.demonstrations.DemonstrationSelector`),
        created on first use."""
        with self._collections_lock:
            if self._demonstrations is None:
                from middleware.demonstrations import DemonstrationSelector
                from retrievers.demos.pools import DemoPools

                pools = DemoPools.from_settings(self.settings, self.models.fast_embedder)
                self._demonstrations = DemonstrationSelector(self.models, self.pipeline, pools)
            return self._demonstrations

    def select_demonstrations(self, query: str, pool: Iterable[Any] = (), *, tenant: str = "default",
                              **kwargs: Any) -> Any:
        """Choose few-shot demonstrations for ``query`` from ``pool`` (inline: Demonstrations or
        mappings with input/output/label/id/metadata) or ``pool_name=...`` (a stored pool).

        ``kwargs`` are :func:`build_select_request`'s (``budget``, ``model``, ``max_demonstrations``,
        ``method``, ``options``, ...); returns a :class:`middleware.demonstrations.SelectResult`.
        """
        kwargs.setdefault("model", self.settings.default_model)
        return self.demonstrations.select(build_select_request(query, pool, **kwargs), tenant)

    def index_demonstrations(self, pool: str, demonstrations: Iterable[Any] = (), delete_ids: Iterable[str] = (),
                             *, tenant: str = "default") -> Any:
        """Upsert demonstrations into (and delete ids from) the named pool; returns a PoolIndexResult."""
        demos = tuple(as_demonstration(d, i, need_id=True) for i, d in enumerate(demonstrations))
        return self.demonstrations.index(pool, tenant, demos, tuple(delete_ids))

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
                 select: Any = None, **kwargs: Any) -> Any:
        """Compress, prompt and call the model (blocking); returns a ``GenerateResult``.

        ``kwargs`` are those of :meth:`request` (``model`` may be ``"local/smollm2"``);
        ``select`` (from :func:`build_select_request`) chooses the demonstrations from a pool.
        Not for use inside a running event loop (use ``generator.run`` there).
        """
        import asyncio

        from middleware.generation.generate import GenerateRequest, GenerationOptions, collect

        request = GenerateRequest(compress=self.request(query, documents, budget, **kwargs),
                                  system_prompt=system_prompt, options=GenerationOptions(max_tokens=max_tokens),
                                  fallback=fallback, select=select)
        prepared = self.generator.prepare(request, tenant=tenant)
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


def build_select_request(query: str, pool: Iterable[Any] = (), *, pool_name: str = "",
                         budget: Budget | int | float | None = None, model: str = DEFAULT_MODEL,
                         max_demonstrations: int | None = None, method: str | None = None,
                         options: Mapping[str, Any] | None = None, seed: int = 0, core_ids: Iterable[str] = (),
                         order: str = "nearest_last", compression: str | Sequence[Stage] | None = None,
                         compress_above_tokens: int = 0, template: str = "") -> Any:
    """A :class:`middleware.demonstrations.SelectRequest` from friendly arguments (engine and clients).

    ``budget``: an int is a token ceiling on the rendered demonstrations, a float in (0, 1] a
    share of the fixed-k block; ``compression``: a method name or a pipeline of stages.
    """
    from middleware.demonstrations import DEFAULT_MAX_DEMONSTRATIONS, DEFAULT_STRATEGY, SelectRequest

    stages = (Stage(compression),) if isinstance(compression, str) else tuple(compression or ())
    return SelectRequest(
        query=query, pool=tuple(as_demonstration(d, i) for i, d in enumerate(pool)), pool_name=pool_name or "",
        model=model, budget=as_budget(budget) if budget is not None else None,
        max_demonstrations=max_demonstrations or DEFAULT_MAX_DEMONSTRATIONS, method=method or DEFAULT_STRATEGY,
        options=options or {}, seed=seed, core_ids=tuple(core_ids), order=order, compression=stages,
        compress_above_tokens=compress_above_tokens, template=template)


_DEMO_FIELDS = {"id", "input", "output", "label", "metadata"}


def as_demonstration(demo: Any, index: int, need_id: bool = False) -> Demonstration:
    """A Demonstration from itself or a mapping with input/output (and id, label, metadata);
    the id defaults to the position unless ``need_id`` (stored pools need real ids)."""
    from middleware.errors import InvalidArgument

    if isinstance(demo, Demonstration):
        return demo
    if not isinstance(demo, Mapping):
        raise InvalidArgument(f"demonstrations[{index}] must be an object with 'input' and 'output'")
    unknown = sorted(set(demo) - _DEMO_FIELDS)
    if unknown:
        raise InvalidArgument(f"demonstrations[{index}]: unknown field(s) {unknown}; known: {sorted(_DEMO_FIELDS)}")
    if "input" not in demo:
        raise InvalidArgument(f"demonstrations[{index}]: missing 'input'")
    demo_id = demo.get("id")
    if demo_id is None or demo_id == "":
        if need_id:
            raise InvalidArgument(f"demonstrations[{index}]: a pooled demonstration needs an 'id'")
        demo_id = str(index)
    metadata = demo.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(f"demonstrations[{index}]: metadata must be an object")
    label = demo.get("label")
    return Demonstration(id=str(demo_id) if isinstance(demo_id, int) else demo_id, input=demo["input"],
                         output=demo.get("output", "") if demo.get("output") is not None else "",
                         label="" if label is None else str(label) if isinstance(label, (int, bool)) else label,
                         metadata=metadata)


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
