"""Which documents a written sentence came from.

A summary sentence is attributed to the documents that share its content words,
each word weighted by how rare it is among the documents (IDF), and its checkable
facts (names, numbers, dates), which weigh double. Every document scoring at least
``share`` of the best is named; the best one is the sentence's home, under which
it is placed in the output so that the response keeps document identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from compressors import facts as F
from compressors.lexical import STOPWORDS


@dataclass(frozen=True)
class Attribution:
    """``documents``: indices of the source documents, best first (never empty)."""

    sentence: str
    documents: tuple[int, ...]

    @property
    def home(self) -> int:
        return self.documents[0]


def _terms(text: str) -> set[str]:
    norm = F.normalise(text)
    terms = {F.fold(w) for w, _, _ in F.words(norm)} - STOPWORDS
    terms |= {f.key[0] for f in F.numbers(norm, source=True)}
    return terms


def attribute(sentences: Sequence[str], documents: Sequence[str], share: float = 0.5) -> list[Attribution]:
    """Attribute each sentence to the ``documents`` (texts, titles included) it draws on.

    A sentence sharing nothing with any document (rare after the faithfulness
    guard) goes to the previous sentence's home, or the first document.
    """
    if not documents:
        raise ValueError("attribution needs at least one document")
    doc_terms = [_terms(d) for d in documents]
    n = len(documents)
    idf = {}
    for terms in doc_terms:
        for t in terms:
            idf[t] = idf.get(t, 0) + 1
    idf = {t: math.log(1 + n / df) for t, df in idf.items()}
    out: list[Attribution] = []
    previous = 0
    for sentence in sentences:
        terms = _terms(sentence)
        norm = F.normalise(sentence)
        strong = {w for f in F.names(norm) for w in f.key} | {f.key[0] for f in F.numbers(norm)}
        scores = [sum(idf.get(t, 0.0) * (2.0 if t in strong else 1.0) for t in terms & dt) for dt in doc_terms]
        best = max(scores)
        if best <= 0:
            out.append(Attribution(sentence, (previous,)))
            continue
        ranked = sorted((i for i in range(n) if scores[i] >= share * best), key=lambda i: (-scores[i], i))
        out.append(Attribution(sentence, tuple(ranked)))
        previous = ranked[0]
    return out
