"""Model registry: each heavy model is loaded once, lazily, and injected.

Nothing here imports torch or sentence-transformers at module import time.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

from middleware.embedders import Embedder, default_embedding_path, load_embedder
from middleware.settings import Settings
from middleware.tokens import ModelTokenizer, TokenizerRegistry, hf_tokenizer

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelRegistry:
    """Loads models once, on first use (or at warm-up), and hands them out."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.tokenizers = TokenizerRegistry(settings.unknown_model)
        self._embedder = embedder
        self._static: Embedder | None = None
        self._onnx: Embedder | None = None
        self._fast: Embedder | None = None
        self._lock = threading.Lock()
        self._local: dict[str, Any] = {}
        self._local_lock = threading.Lock()
        self._shared: dict[str, Any] = {}
        self.tokenizers.add_resolver("local/", self._local_tokenizer)

    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = load_embedder(self.settings.embedding_model)
        return self._embedder

    def static_embedder(self) -> Embedder:
        """The static MiniLM token table (fast sentence vectors; built once, cached on disk).

        With ``embedding_model = "hashing"`` (no model at all) it is the hashing embedder.
        """
        from middleware.embedders import StaticEmbedder

        return self._derived("_static", StaticEmbedder)

    def onnx_embedder(self) -> Embedder:
        """all-MiniLM-L6-v2 as an int8 ONNX model (ONNX Runtime; built once, cached on disk):
        real sentence vectors for the few sentences a method reads closely.

        With ``embedding_model = "hashing"`` (no model at all) it is the hashing embedder.
        """
        from middleware.embedders import onnx_embedder

        threads = self.settings.onnx_threads
        return self._derived("_onnx", lambda model_dir, cache_dir: onnx_embedder(model_dir, cache_dir, threads))

    def fast_embedder(self) -> Embedder:
        """The embedder of latency-bound paths (demonstration pools: pool and input vectors
        both): the int8 ONNX MiniLM (about 3 ms for a short text, 25 ms with torch), or,
        where ONNX Runtime cannot be installed, the torch MiniLM, with a warning once.

        Its ``name`` differs between the two, and a persisted pool records it, so vectors
        of one are never searched with the other (the pool is re-embedded on load).
        """
        from middleware.errors import Unavailable

        if self._fast is None:
            try:
                self._fast = self.onnx_embedder()
            except Unavailable as exc:
                log.warning("%s; falling back to the torch MiniLM (the same model, slower on each input)", exc)
                self._fast = self.embedder()
        return self._fast

    def _derived(self, attr: str, build: Callable[[str, Path], Embedder]) -> Embedder:
        """A model file derived from the embedding model (built into the cache folder once), loaded once."""
        if self.settings.embedding_model == "hashing":
            return self.embedder()
        if getattr(self, attr) is None:
            with self._lock:
                if getattr(self, attr) is None:
                    model_dir = self.settings.embedding_model or default_embedding_path()
                    setattr(self, attr, build(model_dir, self.settings.resolved_cache_dir()))
        return getattr(self, attr)

    def clear_caches(self) -> None:
        """Forget the kernel's per-text caches (token counts, vectors); the service's
        :meth:`~middleware.library.Ragpress.clear_caches` also clears the methods' own."""
        self.tokenizers.clear_caches()
        for embedder in (self._embedder, self._static, self._onnx):
            if hasattr(embedder, "clear_cache"):
                embedder.clear_cache()
        for state in list(self._shared.values()):
            if hasattr(state, "clear"):
                state.clear()

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """An object a method keeps between requests (e.g. the abstractive summary cache),
        built once per registry; :meth:`clear_caches` clears it when it has ``clear()``."""
        state = self._shared.get(key)
        if state is None:
            with self._lock:
                state = self._shared.get(key)
                if state is None:
                    state = self._shared[key] = build()
        return state

    def local_runtime(self, model: str) -> Any:
        """The :class:`~middleware.llm.runtime.LocalRuntime` of ``local/<name>``, loaded once."""
        runtime = self._local.get(model)
        if runtime is not None:
            return runtime
        with self._local_lock:
            runtime = self._local.get(model)
            if runtime is None:
                from middleware.llm.local import load_local_model, local_name
                from middleware.llm.prefix_cache import PrefixCache, PrefixCacheParams
                from middleware.llm.runtime import LocalRuntime

                name = local_name(model) or model
                loaded = load_local_model(name, self._local_dir(name), self.settings.local_device,
                                          self.settings.local_threads)
                s = self.settings
                cache = PrefixCache(PrefixCacheParams(s.prefix_cache_block, s.prefix_cache_bytes)) \
                    if s.prefix_cache_bytes else None
                runtime = LocalRuntime(loaded, cache, s.prefix_cache_codec)
                self._local[model] = runtime
        return runtime

    def loaded_local_runtimes(self) -> dict[str, Any]:
        """Local runtimes loaded so far, by model name (for metrics: ``runtime.cache.stats()``)."""
        return dict(self._local)

    def _local_dir(self, name: str) -> Path:
        from middleware.llm.local import parse_model_dirs, resolve_dir

        # A converted model is a derived file, like the static MiniLM table: it lives in the
        # cache folder, not among the user's data (ledger, collections).
        return resolve_dir(name, parse_model_dirs(self.settings.local_model_dirs),
                           self.settings.resolved_cache_dir() / "models")

    def _local_tokenizer(self, model: str) -> ModelTokenizer:
        """A local model counts in its own tokenizer (loaded without the weights when possible)."""
        from middleware.llm.local import load_tokenizer, local_name

        runtime = self._local.get(model)
        name = local_name(model) or model
        tok = runtime.model.tokenizer if runtime is not None else load_tokenizer(self._local_dir(name))
        return hf_tokenizer(model, f"hf:{name}", tok)
