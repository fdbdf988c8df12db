"""LangChain components (``langchain-core`` only) backed by ragpress.

- :class:`RagpressCompressor`: a ``BaseDocumentCompressor`` (in-process or remote).
- :class:`RagpressRetriever`: a ``BaseRetriever`` over a named collection.
- :class:`RagpressVectorStore`: a ``VectorStore`` on a FAISS collection.
- :class:`RagpressEmbeddings`: ragpress's embedder as LangChain ``Embeddings``.

Importing this module imports langchain-core (not torch or faiss).
"""

from retrievers.langchain.compressor import RagpressCompressor
from retrievers.langchain.embeddings import LangChainEmbedder, RagpressEmbeddings
from retrievers.langchain.retriever import RagpressRetriever
from retrievers.langchain.vectorstore import RagpressVectorStore

__all__ = ["LangChainEmbedder", "RagpressCompressor", "RagpressEmbeddings", "RagpressRetriever",
           "RagpressVectorStore"]
