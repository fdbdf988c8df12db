"""The contract every compressor meets: one abstract method, ``compress``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from middleware.options import parse_options  # noqa: F401  (moved to the kernel; kept importable here)
from middleware.tokens import ModelTokenizer
from middleware.types import CompressorUsage, ContextFormat, Document


@dataclass(frozen=True)
class CompressionJob:
    """What a stage gets: the query, the current documents and the ceiling.

    ``deadline`` is the caller's, in ``time.monotonic()`` seconds (``None``: no
    deadline); methods that wait on a model bound their wait by it.
    """

    query: str
    documents: tuple[Document, ...]
    budget_tokens: int
    tokenizer: ModelTokenizer
    context_format: ContextFormat = ContextFormat()
    deadline: float | None = None


@dataclass(frozen=True)
class StageOutput:
    """Kept documents in input order (text may be shortened); absent ones are dropped.

    Invariant: every kept document has the id, title and metadata of an input
    document; compressors never invent documents.
    """

    documents: tuple[Document, ...]
    details: Mapping[str, Any] = field(default_factory=dict)
    # A stage that called a language model says what it spent (the usage ledger
    # counts its dollars as the compressor's cost).
    usage: CompressorUsage | None = None


class Compressor(ABC):
    """A compression method. Implementations are registered in :mod:`compressors.registry`."""

    @abstractmethod
    def compress(self, job: CompressionJob) -> StageOutput:
        """Return the documents to keep for ``job``, within ``job.budget_tokens``."""
