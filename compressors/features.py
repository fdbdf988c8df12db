"""Context-aware features: documents first, then each unit judged with its document.

Stage 1, per document: lexical (BM25 of the document), embedding (static-MiniLM
cosine), the title named in the question, the best unit's scores, and a bridge
signal (its title is mentioned by relevant other documents, relevance from the
cheap first scores). Stage 2 adds the bridge again, weighted by the first doc
head's probabilities (multi-hop: the second hop is the entity the first hop names).
Pairs of the likeliest documents (multi-hop questions need two documents that
answer together): the stronger one's probability alone, whether one names the
other's title (normalised, or as written), the question's titles, how much of the
question the two cover together beyond either alone, whether the disambiguating
part of a title ("(2015 film)") is in the question, and title overlap; a pair head
turns these into a posterior over pairs, and each document's share of it goes on.
Per unit: its own lexical and embedding scores and ranks, position, length,
neighbours, answer type, whether it names the title of a likely other document or
pair partner, what it covers beyond that partner, and its document's probability
and pair shares.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from compressors import lexical, packing
from compressors.base import CompressionJob

DOC_FEATURES_1 = ("bm25_doc", "cos_doc", "cos_doc_rank", "bm25_doc_rank", "title_in_query", "query_coverage",
                  "best_unit_bm25", "best_unit_cos", "first_unit_cos", "bridge_cheap", "entity_coverage")
DOC_FEATURES_2 = DOC_FEATURES_1 + ("p_doc1", "p_doc1_rank", "bridge_p1", "mentions_top_p1")
PAIR_FEATURES = ("p_hi", "link_hi_lo", "link_lo_hi", "link_any", "titles_in_query", "title_in_query_min",
                 "union_coverage", "coverage_gain", "link_hi_lo_x_title", "exact_link_x_p", "residual_coverage",
                 "answer_type_lo", "answer_type_hi", "cos_hi", "cased_link", "cased_link_x_title", "qualifier_hi",
                 "qualifier_lo", "qualifier_min", "qualifier_lo_in_hi", "title_overlap")
# How many documents (the likeliest alone) enter the pair head: 120 pairs at most.
PAIR_CANDIDATES = 16
UNIT_FEATURES = ("bm25_unit", "bm25_unit_rank", "cos_unit", "cos_unit_rank", "query_overlap", "p_doc",
                 "p_doc_rank", "pair_share", "pair_share_rank", "inv_position", "is_first", "log_tokens", "has_number",
                 "neighbour_bm25", "mentions_relevant_title", "unit_rank_in_doc", "answer_type_match",
                 "entity_in_unit", "mentions_pair_title", "residual_coverage", "in_top_pair", "soft_share")
_PAREN = re.compile(r"\s*\(([^)]*)\)\s*$")
_NUMBER = re.compile(r"\d")
# Named things in a question: quoted strings and runs of capitalised words.
_ENTITY = re.compile(r"\"([^\"]+)\"|((?:[A-Z][\w'.-]*\s?)+)")
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b|\b(January|February|March|April|May|June|July|August|September|"
                   r"October|November|December)\b")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")
# What kind of answer a question asks for, and how a unit shows it has one.
_ANSWER_TYPES = (
    (re.compile(r"\b(when|what year|which year|what date|how old)\b", re.I), _YEAR),
    (re.compile(r"\b(how many|how much|what number|how long|how far|how tall)\b", re.I), _NUMBER),
    (re.compile(r"\b(who|whom|whose)\b", re.I), _NAME),
)


def question_entities(query: str) -> list[str]:
    found = []
    for quoted, caps in _ENTITY.findall(query):
        text = (quoted or caps).strip()
        key = " ".join(lexical.tokenize(text))
        if key and key not in found:
            found.append(key)
    return found


def answer_type_pattern(query: str):
    for question, unit_pattern in _ANSWER_TYPES:
        if question.search(query):
            return unit_pattern
    return None


def _norm(x: np.ndarray) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return (x / top if top > 0 else np.zeros_like(x)).astype(np.float32)


def rank01(x: np.ndarray) -> np.ndarray:
    """1 for the best, falling to 0 for the worst."""
    n = len(x)
    if n <= 1:
        return np.ones(n, dtype=np.float32)
    order = np.argsort(-x, kind="stable")
    ranks = np.empty(n, dtype=np.float32)
    ranks[order] = np.arange(n, dtype=np.float32)
    return 1.0 - ranks / (n - 1)


def _padded(text: str) -> str:
    return " " + " ".join(lexical.tokenize(text)) + " "


@dataclass
class Context:
    """Everything computed once per request and shared by the stages."""

    job: CompressionJob
    seg: packing.Segmented
    doc_of: np.ndarray
    bm_u: np.ndarray
    cos_u: np.ndarray
    bm_d: np.ndarray
    cos_d: np.ndarray
    title_keys: list[str]
    doc_norm: list[str]
    unit_norm: list[str]
    q_tokens: set[str]
    entities: list[str]
    doc_tokens: list[set[str]]      # title and text
    bare_titles: list[str]          # as written, without a trailing "(qualifier)"
    qualifiers: list[set[str]]      # the tokens of that qualifier
    unit_names: list[list[int]] = field(default_factory=list)  # documents each unit names by title
    doc_names: list[list[int]] = field(default_factory=list)   # documents each document names by title

    def __post_init__(self) -> None:
        # Titles indexed by their first word, so that finding the titles a text names
        # costs about its length, not its length times the number of documents.
        self._titles: dict[str, list[tuple[int, str]]] = {}
        for d, key in enumerate(self.title_keys):
            if key.split():
                self._titles.setdefault(key.split()[0], []).append((d, key))
        self.unit_names = [self.named(t) for t in self.unit_norm]
        self.doc_names = [self.named(t) for t in self.doc_norm]

    def named(self, text: str) -> list[int]:
        """The documents whose title occurs in ``text`` (normalised and padded, as doc_norm)."""
        return [d for word in set(text.split()) & self._titles.keys()
                for d, key in self._titles[word] if key in text]

    def mention(self, weights: np.ndarray) -> np.ndarray:
        """For each document: the max weight of another document naming its title."""
        out = np.zeros(len(self.title_keys), dtype=np.float32)
        for k, names in enumerate(self.doc_names):
            for d in names:
                if d != k:
                    out[d] = max(out[d], weights[k])
        return out


def prepare(job: CompressionJob, seg: packing.Segmented, embed: Callable[[list[str]], np.ndarray]) -> Context:
    docs = job.documents
    n, nd = len(seg.units), len(docs)
    titled = [f"{docs[u.doc].title.strip()}: {u.text}" if docs[u.doc].title.strip() else u.text for u in seg.units]
    doc_texts = [f"{d.title} {d.text}" for d in docs]
    titles = [html.unescape(d.title).strip() for d in docs]
    if job.query.strip():
        vecs = embed([job.query, *titled, *doc_texts])
        cos_u = np.clip(vecs[1:1 + n] @ vecs[0], 0, 1)
        cos_d = np.clip(vecs[1 + n:] @ vecs[0], 0, 1)
    else:
        cos_u, cos_d = np.zeros(n, np.float32), np.zeros(nd, np.float32)
    return Context(
        job=job, seg=seg, doc_of=np.array([u.doc for u in seg.units], dtype=np.int64),
        bm_u=lexical.bm25(job.query, titled), cos_u=cos_u.astype(np.float32),
        bm_d=lexical.bm25(job.query, doc_texts), cos_d=cos_d.astype(np.float32),
        title_keys=[_padded(b) if lexical.tokenize(b) else "" for b in (_PAREN.sub("", t) for t in titles)],
        doc_norm=[_padded(d.text) for d in docs], unit_norm=[_padded(u.text) for u in seg.units],
        q_tokens=set(lexical.tokenize(job.query)), entities=question_entities(job.query),
        doc_tokens=[set(lexical.tokenize(t)) for t in doc_texts],
        bare_titles=[_PAREN.sub("", t).strip() for t in titles],
        qualifiers=[set(lexical.tokenize(m.group(1))) if (m := _PAREN.search(t)) else set() for t in titles])


def doc_features_1(ctx: Context) -> np.ndarray:
    nd = len(ctx.job.documents)
    q_pad = _padded(ctx.job.query)
    title_in_query = np.array([1.0 if k and k in q_pad else
                               (0.5 * len(set(k.split()) & ctx.q_tokens) / max(1, len(k.split())) if k else 0.0)
                               for k in ctx.title_keys], dtype=np.float32)
    coverage = np.array([len(ctx.q_tokens & set(t.split())) / max(1, len(ctx.q_tokens)) for t in ctx.doc_norm],
                        dtype=np.float32)
    bm_un, best_bm, best_cos, first_cos = _norm(ctx.bm_u), np.zeros(nd, np.float32), np.zeros(nd, np.float32), np.zeros(nd, np.float32)
    for i, u in enumerate(ctx.seg.units):
        best_bm[u.doc] = max(best_bm[u.doc], bm_un[i])
        best_cos[u.doc] = max(best_cos[u.doc], ctx.cos_u[i])
        if u.index == 0:
            first_cos[u.doc] = ctx.cos_u[i]
    cheap = 0.5 * _norm(ctx.bm_d) + 0.5 * _norm(ctx.cos_d) + title_in_query
    bridge = ctx.mention(_norm(cheap))
    titled_docs = [ctx.title_keys[d] + ctx.doc_norm[d] for d in range(nd)]
    entity_cov = np.array([sum(f" {e} " in t for e in ctx.entities) / max(1, len(ctx.entities)) for t in titled_docs],
                          dtype=np.float32)
    return np.stack([_norm(ctx.bm_d), ctx.cos_d, rank01(ctx.cos_d), rank01(ctx.bm_d), title_in_query, coverage,
                     best_bm, best_cos, first_cos, bridge, entity_cov], axis=1).astype(np.float32)


def doc_features_2(ctx: Context, d1: np.ndarray, p1: np.ndarray) -> np.ndarray:
    nd = len(ctx.job.documents)
    bridge = ctx.mention(p1)
    top = int(np.argmax(p1)) if nd else 0
    # Does this document name the title of the most likely document (the reverse hop)?
    mentions_top = np.array([p1[top] if d != top and top in ctx.doc_names[d] else 0.0 for d in range(nd)],
                            dtype=np.float32)
    return np.concatenate([d1, np.stack([p1, rank01(p1), bridge, mentions_top], axis=1)], axis=1).astype(np.float32)


def pair_features(ctx: Context, p: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Every unordered pair of documents, "hi" being the one ``p`` (documents alone) likes more.

    The weaker document's own lexical scores are deliberately left out: a second
    hop is often far from the question's words (that is why it is a second hop),
    and where distractors were chosen for their likeness to the question, a pair
    head that trusts them picks two look-alikes. On the training data's questions
    whose second gold document ranks below two others alone, leaving them out
    raised pair accuracy from 0.50 to 0.69 (5-fold, same overall accuracy).
    """
    docs = ctx.job.documents
    # Only the documents most likely alone are paired: pairs grow with the square.
    candidates = sorted(np.argsort(-p, kind="stable")[:PAIR_CANDIDATES].tolist())
    pairs = list(itertools.combinations(candidates, 2))
    if not pairs:
        return pairs, np.zeros((0, len(PAIR_FEATURES)), np.float32)
    q, nq = ctx.q_tokens, max(1, len(ctx.q_tokens))
    title_tokens = [set(k.split()) for k in ctx.title_keys]
    q_pad = _padded(ctx.job.query)
    in_query = [1.0 if k and k in q_pad else (0.5 * len(t & q) / len(t) if t else 0.0)
                for k, t in zip(ctx.title_keys, title_tokens)]
    cover = [len(q & t) / nq for t in ctx.doc_tokens]
    pattern = answer_type_pattern(ctx.job.query)
    typed = [1.0 if pattern is not None and pattern.search(d.text) else 0.0 for d in docs]
    qualifier = [len(t & q) / len(t) if t else 0.5 for t in ctx.qualifiers]
    heads = [b.split(",")[0].strip() for b in ctx.bare_titles]

    def link(a: int, b: int) -> float:  # does a name b?
        if b in ctx.doc_names[a]:
            return 1.0
        return 0.5 * len(title_tokens[b] & ctx.doc_tokens[a]) / len(title_tokens[b]) if title_tokens[b] else 0.0

    def cased(a: int, b: int) -> float:  # names it as a proper name, as written
        return 1.0 if len(heads[b]) > 2 and heads[b] in docs[a].text else 0.0

    rows = []
    for a, b in pairs:
        hi, lo = (a, b) if p[a] >= p[b] else (b, a)
        union = len(q & (ctx.doc_tokens[a] | ctx.doc_tokens[b])) / nq
        forward, backward = link(hi, lo), link(lo, hi)
        cased_forward = cased(hi, lo)
        any_link, any_cased = max(forward, backward), max(cased_forward, cased(lo, hi))
        rows.append([
            p[hi], forward, backward, any_link,
            in_query[a] + in_query[b], min(in_query[a], in_query[b]), union, union - max(cover[a], cover[b]),
            forward * in_query[hi], float(any_link == 1.0) * p[hi],
            len(q & ctx.doc_tokens[lo] - ctx.doc_tokens[hi]) / nq, typed[lo], typed[hi],
            ctx.cos_d[hi], any_cased, cased_forward * in_query[hi],
            qualifier[hi], qualifier[lo], min(qualifier[a], qualifier[b]),
            len(ctx.qualifiers[lo] & ctx.doc_tokens[hi]) / len(ctx.qualifiers[lo]) if ctx.qualifiers[lo] else 0.5,
            # Two pages about one name ("X (singer)", "X (actress)") rarely answer together.
            len(title_tokens[a] & title_tokens[b]) / max(1, len(title_tokens[a] | title_tokens[b])),
        ])
    return pairs, np.array(rows, dtype=np.float32)


