"""``tokens-lite``: word pruning without a language model, for latency-critical callers.

A word's information is its self-information in a reference corpus,
``-log p(word)``, from word counts of Wikipedia paragraphs (the training files of
the benchmarks only; ``bench/build_word_stats.py``, ``compressors/data/
word_counts.tsv.gz``): frequent words ("the", "which", "also") go first, rare
ones stay. Words the table has never seen count as rare. Everything else (the
coarse step, force-keep rules, structure, keep markers, the exact ceiling) is
shared with ``tokens`` (``compressors/pruning.py``). In the spirit of TCRA-LLM's
semantic compression (Liu et al., 2023), without its embedding model.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from compressors import keep
from compressors.base import CompressionJob, Compressor, parse_options
from compressors.pruning import Prepared, PruneOptions, WordPruner
from compressors.registry import register
from middleware.models import ModelRegistry

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


class TokensLite(WordPruner):
    name = "tokens-lite"

    def __init__(self, options: PruneOptions, models: ModelRegistry) -> None:
        super().__init__(options, models)
        self.counts = load_counts()

    def information(self, job: CompressionJob, docs: Sequence[Prepared]) -> list[np.ndarray]:
        info = self.counts.information
        return [np.array([info(keep.word_key(p.words.word(i))) if p.allowed[i] else 0.0 for i in range(len(p.words))])
                for p in docs]


@register("tokens-lite", "word pruning by corpus word statistics after extractive (no language model): "
                         "numbers, names, identifiers and structure kept, exact budget", unit="word")
def _factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
    return TokensLite(parse_options(PruneOptions, options, "tokens-lite"), models)
