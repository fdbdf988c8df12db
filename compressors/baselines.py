"""Reference methods the benchmark compares against (also usable on their own).

- ``random``: whole sentences in a random order (seeded by the query), packed to the budget.
- ``first``: leading sentences, round-robin over documents.
- ``bm25``: whole sentences by BM25 of "title sentence" against the query.
- ``cosine``: whole sentences by embedding cosine of "title: sentence" against the query.
- ``embeddings-filter``: whole documents by embedding similarity, as many as fit
  (what LangChain's EmbeddingsFilter does, with the budget instead of a threshold).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from compressors import context, lexical, packing
from compressors.base import CompressionJob, Compressor, StageOutput, parse_options
from compressors.registry import register
from middleware.embedders import Embedder
from middleware.models import ModelRegistry


@dataclass(frozen=True)
class NoOptions:
    pass


def titled(job: CompressionJob, unit: packing.Unit) -> str:
    title = job.documents[unit.doc].title.strip()
    return f"{title}: {unit.text}" if title else unit.text


class _SentenceRanker(Compressor):
    """Packs whole sentences in the order given by :meth:`priority`."""

    def priority(self, job: CompressionJob, seg: packing.Segmented) -> list[int]:
        raise NotImplementedError

    def compress(self, job: CompressionJob) -> StageOutput:
        seg = packing.segment(job.documents)
        docs, details = packing.pack(job, seg, self.priority(job, seg) if seg.units else [])
        return StageOutput(docs, details)


class RandomSentences(_SentenceRanker):
    def priority(self, job, seg):
        seed = int.from_bytes(hashlib.blake2b(job.query.encode(), digest_size=8).digest(), "little")
        return [int(i) for i in np.random.default_rng(seed).permutation(len(seg.units))]


class FirstSentences(_SentenceRanker):
    def priority(self, job, seg):
        return sorted(range(len(seg.units)), key=lambda i: (seg.units[i].index, seg.units[i].doc))


class BM25Sentences(_SentenceRanker):
    def priority(self, job, seg):
        scores = lexical.bm25(job.query, [titled(job, u) for u in seg.units])
        return [int(i) for i in np.argsort(-scores, kind="stable")]


class CosineSentences(_SentenceRanker):
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def priority(self, job, seg):
        vecs = self.embedder.embed([job.query, *(titled(job, u) for u in seg.units)])
        return [int(i) for i in np.argsort(-(vecs[1:] @ vecs[0]), kind="stable")]


class EmbeddingsFilter(Compressor):
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def compress(self, job: CompressionJob) -> StageOutput:
        docs = context.visible(job.documents)
        if not docs:
            return StageOutput(())
        vecs = self.embedder.embed([job.query, *(context.render(d, job.context_format) for d in docs)])
        kept: list[int] = []
        for i in np.argsort(-(vecs[1:] @ vecs[0]), kind="stable"):
            trial = sorted(kept + [int(i)])
            if context.count([docs[k] for k in trial], job.context_format, job.tokenizer) <= job.budget_tokens:
                kept = trial
        return StageOutput(tuple(docs[k] for k in kept), {"documents_kept": len(kept)})


def _simple(name: str, summary: str, build):
    @register(name, summary)
    def factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
        parse_options(NoOptions, options, name)
        return build(models)

    return factory


_simple("random", "baseline: random whole sentences", lambda m: RandomSentences())
_simple("first", "baseline: leading sentences of each document", lambda m: FirstSentences())
_simple("bm25", "baseline: whole sentences by BM25", lambda m: BM25Sentences())
_simple("cosine", "baseline: whole sentences by MiniLM cosine", lambda m: CosineSentences(m.embedder()))
_simple("embeddings-filter", "baseline: whole documents by embedding similarity (LangChain EmbeddingsFilter style)",
        lambda m: EmbeddingsFilter(m.embedder()))
