"""Word counts of a reference corpus: the information of a word without a language model.

Counts of the lower-cased words of Wikipedia paragraphs from the benchmarks' training
files only (``bench/build_word_stats.py`` writes ``compressors/data/word_counts.tsv.gz``).
Used by ``tokens-lite`` as its scorer and by ``tokens`` to find the words worth the LM's time.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

COUNTS_PATH = Path(__file__).resolve().parent / "data" / "word_counts.tsv.gz"


@dataclass(frozen=True)
class WordCounts:
    counts: Mapping[str, int]
    total: int

    def information(self, key: str) -> float:
        """``-log p(key)`` with add-one smoothing; unseen words get the largest value."""
        return math.log(self.total + len(self.counts)) - math.log(self.counts.get(key, 0) + 1)


@lru_cache(maxsize=1)
def load_counts(path: Path = COUNTS_PATH) -> WordCounts:
    counts: dict[str, int] = {}
    total = 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            word, _, n = line.rstrip("\n").rpartition("\t")
            if word == "#total":
                total = int(n)
            elif word:
                counts[word] = int(n)
    return WordCounts(counts, total or sum(counts.values()))
