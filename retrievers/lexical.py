"""BM25 over the chunks of a collection (rank-bm25), rebuilt lazily after changes."""

from __future__ import annotations

import re
from typing import Iterable, Sequence

_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Bm25Index:
    """Scores chunk ids with BM25 Okapi. Not thread-safe: the collection's lock guards it."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._model = None

    def rebuild(self, items: Iterable[tuple[int, str]]) -> None:
        pairs = list(items)
        self._ids = [cid for cid, _ in pairs]
        # rank-bm25 divides by the corpus size: an empty corpus has no model.
        self._model = _okapi()([tokenize(text) for _, text in pairs]) if pairs else None

    def search(self, query: str, n: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """Up to ``n`` (chunk id, score) pairs of chunks holding a query term, best first."""
        import numpy as np

        terms = tokenize(query)
        if self._model is None or not terms:
            return []
        scores = np.asarray(self._model.get_scores(terms), dtype=np.float64)
        if allowed is not None:
            mask = np.fromiter((cid in allowed for cid in self._ids), dtype=bool, count=len(self._ids))
            scores = np.where(mask, scores, -np.inf)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        # The idf below is positive, so a positive score means "holds a query term".
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0.0]


def _okapi():
    """BM25 Okapi with Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)).

    rank-bm25's own Okapi idf is zero or negative for a term in half the chunks or
    more (common in small collections), which would rank a matching chunk below one
    that matches nothing; Lucene's form is always positive.
    """
    import math

    from rank_bm25 import BM25Okapi

    class LuceneIdfOkapi(BM25Okapi):
        def _calc_idf(self, nd):
            self.idf = {word: math.log(1.0 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
                        for word, freq in nd.items()}

    return LuceneIdfOkapi


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
