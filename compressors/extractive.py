"""``extractive``: query-aware selection of whole sentences.

Each sentence unit is scored by a hybrid of BM25 against the query (lexical)
and the embedding cosine of "title: sentence" against the query, plus a small
lead prior; whole units are then packed by score under the exact ceiling and
emitted verbatim in their original order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from compressors import lexical, packing
from compressors.base import CompressionJob, Compressor, StageOutput, parse_options
from compressors.registry import register
from middleware.errors import InvalidArgument
from middleware.models import Embedder, ModelRegistry


@dataclass(frozen=True)
class ExtractiveOptions:
    # Weight of BM25 in [0, 1]; the embedding cosine gets the rest.
    lexical_weight: float = 0.5
    # Position prior: a unit at index i of its document gets lead_bonus / (1 + i)
    # (first sentences usually name the subject).
    lead_bonus: float = 0.05
    # Units scoring below this are never kept (0 keeps anything that fits).
    min_score: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise InvalidArgument(f"method 'extractive': lexical_weight must be in [0, 1], got {self.lexical_weight}")
        if self.min_score < 0:
            raise InvalidArgument(f"method 'extractive': min_score must be >= 0, got {self.min_score}")


class ExtractiveCompressor(Compressor):
    def __init__(self, options: ExtractiveOptions, embedder: Embedder) -> None:
        self.options = options
        self.embedder = embedder

    def scores(self, job: CompressionJob, seg: packing.Segmented) -> np.ndarray:
        n = len(seg.units)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        titled = [_titled(job, u) for u in seg.units]
        lead = np.array([self.options.lead_bonus / (1 + u.index) for u in seg.units], dtype=np.float32)
        if not job.query.strip():
            return lead  # no query: leading units first, document by document
        lex = lexical.normalise(lexical.bm25(job.query, titled))
        vecs = self.embedder.embed([job.query, *titled])
        cos = np.clip(vecs[1:] @ vecs[0], 0.0, 1.0)
        w = self.options.lexical_weight
        return (w * lex + (1.0 - w) * cos + lead).astype(np.float32)

    def compress(self, job: CompressionJob) -> StageOutput:
        seg = packing.segment(job.documents)
        scores = self.scores(job, seg)
        # Higher score first; ties keep document order (stable sort on position).
        order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= self.options.min_score]
        docs, details = packing.pack(job, seg, order)
        return StageOutput(docs, details)


def _titled(job: CompressionJob, unit: packing.Unit) -> str:
    title = job.documents[unit.doc].title.strip()
    return f"{title}: {unit.text}" if title else unit.text


@register("extractive", "query-aware selection of whole sentences (BM25 + MiniLM cosine)")
def _factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
    return ExtractiveCompressor(parse_options(ExtractiveOptions, options, "extractive"), models.embedder())
