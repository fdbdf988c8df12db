"""LlamaIndex nodes <-> ragpress Documents. The only place that knows both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from middleware.types import Document

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode, NodeWithScore


def is_text(node: "BaseNode") -> bool:
    """Text nodes are compressed; image nodes (a TextNode subclass whose text is a caption) are not."""
    from llama_index.core.schema import ImageNode, TextNode

    return isinstance(node, TextNode) and not isinstance(node, ImageNode)


def to_ragpress(node: "BaseNode", doc_id: str) -> Document:
    """The node's own text (without its metadata) under a position id that maps back exactly."""
    from llama_index.core.schema import MetadataMode

    return Document(id=doc_id, text=node.get_content(metadata_mode=MetadataMode.NONE), metadata=dict(node.metadata))


def with_text(original: "NodeWithScore", text: str, extra: Mapping[str, Any] | None) -> "NodeWithScore":
    """A copy of ``original`` (id, relationships, score kept) holding ``text``; the input is not mutated.

    ``extra`` metadata (our statistics) is hidden from the LLM and the embedder: LlamaIndex
    puts node metadata into prompts unless a key is excluded, and figures about the
    compression are not context.
    """
    from llama_index.core.schema import NodeWithScore

    node = original.node.model_copy()
    node.metadata = dict(original.node.metadata)
    if extra:
        node.metadata.update(extra)
        node.excluded_llm_metadata_keys = [*original.node.excluded_llm_metadata_keys,
                                           *(k for k in extra if k not in original.node.excluded_llm_metadata_keys)]
        node.excluded_embed_metadata_keys = [*original.node.excluded_embed_metadata_keys,
                                             *(k for k in extra if k not in original.node.excluded_embed_metadata_keys)]
    node.set_content(text)
    return NodeWithScore(node=node, score=original.score)


def to_node(doc: Document, score: float) -> "NodeWithScore":
    """A retrieved ragpress document as a scored TextNode (its title goes to metadata["title"])."""
    from llama_index.core.schema import NodeWithScore, TextNode

    metadata = dict(doc.metadata)
    if doc.title and "title" not in metadata:
        metadata["title"] = doc.title
    return NodeWithScore(node=TextNode(id_=doc.id, text=doc.text, metadata=metadata), score=score)
