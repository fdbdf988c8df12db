"""``soft``: every document becomes ``k`` soft tokens, vectors in a local model's input space.

A document's sentence vector (all-MiniLM-L6-v2 over ``"{title}\\n{text}"``; the vector a
collection stored for it when the document was retrieved from one) goes through the
trained projector (:mod:`compressors.projector`) to ``k`` vectors that the local model
reads in place of the document's text (xRAG-style embedding-token compression).

Soft tokens are not text: the method only makes sense as the last stage of a Generate
pipeline whose target is the local model the projector was trained for. Asked for text
(``Compress``, or an earlier pipeline stage), it fails with FAILED_PRECONDITION and says
why; the service checks the target before encoding (:mod:`middleware.generation.soft`).

Budget: each document costs ``k`` tokens. When they do not all fit, the documents whose
vectors are nearest the question's are kept (in input order).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from compressors.base import CompressionJob, Compressor, StageOutput, parse_options
from compressors.projector import DEFAULT_PATH, Projector, document_text, encoder_id
from compressors.registry import register
from middleware.errors import FailedPrecondition
from middleware.types import Document

METHOD = "soft"
NOT_TEXT = (f"method {METHOD!r} turns documents into soft tokens (vectors in a local model's input embeddings), "
            "not text: use it as the last stage of Generate or GenerateStream with a local/... model")


@dataclass(frozen=True)
class SoftOptions:
    """``k``: soft tokens per document; must be the projector's own k (None: the projector's)."""

    k: int | None = None


@dataclass(frozen=True)
class SoftContext:
    """The documents kept and, for each, its ``(k, hidden)`` soft tokens (float32)."""

    documents: tuple[Document, ...]
    vectors: tuple[np.ndarray, ...]
    k: int
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def soft_tokens(self) -> int:
        return self.k * len(self.documents)


_PROJECTORS: dict[Path, Projector] = {}
_LOCK = threading.Lock()


def load_projector(path: Path = DEFAULT_PATH) -> Projector:
    """A projector loaded once per file (it is read-only after loading)."""
    with _LOCK:
        if path not in _PROJECTORS:
            _PROJECTORS[path] = Projector.load(path)
        return _PROJECTORS[path]


class SoftTokens(Compressor):
    """Encodes documents as soft tokens; see the module docstring."""

    def __init__(self, options: SoftOptions, models: Any, projector: Projector) -> None:
        self.options = options
        self.models = models
        self.projector = projector
        c = projector.config
        if options.k is not None and options.k != c.k:
            raise FailedPrecondition(f"method {METHOD!r}: this server's projector gives k={c.k} soft tokens per "
                                     f"document, not {options.k}; train one with `ragpress train-projector --k "
                                     f"{options.k}` and set soft_projector")

    @property
    def k(self) -> int:
        return self.projector.config.k

    def compress(self, job: CompressionJob) -> StageOutput:
        raise FailedPrecondition(NOT_TEXT)

    def check_target(self, local_name: str, hidden_size: int) -> None:
        """FAILED_PRECONDITION unless the local model is the one the projector writes for."""
        c = self.projector.config
        if local_name != c.model or hidden_size != c.out_dim:
            raise FailedPrecondition(
                f"method {METHOD!r}: the projector was trained for local/{c.model} ({c.out_dim}-d input "
                f"embeddings); local/{local_name} has {hidden_size}-d: train a projector for it")

    def encode(self, query: str, documents: Sequence[Document], budget_tokens: int,
               known: Mapping[str, np.ndarray] | None = None) -> SoftContext:
        """Soft tokens for the documents that fit ``budget_tokens`` (k each).

        ``known`` maps document ids to encoder vectors computed before (a collection's);
        the others are encoded now.
        """
        started = time.perf_counter()
        embedder = self.models.embedder()
        c = self.projector.config
        if encoder_id(embedder.name) != c.encoder:
            raise FailedPrecondition(f"method {METHOD!r}: the projector reads {c.encoder} vectors, but this "
                                     f"server's embedder is {encoder_id(embedder.name)} (embedding_model)")
        docs = [d for d in documents if d.text.strip()]
        known = known or {}
        reused = [d.id for d in docs if d.id in known and np.shape(known[d.id]) == (c.in_dim,)]
        fresh = [d for d in docs if d.id not in set(reused)]
        vectors = dict(zip([d.id for d in fresh], embedder.embed([document_text(d.title, d.text) for d in fresh])))
        vectors.update({i: np.asarray(known[i], dtype=np.float32) for i in reused})
        keep = self._fit(query, docs, vectors, budget_tokens)
        kept = [d for d in docs if d.id in keep]
        soft = self.projector.project(np.stack([vectors[d.id] for d in kept])) if kept else np.zeros((0, c.k, c.out_dim))
        details = {"soft_tokens": c.k * len(kept), "k": c.k, "vectors_reused": len([i for i in reused if i in keep]),
                   "encode_ms": round((time.perf_counter() - started) * 1000.0, 2)}
        return SoftContext(tuple(kept), tuple(soft), c.k, details)

    def _fit(self, query: str, docs: Sequence[Document], vectors: Mapping[str, np.ndarray], budget: int) -> set[str]:
        room = budget // self.k
        if room >= len(docs):
            return {d.id for d in docs}
        if room <= 0:
            return set()
        q = self.models.embedder().embed([query])[0]
        ranked = sorted(docs, key=lambda d: -float(np.dot(vectors[d.id], q)))
        return {d.id for d in ranked[:room]}


@register(METHOD, "documents as k soft tokens each for the local model (Generate only; xRAG-style projector)",
          output="soft-tokens")
def _factory(options: Mapping[str, Any], models: Any) -> SoftTokens:
    opts = parse_options(SoftOptions, options, METHOD)
    path = models.settings.soft_projector
    return SoftTokens(opts, models, load_projector(Path(path) if path else DEFAULT_PATH))
