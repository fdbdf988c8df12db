"""A second look at the likeliest documents with a real transformer (all-MiniLM-L6-v2).

The cheap heads (static-MiniLM vectors, BM25, structure, multi-hop pairs) rank
every unit of a request in milliseconds, and they rank multi-hop paragraphs well;
what they cannot do is tell a retrieved passage that answers a single-hop question
from the passages a retriever returned beside it for sharing its words. A
transformer pass over every sentence would (the ``cosine`` baseline), but it costs
about a second on a CPU. So only the lead (title and first ``LEAD_WORDS`` words)
of the documents the cheap heads like best (``Reading``: 8, and up to 4 more that the
cheap heads do not rule out) is read by the transformer, one text at a time, a few hundred
tokens in all, and a small trained head (``rerank``) judges every
unit of those documents again from its cheap logit, its document's cheap
probability and the lead's real cosine, each also as a rank among the candidates.

Invariant: units of documents outside the candidates keep their cheap order after
every unit of a candidate document; the encode cost is bounded by ``documents + more``
leads of at most ``LEAD_WORDS`` words, whatever the request's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from compressors import packing
from compressors.base import CompressionJob
from compressors.features import rank01

# How many documents the transformer reads at least by default, and at most on request (its
# cost grows with them, about 3.5 ms a lead on one CPU thread).
DOCUMENTS = 8
MAX_DOCUMENTS = 64
# Up to MORE_DOCUMENTS further documents are read where the cheap heads still give them at
# least MORE_PROBABILITY: a retriever's 20 single-hop passages often leave the answer's
# passage in 9th to 12th place at a probability of 0.02 to 0.1, while in a multi-hop
# setting of 10 paragraphs the 9th has about 0.002 (medians on held-out folds of the
# training files). Chosen by cross-validation on the training files among 8 exactly,
# 10 and 12 exactly, and 8 plus up to 4 or 8 more at 0.01 or 0.015
# (bench/results/crossval_extractive_3files_rerank_*_single.json).
MORE_DOCUMENTS = 4
MORE_PROBABILITY = 0.015
# Words of a document's text read after its title: a passage's opening says what it is
# about (on NQ's training passages, the first 24 words of a passage ranked it about as
# well as its first 64 under MiniLM, at a third of the cost).
LEAD_WORDS = 32
RERANK_FEATURES = ("unit_logit", "unit_logit_rank", "unit_doc_gap", "doc_prob", "doc_prob_rank",
                   "doc_dense", "doc_dense_rank", "doc_dense_gap", "static_cos")


@dataclass(frozen=True)
class Reading:
    """Which documents' leads the transformer reads: the ``documents`` likeliest under the cheap
    heads, then up to ``more`` of the next ones whose cheap probability is at least ``probability``."""

    documents: int = DOCUMENTS
    more: int = 0
    probability: float = 1.0

    def choose(self, doc_prob: np.ndarray) -> np.ndarray:
        """The documents to read, best first (by cheap probability)."""
        order = np.argsort(-doc_prob, kind="stable")
        after = order[self.documents:self.documents + self.more]
        # ``after`` is in descending probability, so the ones above the bar are its prefix.
        return order[:self.documents + int((doc_prob[after] >= self.probability).sum())]

    def to_spec(self) -> dict:
        """Its entries in a heads JSON file (what the training script writes)."""
        return {"rerank_documents": self.documents, "rerank_more_documents": self.more,
                "rerank_more_probability": self.probability}

    @classmethod
    def from_spec(cls, spec: dict) -> "Reading":
        """From a heads JSON file; files written before ``more`` existed read exactly ``documents``."""
        return cls(int(spec.get("rerank_documents", DOCUMENTS)), int(spec.get("rerank_more_documents", 0)),
                   float(spec.get("rerank_more_probability", 1.0)))


# What the default heads are trained and served with.
READING = Reading(DOCUMENTS, MORE_DOCUMENTS, MORE_PROBABILITY)


def lead(job: CompressionJob, doc: int, words: int = LEAD_WORDS) -> str:
    """A document's title and the first ``words`` words of its text: what the transformer reads."""
    document = job.documents[doc]
    text = " ".join(document.text.split()[:words])
    title = document.title.strip()
    return f"{title}: {text}" if title else text


def lead_cosine(job: CompressionJob, docs: np.ndarray, embed: Callable[[list[str]], np.ndarray],
                words: int = LEAD_WORDS) -> np.ndarray:
    """Cosine of the query with each chosen document's lead under the real embedder."""
    if not len(docs) or not job.query.strip():
        return np.zeros(len(docs), np.float32)
    vecs = embed([job.query, *(lead(job, int(d), words) for d in docs)])
    return (vecs[1:] @ vecs[0]).astype(np.float32)


def candidate_units(seg: packing.Segmented, docs: np.ndarray) -> np.ndarray:
    """Every unit of the chosen documents, in unit order."""
    chosen = set(int(d) for d in docs)
    return np.array([i for i, u in enumerate(seg.units) if u.doc in chosen], dtype=np.int64)


def rerank_features(doc_of: np.ndarray, units: np.ndarray, logits: np.ndarray, doc_prob: np.ndarray,
                    docs: np.ndarray, dense: np.ndarray, static_cos: np.ndarray) -> np.ndarray:
    """One row per unit of a candidate document: its cheap logit (also as a rank among the
    candidates' units and as a gap to its document's best unit), its document's cheap
    probability and its lead's real cosine (each also as a rank among the candidates)."""
    if not len(units):
        return np.zeros((0, len(RERANK_FEATURES)), np.float32)
    z = logits[units]
    unit_doc = doc_of[units]
    slot = {int(d): i for i, d in enumerate(docs)}
    at = np.array([slot[int(d)] for d in unit_doc])
    best_in_doc = {int(d): float(z[unit_doc == d].max()) for d in set(unit_doc.tolist())}
    gap = z - np.array([best_in_doc[int(d)] for d in unit_doc], np.float32)
    prob = doc_prob[docs]
    return np.stack([z, rank01(z), gap, prob[at], rank01(prob)[at], dense[at], rank01(dense)[at],
                     (dense - dense.max())[at], static_cos[units]], axis=1).astype(np.float32)
