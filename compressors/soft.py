"""``soft``: every document becomes ``k`` soft tokens, vectors in a local model's input space.

A document is cut into chunks the projector's way (its ``chunking``: whole sentences of at
least ``chunk_words`` words, or windows of ``chunk_words`` words; a projector with
``chunk_words`` 0 reads whole documents);
each chunk's sentence vector (all-MiniLM-L6-v2 over ``"{title}\\n{chunk}"``, read by its
int8 ONNX build, the service's fast embedder, about 4x faster than the torch model on a
request's chunks; for a document that is one chunk, the vector a collection stored for it
when the document was retrieved from one) goes through the trained projector
(:mod:`compressors.projector`) to ``k`` vectors that the local model reads in place of the
chunk's text (xRAG-style embedding-token compression). A projector with a lexical channel
(``lexical_tokens``) also reads each chunk's first tokens under the local model's tokenizer,
and that model's input-embedding table.

Soft tokens are not text: the method only makes sense as the last stage of a Generate
pipeline whose target is the local model the projector was trained for. Asked for text
(``Compress``, or an earlier pipeline stage), it fails with FAILED_PRECONDITION and says
why; the service checks the target before encoding (:mod:`middleware.generation.soft`).

Budget: each chunk costs ``k`` tokens. When they do not all fit, the chunks whose vectors
are nearest the question's are kept (in input order); a document none of whose chunks
fit is left out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from compressors.base import CompressionJob, Compressor, StageOutput, parse_options
from compressors.projector import DEFAULT_PATH, Lexicon, Projector, encoder_id, encoder_texts
from compressors.registry import register
from middleware.errors import FailedPrecondition
from middleware.types import Document

METHOD = "soft"
NOT_TEXT = (f"method {METHOD!r} turns documents into soft tokens (vectors in a local model's input embeddings), "
            "not text: use it as the last stage of Generate or GenerateStream with a local/... model")


@dataclass(frozen=True)
class SoftOptions:
    """``k``: soft tokens per chunk; must be the projector's own k (None: the projector's)."""

    k: int | None = None


@dataclass(frozen=True)
class SoftContext:
    """The documents kept and, for each, its ``(k * chunks kept, hidden)`` soft tokens (float32)."""

    documents: tuple[Document, ...]
    vectors: tuple[np.ndarray, ...]
    k: int
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def soft_tokens(self) -> int:
        return sum(len(v) for v in self.vectors)


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
                                     f"chunk, not {options.k}; train one with `ragpress train-projector --k "
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
        """Soft tokens for the chunks that fit ``budget_tokens`` (k each).

        ``known`` maps document ids to encoder vectors computed before (a collection's); one
        stands in for a document that is a single chunk, the others are encoded now.
        """
        started = time.perf_counter()
        embedder = self.models.fast_embedder()
        c = self.projector.config
        if encoder_id(embedder.name) != c.encoder:
            raise FailedPrecondition(f"method {METHOD!r}: the projector reads {c.encoder} vectors, but this "
                                     f"server's embedder is {encoder_id(embedder.name)} (embedding_model)")
        docs = [d for d in documents if d.text.strip()]
        known = known or {}
        texts = [encoder_texts(d.title, d.text, c.chunk_words, c.chunking) for d in docs]
        reused = {d.id for d, t in zip(docs, texts) if len(t) == 1 and d.id in known
                  and np.shape(known[d.id]) == (c.in_dim,)}
        fresh = [t for d, ts in zip(docs, texts) if d.id not in reused for t in ts]
        encoded = iter(embedder.embed(fresh)) if fresh else iter(())
        vectors = [np.asarray(known[d.id], dtype=np.float32)[None] if d.id in reused
                   else np.stack([next(encoded) for _ in ts]).astype(np.float32) for d, ts in zip(docs, texts)]
        keep = self._fit(query, vectors, budget_tokens)
        kept_docs, soft = [], []
        lexicon = self.lexicon() if c.lexical_tokens else None
        for i, doc in enumerate(docs):
            rows = [j for j in range(len(vectors[i])) if (i, j) in keep]
            if rows:
                kept_docs.append(doc)
                projected = self.projector.project(vectors[i][rows], [texts[i][j] for j in rows], lexicon)
                soft.append(projected.reshape(len(rows) * c.k, c.out_dim))
        details = {"soft_tokens": sum(len(v) for v in soft), "k": c.k, "chunks": sum(len(v) for v in vectors),
                   "chunks_kept": len(keep), "vectors_reused": len(reused & {d.id for d in kept_docs}),
                   "encode_ms": round((time.perf_counter() - started) * 1000.0, 2)}
        return SoftContext(tuple(kept_docs), tuple(soft), c.k, details)

    def lexicon(self) -> Lexicon:
        """The projector's local model's tokenizer and input-embedding table (float32, a view
        of the weights on a CPU float32 model), kept once per model registry."""
        name = f"local/{self.projector.config.model}"

        return self.models.shared(f"soft-lexicon:{name}", lambda: Lexicon.of(self.models.local_runtime(name).model))

    def _fit(self, query: str, vectors: Sequence[np.ndarray], budget: int) -> set[tuple[int, int]]:
        """(document, chunk) pairs that fit: all, or those nearest the question."""
        units = [(i, j) for i, v in enumerate(vectors) for j in range(len(v))]
        room = budget // self.k
        if room >= len(units):
            return set(units)
        if room <= 0:
            return set()
        q = self.models.fast_embedder().embed([query])[0]
        ranked = sorted(units, key=lambda u: -float(np.dot(vectors[u[0]][u[1]], q)))
        return set(ranked[:room])


@register(METHOD, "documents as k soft tokens each for the local model (Generate only; xRAG-style projector)",
          output="soft-tokens")
def _factory(options: Mapping[str, Any], models: Any) -> SoftTokens:
    opts = parse_options(SoftOptions, options, METHOD)
    path = models.settings.soft_projector
    return SoftTokens(opts, models, load_projector(Path(path) if path else DEFAULT_PATH))
