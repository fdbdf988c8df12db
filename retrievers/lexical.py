"""BM25 over the chunks of a collection, rebuilt lazily after changes.

rank-bm25 supplies the corpus statistics (term counts, lengths, idf); scoring
walks an inverted index built from them, so a query touches only the chunks that
hold its terms (rank-bm25's own ``get_scores`` loops in Python over every chunk
for every term: about 0.3 s a query at 6k chunks here, seconds at 100k).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    import numpy as np

_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Bm25Index:
    """Scores chunk ids with BM25 Okapi. Not thread-safe: the collection's lock guards it."""

    def __init__(self) -> None:
        self._ids: "np.ndarray | None" = None
        self._idf: dict[str, float] = {}
        self._postings: dict[str, tuple["np.ndarray", "np.ndarray"]] = {}
        self._norm: "np.ndarray | None" = None
        self._k1 = 1.5

    def rebuild(self, items: Iterable[tuple[int, str]]) -> None:
        import numpy as np

        pairs = list(items)
        self._postings = {}
        if not pairs:  # rank-bm25 divides by the corpus size: an empty corpus has no model
            self._ids = None
            return
        model = _okapi()([tokenize(text) for _, text in pairs])
        self._ids = np.asarray([cid for cid, _ in pairs], dtype=np.int64)
        self._idf = model.idf
        self._k1 = model.k1
        lengths = np.asarray(model.doc_len, dtype=np.float64)
        # Per-chunk length normalisation, the denominator's constant part.
        self._norm = model.k1 * (1.0 - model.b + model.b * lengths / model.avgdl)
        rows: dict[str, list[int]] = {}
        counts: dict[str, list[int]] = {}
        for row, freqs in enumerate(model.doc_freqs):
            for term, tf in freqs.items():
                rows.setdefault(term, []).append(row)
                counts.setdefault(term, []).append(tf)
        self._postings = {t: (np.asarray(rows[t], dtype=np.int64), np.asarray(counts[t], dtype=np.float64))
                          for t in rows}

    def search(self, query: str, n: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """Up to ``n`` (chunk id, score) pairs of chunks holding a query term, best first."""
        import numpy as np

        if self._ids is None:
            return []
        scores = np.zeros(len(self._ids), dtype=np.float64)
        for term in tokenize(query):  # a repeated query term counts again, as in rank-bm25
            posting = self._postings.get(term)
            if posting is None:
                continue
            rows, tf = posting
            scores[rows] += self._idf[term] * tf * (self._k1 + 1.0) / (tf + self._norm[rows])
        if allowed is not None:
            scores[~np.isin(self._ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))] = 0.0
        # The idf is positive, so a positive score means "holds a query term".
        candidates = np.flatnonzero(scores > 0.0)
        if len(candidates) > n:
            candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
        candidates = candidates[np.lexsort((candidates, -scores[candidates]))]
        return [(int(self._ids[i]), float(scores[i])) for i in candidates]


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
