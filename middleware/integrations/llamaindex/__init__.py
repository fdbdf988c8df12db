"""LlamaIndex components (``llama-index-core`` only) backed by ragpress.

- :class:`RagpressNodePostprocessor`: a ``BaseNodePostprocessor`` that compresses the
  retrieved nodes to a token budget of the target model (in-process or remote).
- :class:`RagpressRetriever`: a ``BaseRetriever`` over a named ragpress collection.

Install with ``pip install 'ragpress[llamaindex]'``. Importing this module imports
llama-index-core (not torch or faiss)::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from middleware.integrations.llamaindex import RagpressNodePostprocessor, RagpressRetriever

    engine = RetrieverQueryEngine.from_args(
        RagpressRetriever(collection="wiki", target="127.0.0.1:50051"),
        node_postprocessors=[RagpressNodePostprocessor(budget=300, target="127.0.0.1:50051")])
"""

from middleware.integrations.llamaindex.postprocessor import RagpressNodePostprocessor
from middleware.integrations.llamaindex.retriever import RagpressRetriever

__all__ = ["RagpressNodePostprocessor", "RagpressRetriever"]
