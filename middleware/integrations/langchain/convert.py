"""LangChain Document <-> ragpress Document. The only place that knows both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from middleware.types import Document

if TYPE_CHECKING:
    from langchain_core.documents import Document as LCDocument


def to_ragpress(doc: "LCDocument", doc_id: str) -> Document:
    return Document(id=doc_id, text=doc.page_content, metadata=dict(doc.metadata))


def to_langchain(doc: Document, extra: Mapping[str, Any] | None = None) -> "LCDocument":
    """A LangChain Document; a ragpress title goes to metadata["title"] unless that is taken."""
    from langchain_core.documents import Document as LCDocument

    metadata = dict(doc.metadata)
    if doc.title and "title" not in metadata:
        metadata["title"] = doc.title
    if extra:
        metadata.update(extra)
    return LCDocument(page_content=doc.text, metadata=metadata, id=doc.id)
