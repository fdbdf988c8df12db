"""Domain types: frozen dataclasses that never carry protobuf objects."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from middleware.errors import InvalidArgument

DEFAULT_MODEL = "gpt-4o"
DEFAULT_METHOD = "extractive"
DEFAULT_SEPARATOR = "\n\n"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Document:
    """A retrieved document; ``id`` and ``metadata`` travel through unchanged."""

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise InvalidArgument(f"document id must be a string, got {type(self.id).__name__}")
        if not isinstance(self.text, str):
            raise InvalidArgument(f"document {self.id!r}: text must be a string")
        if not isinstance(self.title, str):
            raise InvalidArgument(f"document {self.id!r}: title must be a string")
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def with_text(self, text: str) -> "Document":
        return Document(id=self.id, text=text, title=self.title, metadata=self.metadata)


@dataclass(frozen=True)
class Demonstration:
    """A few-shot example: an input, the expected output, an optional class label
    (what label-aware selection strategies group by) and metadata kept unchanged."""

    id: str
    input: str
    output: str
    label: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise InvalidArgument(f"demonstration id must be a string, got {type(self.id).__name__}")
        for name in ("input", "output", "label"):
            if not isinstance(getattr(self, name), str):
                raise InvalidArgument(f"demonstration {self.id!r}: {name} must be a string")
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def with_input(self, text: str) -> "Demonstration":
        return Demonstration(self.id, text, self.output, self.label, self.metadata)


@dataclass(frozen=True)
class Budget:
    """Either ``max_tokens`` (a ceiling) or ``keep_ratio`` (share of the original)."""

    max_tokens: int | None = None
    keep_ratio: float | None = None

    def __post_init__(self) -> None:
        if (self.max_tokens is None) == (self.keep_ratio is None):
            raise InvalidArgument("budget: give exactly one of max_tokens or keep_ratio")
        if self.max_tokens is not None:
            if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
                raise InvalidArgument(f"budget.max_tokens must be an integer, got {self.max_tokens!r}")
            if self.max_tokens < 1:
                raise InvalidArgument(f"budget.max_tokens must be >= 1, got {self.max_tokens}")
        if self.keep_ratio is not None:
            ratio = self.keep_ratio
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio):
                raise InvalidArgument(f"budget.keep_ratio must be a finite number, got {ratio!r}")
            if not 0.0 < ratio <= 1.0:
                raise InvalidArgument(f"budget.keep_ratio must be in (0, 1], got {ratio}")

    def ceiling(self, original_tokens: int) -> int:
        """The budget in tokens for a context of ``original_tokens`` tokens."""
        if self.max_tokens is not None:
            return self.max_tokens
        return max(1, int(original_tokens * float(self.keep_ratio)))


@dataclass(frozen=True)
class Stage:
    """One pipeline step: a registered method and its options.

    ``budget`` is the stage's own ceiling (``None``: the request's). An earlier stage
    may get a larger one than the request (``extractive`` to 300 tokens, then
    ``abstractive`` to 100); the last stage never exceeds the request's ceiling.
    """

    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method.strip():
            raise InvalidArgument("pipeline stage: method must be a non-empty string")
        if self.budget is not None and not isinstance(self.budget, Budget):
            raise InvalidArgument(f"pipeline stage {self.method!r}: budget must be a Budget")
        object.__setattr__(self, "options", _frozen(self.options))


@dataclass(frozen=True)
class ContextFormat:
    separator: str = DEFAULT_SEPARATOR
    include_titles: bool = True


@dataclass(frozen=True)
class CompressRequest:
    query: str
    documents: tuple[Document, ...]
    budget: Budget
    model: str = DEFAULT_MODEL
    pipeline: tuple[Stage, ...] = (Stage(DEFAULT_METHOD),)
    context_format: ContextFormat = ContextFormat()

    def __post_init__(self) -> None:
        if not isinstance(self.query, str):
            raise InvalidArgument("query must be a string")
        object.__setattr__(self, "documents", tuple(self.documents))
        object.__setattr__(self, "pipeline", tuple(self.pipeline))
        if not self.pipeline:
            raise InvalidArgument("pipeline must have at least one stage")
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidArgument("model must be a non-empty string")
        seen: set[str] = set()
        for doc in self.documents:
            if doc.id in seen:
                raise InvalidArgument(f"duplicate document id {doc.id!r}")
            seen.add(doc.id)


@dataclass(frozen=True)
class CompressorUsage:
    """What a stage spent on a language model of its own (the ``abstractive`` summariser).

    Tokens are in that model's tokenizer, not the target's; ``cost_usd`` is from
    litellm's offline price map (0 for a local model, whose cost is its compute
    time, and for a cache hit, which calls nothing).
    """

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class StageStats:
    method: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    details: Mapping[str, Any] = field(default_factory=dict)
    usage: CompressorUsage | None = None


@dataclass(frozen=True)
class CompressResult:
    documents: tuple[Document, ...]
    dropped_ids: tuple[str, ...]
    context: str
    original_tokens: int
    compressed_tokens: int
    budget_tokens: int
    stages: tuple[StageStats, ...]
    model: str
    tokenizer: str
    tokenizer_fallback: bool = False
    request_id: str = ""
    # Served from the result cache rather than computed for this call.
    cached: bool = False

    @property
    def ratio(self) -> float:
        """Compression ratio original/compressed (inf when nothing is kept)."""
        return self.original_tokens / self.compressed_tokens if self.compressed_tokens else math.inf
