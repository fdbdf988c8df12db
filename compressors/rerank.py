"""A second look at the likeliest units with a real transformer (all-MiniLM-L6-v2).

The cheap heads (static-MiniLM vectors, BM25, structure) rank every unit of a
request in a few milliseconds; a transformer pass over every unit costs a second
or more on a CPU. So only the ``k`` units the cheap heads like best are encoded
for real, as the ``cosine`` baseline encodes them ("title: sentence"), and a
small trained head (the fifth, ``rerank``) combines the cheap head's logit with
the real cosine and their ranks among the candidates. Single-hop questions over
retrieved passages, whose passages share the question's words by construction
(a retriever chose them for that), are where the cheap signals run out and the
transformer's reading of the sentence decides.

Invariant: units outside the candidates keep their cheap order after every
candidate; the candidates are a prefix of the cheap ranking unless the heads
cap how many come from one document (``rerank_per_document``); the encode cost
is bounded by ``k`` whatever the request's size.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from compressors import packing
from compressors.base import CompressionJob
from compressors.features import rank01

# How many units the transformer reads by default, and at most (its cost grows with them).
CANDIDATES = 12
MAX_CANDIDATES = 64
RERANK_FEATURES = ("unit_logit", "unit_logit_rank", "dense_cos", "dense_cos_rank", "dense_cos_gap",
                   "doc_dense_best", "doc_dense_rank", "static_cos")


def candidates(logits: np.ndarray, k: int, doc_of: np.ndarray | None = None, per_document: int = 0) -> np.ndarray:
    """The ``k`` units with the highest cheap logits, best first; with ``per_document`` > 0, at most
    that many from one document (``doc_of``: each unit's document), so that the transformer sees
    more passages when the cheap heads rank the right passage too low (single-hop retrieval)."""
    order = np.argsort(-logits, kind="stable")
    if per_document <= 0 or doc_of is None:
        return order[:k]
    taken: dict[int, int] = {}
    out = []
    for i in order:
        d = int(doc_of[i])
        if taken.get(d, 0) < per_document:
            taken[d] = taken.get(d, 0) + 1
            out.append(int(i))
            if len(out) == k:
                break
    return np.array(out, dtype=np.int64)


def titled(job: CompressionJob, unit: packing.Unit) -> str:
    title = job.documents[unit.doc].title.strip()
    return f"{title}: {unit.text}" if title else unit.text


def dense_cosine(job: CompressionJob, seg: packing.Segmented, chosen: np.ndarray,
                 embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Cosine of the query with each chosen unit under the real embedder."""
    if not len(chosen) or not job.query.strip():
        return np.zeros(len(chosen), np.float32)
    vecs = embed([job.query, *(titled(job, seg.units[int(i)]) for i in chosen)])
    return (vecs[1:] @ vecs[0]).astype(np.float32)


def rerank_features(seg: packing.Segmented, chosen: np.ndarray, logits: np.ndarray, dense: np.ndarray,
                    static_cos: np.ndarray) -> np.ndarray:
    """One row per candidate: its cheap logit, its real cosine, and both as ranks among the candidates."""
    if not len(chosen):
        return np.zeros((0, len(RERANK_FEATURES)), np.float32)
    z = logits[chosen]
    docs = np.array([seg.units[int(i)].doc for i in chosen])
    # A passage's best sentence speaks for the passage: the single-hop answer sits
    # in one passage, and its other sentences inherit some of its relevance.
    best = {d: float(dense[docs == d].max()) for d in set(docs.tolist())}
    doc_best = np.array([best[d] for d in docs], np.float32)
    return np.stack([z, rank01(z), dense, rank01(dense), dense - dense.max(), doc_best, rank01(doc_best),
                     static_cos[chosen]], axis=1).astype(np.float32)
