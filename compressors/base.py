"""The contract every compressor meets: one abstract method, ``compress``."""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar

from middleware.errors import InvalidArgument
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


O = TypeVar("O")


def parse_options(cls: type[O], options: Mapping[str, Any], method: str) -> O:
    """Build the frozen options dataclass ``cls`` from a JSON-like mapping.

    Unknown keys and values of the wrong type are :class:`InvalidArgument` errors that
    name the method, the key and what is expected.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidArgument(f"method {method!r}: unknown option(s) {unknown}; known: {sorted(known)}")
    values = {key: _check(method, key, hints[key], value) for key, value in options.items()}
    try:
        return cls(**values)
    except InvalidArgument:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"method {method!r}: {exc}") from exc


def _check(method: str, key: str, hint: Any, value: Any) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return None
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)  # JSON/Struct numbers arrive as floats
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
    raise InvalidArgument(f"method {method!r}: option {key!r} must be {names}, got {value!r}")
