"""LangChain components (``langchain-core`` only) backed by ragpress.

- :class:`RagpressCompressor`: a ``BaseDocumentCompressor`` (in-process or remote).
- :class:`RagpressRetriever`: a ``BaseRetriever`` over a named collection.
- :class:`RagpressVectorStore`: a ``VectorStore`` on a FAISS collection.
- :class:`RagpressEmbeddings`: ragpress's embedder as LangChain ``Embeddings``.
- :class:`RagpressExampleSelector`: a ``BaseExampleSelector`` (few-shot examples within a token budget).

Importing this module imports langchain-core (not torch or faiss).
"""

from middleware.integrations.langchain.compressor import RagpressCompressor
from middleware.integrations.langchain.embeddings import LangChainEmbedder, RagpressEmbeddings
from middleware.integrations.langchain.examples import RagpressExampleSelector
from middleware.integrations.langchain.retriever import RagpressRetriever
from middleware.integrations.langchain.vectorstore import RagpressVectorStore

__all__ = ["LangChainEmbedder", "RagpressCompressor", "RagpressEmbeddings", "RagpressExampleSelector",
           "RagpressRetriever", "RagpressVectorStore"]