def pair_marginals(nd: int, pairs: list[tuple[int, int]], logits: np.ndarray) -> np.ndarray:
    """Each document's share of the posterior over pairs (softmax of the pair logits)."""
    out = np.zeros(nd, dtype=np.float32)
    if not pairs:
        out[:] = 1.0
        return out
    w = np.exp(logits - logits.max())
    w /= w.sum()
    for (a, b), p in zip(pairs, w):
        out[a] += p
        out[b] += p
    return np.minimum(out, 1.0)


def unit_features(ctx: Context, p_doc: np.ndarray, share: np.ndarray, soft: np.ndarray) -> np.ndarray:
    seg, n = ctx.seg, len(ctx.seg.units)
    if n == 0:
        return np.zeros((0, len(UNIT_FEATURES)), np.float32)
    bm_un = _norm(ctx.bm_u)
    overlap = np.array([len(ctx.q_tokens & set(t.split())) / max(1, len(ctx.q_tokens)) for t in ctx.unit_norm],
                       dtype=np.float32)
    mentions = np.array([max((p_doc[o] for o in ctx.unit_names[i] if o != u.doc), default=0.0)
                         for i, u in enumerate(seg.units)], dtype=np.float32)
    neighbour = np.zeros(n, dtype=np.float32)
    rank_in_doc = np.zeros(n, dtype=np.float32)
    for d in set(ctx.doc_of.tolist()):
        idx = np.flatnonzero(ctx.doc_of == d)
        rank_in_doc[idx] = rank01(bm_un[idx] + ctx.cos_u[idx])
    for i in range(n):
        for j in (i - 1, i + 1):
            if 0 <= j < n and ctx.doc_of[j] == ctx.doc_of[i]:
                neighbour[i] = max(neighbour[i], bm_un[j])
    tokens = np.array([ctx.job.tokenizer.count(u.text) for u in seg.units], dtype=np.float32)
    pattern = answer_type_pattern(ctx.job.query)
    type_match = np.array([1.0 if pattern is not None and pattern.search(u.text) else 0.0 for u in seg.units],
                          dtype=np.float32)
    entity_in_unit = np.array([sum(f" {e} " in t for e in ctx.entities) / max(1, len(ctx.entities))
                               for t in ctx.unit_norm], dtype=np.float32)
    # The sentence that names the other document of a likely pair is the bridge itself.
    mentions_pair = np.array([max((share[o] for o in ctx.unit_names[i] if o != u.doc), default=0.0)
                              for i, u in enumerate(seg.units)], dtype=np.float32)
    # What a sentence adds to the question beyond the best other document.
    top = np.argsort(-share, kind="stable")[:2]
    partner = [int(top[1]) if len(top) > 1 and top[0] == d else int(top[0]) for d in range(len(share))]
    residual = np.array([len((ctx.q_tokens - ctx.doc_tokens[partner[u.doc]]) & set(t.split()))
                         / max(1, len(ctx.q_tokens)) if partner[u.doc] != u.doc else 0.0
                         for u, t in zip(seg.units, ctx.unit_norm)], dtype=np.float32)
    in_top = np.isin(ctx.doc_of, top).astype(np.float32)
    return np.stack([
        bm_un, rank01(ctx.bm_u), ctx.cos_u, rank01(ctx.cos_u), overlap,
        p_doc[ctx.doc_of], rank01(p_doc)[ctx.doc_of], share[ctx.doc_of], rank01(share)[ctx.doc_of],
        np.array([1.0 / (1 + u.index) for u in seg.units], dtype=np.float32),
        np.array([1.0 if u.index == 0 else 0.0 for u in seg.units], dtype=np.float32),
        np.log1p(tokens) / 5.0,
        np.array([1.0 if _NUMBER.search(u.text) else 0.0 for u in seg.units], dtype=np.float32),
        neighbour, mentions, rank_in_doc, type_match, entity_in_unit, mentions_pair, residual, in_top, soft[ctx.doc_of],
    ], axis=1).astype(np.float32)
