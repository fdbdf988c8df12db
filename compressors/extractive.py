"""``extractive``: context-aware, query-adaptive selection of whole sentences.

Each sentence unit is judged with its document (compressors/features.py: lexical,
static-embedding, structural and multi-hop bridge signals) by a small trained head
(compressors/head.py) that gives the probability that it is evidence; the leads of
the likeliest documents are then read by a real transformer (all-MiniLM-L6-v2, int8
ONNX) and their units judged again (compressors/rerank.py; not with the ``fast``
heads). Then:
documents whose best unit is hopeless are dropped whole, near-duplicate units
across documents are kept once, and units are packed by probability under the
exact ceiling, stopping early when the rest is unlikely to matter (adaptive: the
budget is a ceiling, not a quota). Output units are verbatim, in original order
unless ``reorder`` asks to put the strongest documents at the edges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np

from compressors import head, lexical, packing, rerank
from compressors.base import CompressionJob, Compressor, StageOutput, parse_options
from compressors.registry import register
from middleware.errors import InvalidArgument, Unavailable
from middleware.models import ModelRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractiveOptions:
    # Units whose evidence probability is below this are not kept even if they fit
    # (chosen on the training data's validation split: bench/tune_extractive_thresholds.py).
    min_probability: float = 0.005
    # A document is dropped whole when its best unit is below this probability.
    min_document_probability: float = 0.002
    # Near-duplicate units (word-set Jaccard at or above this) are kept once; 1 disables.
    duplicate_threshold: float = 0.8
    # Put the most relevant documents first and last (against lost-in-the-middle).
    reorder: bool = False
    # Which trained heads judge the units (compressors/head.py NAMED): "default" (the leads of
    # the likeliest documents are read by MiniLM; "rerank" is the same) or "fast" (HotpotQA-trained
    # cheap heads, no transformer pass).
    heads: str = "default"
    # How many of the likeliest documents' leads the transformer reads: exactly this many (0: the
    # cheap heads alone), or None: as the heads were trained (the default heads: 8, and up to 4
    # more that the cheap heads still give at least 0.015). Used only by heads with a rerank head.
    rerank_documents: int | None = None

    def __post_init__(self) -> None:
        for name in ("min_probability", "min_document_probability", "duplicate_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"method 'extractive': {name} must be in [0, 1], got {value}")
        if self.heads not in head.NAMED:
            raise InvalidArgument(f"method 'extractive': heads must be one of {sorted(head.NAMED)}, got {self.heads!r}")
        if self.rerank_documents is not None and not 0 <= self.rerank_documents <= rerank.MAX_DOCUMENTS:
            raise InvalidArgument(f"method 'extractive': rerank_documents must be in [0, {rerank.MAX_DOCUMENTS}], "
                                  f"got {self.rerank_documents}")


class ExtractiveCompressor(Compressor):
    def __init__(self, options: ExtractiveOptions, embed: Callable[[list[str]], np.ndarray],
                 dense: Callable[[], Any] | None = None) -> None:
        self.options = options
        self.embed = embed
        self.heads = head.load(head.NAMED[options.heads])
        self.reading = (self.heads.reading if options.rerank_documents is None
                        else rerank.Reading(options.rerank_documents))
        # The transformer is loaded only when the heads have a rerank head to use it; where it
        # cannot be (ONNX Runtime missing or its model not buildable), the cheap heads serve alone.
        wanted = dense is not None and self.heads.rerank is not None and self.reading.documents > 0
        self.dense = _dense_or_none(dense) if wanted else None

    def compress(self, job: CompressionJob) -> StageOutput:
        seg = packing.segment(job.documents)
        if not seg.units:
            return StageOutput((), {"units_total": 0, "units_kept": 0, "relevant": False})
        opts = self.options
        scores = self.heads.score(job, seg, self.embed, self.dense, self.reading)
        prob, doc_best = scores.unit, scores.doc
        # The thresholds read the floors: a rerank reorders the units the cheap heads keep, never drops them.
        eligible = scores.eligible(seg, opts.min_probability, opts.min_document_probability)
        if not job.query.strip():
            # No query to judge against: leading units first, document by document.
            eligible = sorted(range(len(seg.units)), key=lambda i: (seg.units[i].index, seg.units[i].doc))
        order, duplicates = _drop_duplicates(seg, eligible, opts.duplicate_threshold)
        docs, details = packing.pack(job, seg, order)
        if opts.reorder and len(docs) > 2:
            docs = _edges_first(docs, {d.id: doc_best[i] for i, d in enumerate(job.documents)})
            details["reordered"] = True
        details.update({
            "duplicates_removed": duplicates,
            "documents_filtered": int(sum(scores.doc_floor < opts.min_document_probability)),
            "max_probability": round(float(prob.max()), 4),
            "relevant": bool(prob.max() >= opts.min_probability),
            "reranked": scores.reranked,
        })
        return StageOutput(docs, details)


def _dense_or_none(dense: Callable[[], Any]) -> Callable | None:
    try:
        return dense().embed
    except Unavailable as exc:
        _warn_once(f"extractive: {exc}; the cheap heads serve without the MiniLM rerank")
        return None


@lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    log.warning(message)


def _drop_duplicates(seg: packing.Segmented, order: list[int], threshold: float) -> tuple[list[int], int]:
    if threshold >= 1.0:
        return order, 0
    kept: list[int] = []
    seen: list[set[str]] = []
    removed = 0
    for i in order:
        words = set(lexical.tokenize(seg.units[i].text))
        if len(words) >= 4 and any(len(words & s) / len(words | s) >= threshold for s in seen):
            removed += 1
            continue
        kept.append(i)
        seen.append(words)
    return kept, removed


def _edges_first(docs, relevance):
    """Strongest document first, second strongest last, and so on inwards."""
    ranked = sorted(docs, key=lambda d: -relevance[d.id])
    front, back = ranked[0::2], ranked[1::2]
    return tuple(front + back[::-1])


@register("extractive", "context-aware selection of whole sentences (trained head over lexical, "
                        "embedding, structural and bridge features)")
def _factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
    opts = parse_options(ExtractiveOptions, options, "extractive")
    return ExtractiveCompressor(opts, models.static_embedder().embed, models.onnx_embedder)
