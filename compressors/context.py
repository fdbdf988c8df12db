"""How documents become one context string, and how it is counted.

This is the single definition of the context the budget applies to: the
response's ``compressed_tokens`` is ``tokenizer.count(assemble(...))``.
"""

from __future__ import annotations

from typing import Iterable

from middleware.tokens import ModelTokenizer
from middleware.types import ContextFormat, Document


def render(doc: Document, fmt: ContextFormat) -> str:
    if fmt.include_titles and doc.title.strip():
        return f"{doc.title.strip()}\n{doc.text}"
    return doc.text


def visible(docs: Iterable[Document]) -> list[Document]:
    """Documents that contribute text (blank ones are dropped, never emitted)."""
    return [d for d in docs if d.text.strip()]


def assemble(docs: Iterable[Document], fmt: ContextFormat) -> str:
    return fmt.separator.join(render(d, fmt) for d in visible(docs))


def count(docs: Iterable[Document], fmt: ContextFormat, tokenizer: ModelTokenizer) -> int:
    return tokenizer.count(assemble(docs, fmt))
