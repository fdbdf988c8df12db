"""Deprecated location of the LangChain components, kept for one release (until 0.3).

They live in :mod:`middleware.integrations.langchain` (the edge floor): a retrievers'
package must not import the service. This module re-exports them with a
DeprecationWarning; it is the one upward import the layer contracts allow, by name,
in ``.importlinter``.
"""

import warnings

from middleware.integrations.langchain import (  # noqa: F401
    LangChainEmbedder,
    RagpressCompressor,
    RagpressEmbeddings,
    RagpressRetriever,
    RagpressVectorStore,
)

__all__ = ["LangChainEmbedder", "RagpressCompressor", "RagpressEmbeddings", "RagpressRetriever",
           "RagpressVectorStore"]

warnings.warn("retrievers.langchain moved to middleware.integrations.langchain; the old path goes in 0.3",
              DeprecationWarning, stacklevel=2)
