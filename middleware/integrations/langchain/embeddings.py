"""Embeddings in both directions: ragpress's embedder as LangChain ``Embeddings``,
and any LangChain ``Embeddings`` as a ragpress embedder (for the vector store)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

from langchain_core.embeddings import Embeddings

from middleware.embedders import Embedder, word_spans

if TYPE_CHECKING:
    import numpy as np

_LOADED: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def _shared(spec: str) -> Embedder:
    # Loading a model costs seconds and hundreds of MB: one per spec per process.
    with _LOCK:
        if spec not in _LOADED:
            from middleware.embedders import load_embedder
            from middleware.offline import configure_offline

            configure_offline()
            _LOADED[spec] = load_embedder(spec)
        return _LOADED[spec]


class RagpressEmbeddings(Embeddings):
    """LangChain embeddings from ragpress's embedder: ``model`` is ``""`` for
    all-MiniLM-L6-v2, ``"hashing"`` for the model-free one, or a sentence-transformers
    folder; left out, it is the ``embedding_model`` setting (``RAGPRESS_EMBEDDING_MODEL``
    or the config file). Vectors are L2-normalised. ``engine=`` reuses that engine's model."""

    def __init__(self, model: str | None = None, *, engine: Any = None) -> None:
        if engine is not None and model is not None:
            from middleware.errors import InvalidArgument

            raise InvalidArgument("give either model or engine, not both")
        if model is None and engine is None:
            import os

            from middleware.settings import Settings

            model = Settings.load(env=os.environ).embedding_model
        self.model = model if engine is None else engine.settings.embedding_model
        self._engine = engine
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._engine.models.embedder() if self._engine is not None else _shared(self.model)
        return self._embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts)).astype(float).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class LangChainEmbedder:
    """Any LangChain ``Embeddings`` as a ragpress :class:`~middleware.models.Embedder`.

    Documents are chunked by words here: the wrapped model's tokenizer is unknown.
    """

    # Chunks are capped by the configured chunk size only.
    max_tokens = 1_000_000

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self.name = f"langchain:{type(embeddings).__module__}.{type(embeddings).__qualname__}"
        if isinstance(embeddings, RagpressEmbeddings):
            self.name = embeddings.embedder.name
            self.max_tokens = getattr(embeddings.embedder, "max_tokens", self.max_tokens)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if isinstance(self.embeddings, RagpressEmbeddings):
            return getattr(self.embeddings.embedder, "token_spans", word_spans)(text)
        return word_spans(text)

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        return np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)

    def embed_query(self, text: str) -> "np.ndarray":
        """A query may be embedded differently from a passage (instruction models)."""
        import numpy as np

        return np.asarray([self.embeddings.embed_query(text)], dtype=np.float32)
