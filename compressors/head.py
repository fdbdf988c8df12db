"""The trained scoring heads of the extractive method (weights in compressors/data/).

Four heads applied in turn: documents (stage 1), documents again with multi-hop
bridges weighted by stage 1 (stage 2), pairs of documents (a softmax over the
pairs gives each document its share of the best pairs), then units with their
document's probability and pair shares. Each is a logistic regression or small
gradient-boosted trees (compressors/trees.py), whichever validated better when
trained (``kind`` in the JSON). Trained by ``bench/train_extractive_head.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from compressors import features, packing, rerank
from compressors.base import CompressionJob
from compressors.trees import Forest, expect_features

HEAD_PATH = Path(__file__).resolve().parent / "data" / "extractive_head_rerank.json"
FAST_PATH = HEAD_PATH.with_name("extractive_head.json")
# The heads files a request may name (the extractive method's ``heads`` option).
NAMED = {
    # Cheap heads and the lead rerank head, trained on HotpotQA, NQ and HotpotQA's rebuilt
    # distractor setting: multi-hop paragraphs and single-hop retrieved passages alike (MODEL_CARD.md).
    "default": HEAD_PATH,
    # The same file under the name it had while it was opt-in.
    "rerank": HEAD_PATH,
    # Cheap heads trained on HotpotQA alone, no transformer pass: a few milliseconds faster,
    # as good on multi-hop paragraphs, far worse on single-hop retrieved passages.
    "fast": FAST_PATH,
}


@dataclass(frozen=True)
class Logistic:
    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        return (((x - self.mean) / self.scale) @ self.coef + self.intercept).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-self.logit(x)))).astype(np.float32)

    def to_json(self) -> dict:
        return {"kind": "logistic", "features": list(self.names), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, spec: dict, expected: tuple[str, ...]) -> "Logistic":
        expect_features(spec, expected)
        return cls(expected, np.array(spec["mean"], np.float32), np.array(spec["scale"], np.float32),
                   np.array(spec["coef"], np.float32), float(spec["intercept"]))


@dataclass(frozen=True)
class Scores:
    unit: np.ndarray   # probability that each unit is evidence
    doc: np.ndarray    # probability that each document holds evidence (alone, or in the best pairs)
    order: np.ndarray  # units by priority: the reranked candidates first, then the rest by probability
    # What the eligibility thresholds read: the larger of the cheap and the reranked probability,
    # so that a rerank reorders what the cheap heads would keep but never drops it.
    floor: np.ndarray
    doc_floor: np.ndarray
    reranked: int = 0  # how many documents' leads the transformer read

    def eligible(self, seg: packing.Segmented, min_probability: float, min_document_probability: float) -> list[int]:
        """Units in priority order whose floor and whose document's floor clear the thresholds."""
        return [int(i) for i in self.order if self.floor[i] >= min_probability
                and self.doc_floor[seg.units[i].doc] >= min_document_probability]


class DocumentScores(NamedTuple):
    alone: np.ndarray       # probability that each document holds evidence, judged alone
    share: np.ndarray       # its share of the posterior over pairs of documents
    soft_share: np.ndarray  # the same at a higher temperature: a hedge for the unit head


# Inside Heads, ``rerank`` names the head, not the module.
_LEAD_WORDS, _Reading = rerank.LEAD_WORDS, rerank.Reading

# The pair posterior's second temperature; training and serving must agree.
SOFT_TEMPERATURE = 3.0


@dataclass(frozen=True)
class Heads:
    doc1: Logistic | Forest
    doc2: Logistic | Forest
    pair: Logistic | Forest
    unit: Logistic | Forest
    rerank: Logistic | Forest | None = None  # absent in heads trained without a transformer pass
    # Which documents' leads the transformer reads, and how many words of each, as the
    # rerank head was trained (a request may read fewer or more documents).
    reading: _Reading = _Reading()
    lead_words: int = _LEAD_WORDS

    def documents(self, ctx: features.Context) -> DocumentScores:
        d1 = features.doc_features_1(ctx)
        alone = self.doc2(features.doc_features_2(ctx, d1, self.doc1(d1)))
        pairs, x = features.pair_features(ctx, alone)
        logits = self.pair.logit(x)
        return DocumentScores(alone, features.pair_marginals(len(alone), pairs, logits),
                              features.pair_marginals(len(alone), pairs, logits / SOFT_TEMPERATURE))

    def cheap(self, ctx: features.Context) -> tuple[np.ndarray, np.ndarray]:
        """Heads 1-4 alone: every unit's logit and every document's probability (alone, or in
        the best pairs): what the rerank head reads, in training as in serving."""
        docs = self.documents(ctx)
        logits = self.unit.logit(features.unit_features(ctx, docs.alone, docs.share, docs.soft_share))
        return logits, np.maximum(docs.alone, docs.share)

    def score(self, job: CompressionJob, seg: packing.Segmented, embed: Callable,
              dense: Callable | None = None, reading: _Reading | None = None) -> Scores:
        """Every unit's probability; with ``dense`` (a real sentence embedder), a rerank head and a
        ``reading``, the units of the documents it chooses are judged again from their leads'
        real cosines (compressors/rerank.py)."""
        ctx = features.prepare(job, seg, embed)
        logits, doc_prob = self.cheap(ctx)
        prob = _sigmoid(logits)
        order = np.argsort(-logits, kind="stable")
        if self.rerank is None or dense is None or reading is None or reading.documents <= 0:
            return Scores(prob, doc_prob, order, prob, doc_prob)
        chosen = reading.choose(doc_prob)
        units = rerank.candidate_units(seg, chosen)
        cheap, cheap_doc = prob.copy(), doc_prob.copy()
        cos = rerank.lead_cosine(job, chosen, dense, self.lead_words)
        prob[units] = self.rerank(rerank.rerank_features(ctx.doc_of, units, logits, doc_prob, chosen, cos, ctx.cos_u))
        # A candidate document is as likely as its likeliest unit now says.
        for d in chosen:
            doc_prob[d] = float(prob[ctx.doc_of == d].max()) if (ctx.doc_of == d).any() else doc_prob[d]
        rest = order[~np.isin(order, units)]  # in cheap order
        order = np.concatenate([units[np.argsort(-prob[units], kind="stable")], rest])
        return Scores(prob, doc_prob, order, np.maximum(prob, cheap), np.maximum(doc_prob, cheap_doc), len(chosen))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


@lru_cache(maxsize=1)
def load(path: Path = HEAD_PATH) -> Heads:
    return from_spec(json.loads(path.read_text(encoding="utf-8")))


def from_spec(spec: dict) -> Heads:
    """Heads from their JSON description (what the training script writes)."""
    heads = {name: _LOADERS[spec[name].get("kind", "logistic")](spec[name], names)
             for name, names in (("doc1", features.DOC_FEATURES_1), ("doc2", features.DOC_FEATURES_2),
                                 ("pair", features.PAIR_FEATURES), ("unit", features.UNIT_FEATURES),
                                 ("rerank", rerank.RERANK_FEATURES)) if name in spec}
    return Heads(**heads, reading=rerank.Reading.from_spec(spec),
                 lead_words=int(spec.get("rerank_lead_words", rerank.LEAD_WORDS)))


_LOADERS = {"logistic": Logistic.from_json, "forest": Forest.from_json}
