"""Token counting in the target model's own tokenizer.

litellm decides which tokenizer a model uses (its offline model map and its
OpenAI encoding rules); the counting itself is exact, on the whole string,
because token counts of concatenated strings are not additive under BPE.

Policy for models whose real tokenizer cannot be loaded offline:
- a model that litellm knows (its price map) but whose tokenizer is not
  available here is counted with ``cl100k_base`` and reported as a fallback;
- a name nobody knows is an :class:`UnknownModel` error, unless the settings
  say ``unknown_model = "fallback"`` (then ``cl100k_base``, reported as such).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

from middleware.errors import InvalidArgument

FALLBACK_ENCODING = "cl100k_base"
_OPENAI_PROVIDERS = {"openai", "azure", "text-completion-openai", "azure_text"}


class UnknownModel(InvalidArgument):
    """No tokenizer is known for the model and fallback is off."""


@dataclass(frozen=True)
class ModelTokenizer:
    """Counts, encodes and decodes text for one target model."""

    model: str
    name: str
    fallback: bool
    _encode: Callable[[str], Sequence[int]]
    _decode: Callable[[Sequence[int]], str]
    # A counting cache shared by every model name of one encoding (see _tiktoken).
    _counter: Callable[[str], int] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Counting the same sentence again is common (pipelines, retries, repeated
        # documents): a bounded cache keeps it O(1).
        counter = self._counter or lru_cache(maxsize=200_000)(self._count_uncached)
        object.__setattr__(self, "_cached_count", counter)

    def _count_uncached(self, text: str) -> int:
        return len(self._encode(text))

    def count(self, text: str) -> int:
        return self._cached_count(text) if text else 0  # type: ignore[attr-defined]

    def clear_cache(self) -> None:
        self._cached_count.cache_clear()  # type: ignore[attr-defined]

    def encode(self, text: str) -> list[int]:
        return list(self._encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self._decode(ids)


_COUNTERS: dict[str, Callable[[str], int]] = {}
_COUNTERS_LOCK = threading.Lock()


def _tiktoken(model: str, encoding_name: str, fallback: bool) -> ModelTokenizer:
    import tiktoken

    enc = tiktoken.get_encoding(encoding_name)
    encode = lambda text: enc.encode(text, disallowed_special=())  # noqa: E731
    # One counting cache per encoding, not per model name: many names share o200k_base,
    # and a cache per name grew without bound when clients sent many names.
    with _COUNTERS_LOCK:
        counter = _COUNTERS.setdefault(encoding_name, lru_cache(maxsize=200_000)(lambda t: len(encode(t))))
    return ModelTokenizer(model=model, name=encoding_name, fallback=fallback, _encode=encode,
                          _decode=enc.decode, _counter=counter)


def _split_provider(model: str) -> tuple[str, str | None]:
    """``openai/gpt-4o`` -> (``gpt-4o``, ``openai``); litellm knows the providers."""
    from middleware.offline import litellm_module
    litellm = litellm_module()

    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
        return name, provider
    except Exception:  # litellm raises its own BadRequestError for unknown providers
        return model, None


def resolve_tokenizer(model: str, unknown_model: str = "error") -> ModelTokenizer:
    """The tokenizer for ``model``; see the module docstring for the policy."""
    from middleware.offline import litellm_module
    litellm = litellm_module()
    from litellm.litellm_core_utils.token_counter import openai_tokenizer_encoding_name
    import tiktoken

    from tiktoken.model import MODEL_TO_ENCODING

    name, provider = _split_provider(model)
    try:
        by_prefix = tiktoken.encoding_name_for_model(name)
    except KeyError:
        by_prefix = None
    # tiktoken also matches by prefix ("gpt-4o-" + anything): a prefix match alone does
    # not make a model real, or any client-chosen string would be accepted (and pile up
    # in caches, metrics and the ledger). A name must be an exact tiktoken model or in
    # litellm's model map.
    in_map = model in litellm.model_cost or name in litellm.model_cost
    if name in MODEL_TO_ENCODING or (in_map and by_prefix is not None):
        return _tiktoken(model, by_prefix or openai_tokenizer_encoding_name(name), fallback=False)
    if in_map and provider in _OPENAI_PROVIDERS:
        return _tiktoken(model, openai_tokenizer_encoding_name(name), fallback=False)
    if in_map:
        return _tiktoken(model, FALLBACK_ENCODING, fallback=True)
    if unknown_model == "fallback":
        return _tiktoken(model, FALLBACK_ENCODING, fallback=True)
    raise UnknownModel(
        f"unknown model {model!r}: no tokenizer is known for it; use a litellm model name "
        f"(e.g. 'gpt-4o', 'gpt-4o-mini', 'gpt-3.5-turbo'), or allow a fallback count with "
        f"{FALLBACK_ENCODING}: the setting unknown_model = \"fallback\" (RAGPRESS_UNKNOWN_MODEL=fallback "
        f"for a server; --unknown-model fallback on the ragpress command line)"
    )


def hf_tokenizer(model: str, name: str, tokenizer: object) -> ModelTokenizer:
    """Wrap a Hugging Face tokenizer (a local model's own) as a :class:`ModelTokenizer`."""
    return ModelTokenizer(
        model=model,
        name=name,
        fallback=False,
        _encode=lambda text: tokenizer.encode(text, add_special_tokens=False),  # type: ignore[attr-defined]
        _decode=lambda ids: tokenizer.decode(list(ids)),  # type: ignore[attr-defined]
    )


class TokenizerRegistry:
    """Resolves and caches one :class:`ModelTokenizer` per model name (thread-safe)."""

    # Model names remembered; beyond this the oldest is forgotten (and resolved again if
    # it comes back), so client-chosen names cannot grow the process without bound.
    MAX_MODELS = 1024

    def __init__(self, unknown_model: str = "error") -> None:
        if unknown_model not in ("error", "fallback"):
            raise InvalidArgument(f"unknown_model must be 'error' or 'fallback', got {unknown_model!r}")
        self._unknown_model = unknown_model
        self._cache: dict[str, ModelTokenizer] = {}
        self._lock = threading.Lock()
        self._resolvers: dict[str, Callable[[str], ModelTokenizer]] = {}

    def add_resolver(self, prefix: str, resolve: Callable[[str], ModelTokenizer]) -> None:
        """Resolve model names starting with ``prefix`` (e.g. ``"local/"``) with ``resolve``.

        Local models count in their own tokenizer, which only the model registry can load.
        """
        self._resolvers[prefix] = resolve

    def get(self, model: str) -> ModelTokenizer:
        tok = self._cache.get(model)
        if tok is not None:
            return tok
        with self._lock:
            tok = self._cache.get(model)
            if tok is None:
                resolve = next((r for p, r in self._resolvers.items() if model.startswith(p)), None)
                tok = resolve(model) if resolve else resolve_tokenizer(model, self._unknown_model)
                if len(self._cache) >= self.MAX_MODELS:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[model] = tok
        return tok

    def clear_caches(self) -> None:
        for tok in list(self._cache.values()):
            tok.clear_cache()
