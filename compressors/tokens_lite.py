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

from typing import Any, Mapping, Sequence

import numpy as np

from compressors.base import CompressionJob, Compressor, parse_options
from compressors.pruning import Prepared, PruneOptions, WordPruner, corpus_information
from compressors.registry import register
from middleware.models import ModelRegistry


class TokensLite(WordPruner):
    name = "tokens-lite"

    def information(self, job: CompressionJob, docs: Sequence[Prepared]) -> list[np.ndarray]:
        return corpus_information(docs)


@register("tokens-lite", "word pruning by corpus word statistics after extractive (no language model): "
                         "numbers, names, identifiers and structure kept, exact budget", unit="word")
def _factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
    return TokensLite(parse_options(PruneOptions, options, "tokens-lite"), models)
