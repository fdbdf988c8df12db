"""Lexical relevance: BM25 of each unit against the query, within one request."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Common English function words carry no evidence of relevance.
STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being "
    "as that this these those it its which who whom whose what when where why how did do "
    "does has have had not no than then there their they them he she his her him i you we "
    "our your my me us into over under about after before between both either neither".split()
)


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


def bm25(query: str, texts: Sequence[str]) -> np.ndarray:
    """BM25 (Okapi) scores of ``texts`` for ``query``, IDF from ``texts`` themselves."""
    from rank_bm25 import BM25Okapi

    q = tokenize(query)
    corpus = [tokenize(t) for t in texts]
    if not q or not any(corpus):
        return np.zeros(len(texts), dtype=np.float32)
    # rank_bm25 divides by the mean length; an all-empty corpus was handled above.
    model = BM25Okapi([c or ["\x00"] for c in corpus])
    scores = np.asarray(model.get_scores(q), dtype=np.float32)
    return np.maximum(scores, 0.0)


def normalise(scores: np.ndarray) -> np.ndarray:
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)
