"""Coarse-to-fine word pruning, shared by ``tokens`` (LM-scored) and ``tokens-lite``.

1. Keep markers are removed (``compressors/keep.py``); the spans they marked are
   inviolable.
2. **Coarse**: a sentence method (``extractive`` by default) keeps documents and
   sentences within ``coarse_ratio`` times the budget, so the word scorer only
   sees what survived. Its output is aligned back onto the source text, so every
   later step works on verbatim source words and their original whitespace.
3. **Fine**: each surviving word gets a priority from its information (the
   subclass's :meth:`WordPruner.information`: LM surprisal, or corpus rarity) per
   target-model token, and the relevance of its sentence (the extractive head's
   probability, judged against the question); force-kept words rank with the
   best word of their sentence, document structure with the best word of its
   document. ``wordfit.fit`` keeps the best words under the exact ceiling.

The budget split is reported in ``details["stages"]``: what each step was given
and what it kept, in target-model tokens.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from compressors import context, head, keep, lexical, packing, registry, units, wordfit, words as wordsmod
from compressors.wordstats import load_counts
from compressors.base import CompressionJob, Compressor, StageOutput
from middleware.errors import InternalError, InvalidArgument
from middleware.models import ModelRegistry
from middleware.types import Document


@dataclass(frozen=True)
class PruneOptions:
    # A registered method run first at coarse_ratio x the budget ("none": score every word).
    coarse: str = "extractive"
    coarse_ratio: float = 2.0
    # Weight of the sentence's relevance (log-probability from the extractive head) in a word's priority
    # (chosen on the training files: bench/results/tokens_tune_*.json; 2-8 were within a question of each other).
    relevance_weight: float = 4.0
    # Bonus for words of the question (the reader sees the question anyway: 0 by default).
    question_weight: float = 0.0
    # Regular expressions and literal terms (case-insensitive) whose words are force-kept.
    keep_patterns: tuple[str, ...] = ()
    keep_terms: tuple[str, ...] = ()

    def check(self, method: str) -> None:
        if not 1.0 <= self.coarse_ratio <= 100.0:
            raise InvalidArgument(f"method {method!r}: coarse_ratio must be in [1, 100], got {self.coarse_ratio}")
        if self.coarse == method:
            raise InvalidArgument(f"method {method!r}: coarse cannot be the method itself")
        if not 0.0 <= self.relevance_weight <= 100.0 or not -100.0 <= self.question_weight <= 100.0:
            raise InvalidArgument(f"method {method!r}: relevance_weight must be in [0, 100] and "
                                  f"question_weight in [-100, 100]")


@dataclass(frozen=True)
class Prepared:
    """A document ready for the fine step: its words, which survived, which are inviolable."""

    doc: Document
    words: wordsmod.Words
    allowed: np.ndarray
    inviolable: np.ndarray


class WordPruner(Compressor):
    """Coarse stage, then words by priority under the exact ceiling (see the module docstring)."""

    name = "tokens"

    def __init__(self, options: PruneOptions, models: ModelRegistry) -> None:
        options.check(self.name)
        self.options = options
        self.models = models
        self.pattern = keep.compile_patterns(options.keep_patterns, options.keep_terms, self.name)
        self.coarse = None if options.coarse == "none" else registry.create(options.coarse, {}, models)
        self.heads = head.load(head.FAST_PATH)

    @abstractmethod
    def information(self, job: CompressionJob, docs: Sequence[Prepared]) -> list[np.ndarray]:
        """Per document, each word's information in nats (higher: keep); only allowed words matter."""

    def compress(self, job: CompressionJob) -> StageOutput:
        fmt, tok = job.context_format, job.tokenizer
        marks = [keep.unmark(d.text, f"document {d.id!r}") for d in job.documents]
        clean = tuple(d.with_text(m.text) for d, m in zip(job.documents, marks))
        stages: list[dict[str, Any]] = []
        started = time.perf_counter()
        kept = {d.id: d.text for d in clean}
        total = context.count(clean, fmt, tok)
        coarse_budget = max(job.budget_tokens, int(job.budget_tokens * self.options.coarse_ratio))
        # The coarse step runs whenever anything must go: even under coarse_budget it drops
        # what is hopeless (extractive's budget is a ceiling, not a quota).
        if self.coarse is not None and total > job.budget_tokens:
            out = self.coarse.compress(CompressionJob(job.query, clean, coarse_budget, tok, fmt))
            kept = {d.id: d.text for d in out.documents}
            stages.append(_stage(self.options.coarse, coarse_budget, total, context.count(out.documents, fmt, tok),
                                 started))
        prepared = [self._prepare(d, m, kept.get(d.id)) for d, m in zip(clean, marks)]
        prepared = [p for p in prepared if p.allowed.any()]
        fine_started = time.perf_counter()
        whole = tuple(d for d in (p.doc if p.allowed.all() else p.doc.with_text(wordsmod.join(p.words, p.allowed))
                                  for p in prepared) if d.text.strip())
        fine_in = context.count(whole, fmt, tok)
        if fine_in <= job.budget_tokens:
            docs, details = whole, {"words_kept": int(sum(int(p.allowed.sum()) for p in prepared))}
        else:
            relevance = self._relevance(job, clean)
            info_z = self.info_z(job, prepared, self.information(job, prepared))
            keyed = self.refine(job, prepared, relevance, info_z, self.keyed(job, prepared, relevance, info_z))
            docs, details = wordfit.fit(job, keyed)
        stages.append(_stage(self.name, job.budget_tokens, fine_in, context.count(docs, fmt, tok), fine_started))
        details.update(stages=stages, coarse_budget=coarse_budget if self.coarse is not None else None,
                       protected_spans=sum(len(m.protected) for m in marks))
        return StageOutput(docs, details)

    def _prepare(self, doc: Document, marks: keep.Unmarked, kept_text: str | None) -> Prepared:
        words = wordsmod.structure(doc.text)
        inviolable = keep.covered(words, marks.protected)
        if kept_text is None:
            allowed = np.zeros(len(words), dtype=bool)
        elif kept_text == doc.text:
            allowed = np.ones(len(words), dtype=bool)
        else:
            allowed = keep.covered(words, aligned(doc.text, kept_text))
            # Atoms (code blocks, headings, a JSON skeleton) survive whole or not at all.
            for a in np.unique(words.atom[allowed & (words.atom >= 0)]):
                allowed |= words.atom == a
            if words.is_json and allowed.any():
                allowed[:] = True  # the coarse step cut a JSON document by lines: the fine step decides
        return Prepared(doc, words, allowed | inviolable, inviolable)

    def refine(self, job: CompressionJob, prepared: list[Prepared], relevance: dict, info_z: list[np.ndarray],
               keyed: list[wordfit.DocWords]) -> list[wordfit.DocWords]:
        """A second look at the words near the cut (``tokens`` scores them with the LM); none here."""
        return keyed

    def info_z(self, job: CompressionJob, prepared: Sequence[Prepared], info: Sequence[np.ndarray],
               among: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Information per target-model token, z-scored over the free words (or those in ``among``)."""
        density = []
        for p, inf in zip(prepared, info):
            cost = np.array([max(1, job.tokenizer.count(p.words.word(i))) for i in range(len(p.words))], dtype=np.float64)
            density.append(np.asarray(inf, dtype=np.float64) / cost)
        among = among if among is not None else [p.allowed & (p.words.role == wordsmod.FREE) for p in prepared]
        pool = np.concatenate([d[m] for d, m in zip(density, among)]) if prepared else np.zeros(0)
        mu, sd = (float(pool.mean()), float(pool.std()) or 1.0) if pool.size else (0.0, 1.0)
        return [(d - mu) / sd for d in density]

    def keyed(self, job: CompressionJob, prepared: list[Prepared], relevance: dict,
              info_z: list[np.ndarray]) -> list[wordfit.DocWords]:
        """Each word's priority (see the module docstring) from its information and its sentence."""
        question = set(lexical.tokenize(job.query))
        o = self.options
        out = []
        for p, z in zip(prepared, info_z):
            f = p.allowed & (p.words.role == wordsmod.FREE)
            spans_, probs = relevance[p.doc.id]
            sent = sentence_of(p, spans_)
            rel = np.log(np.asarray(probs, dtype=np.float64)[sent] + 0.01) if len(spans_) else np.zeros(len(p.words))
            inq = np.array([bool(question) and keep.word_key(p.words.word(i)) in question for i in range(len(p.words))])
            key = z + o.relevance_weight * rel + o.question_weight * inq
            key = _atoms_by_mean(p.words, key, f)
            forced = keep.forced(p.words, self.pattern) & f
            plain = f & ~forced
            best = np.full(len(spans_) or 1, -np.inf)
            np.maximum.at(best, sent[plain], key[plain])
            # Within a sentence, forced words rank just above its best word: figures first (the
            # commonest answers), then the more informative, words the question already has last.
            digits = np.array([any(c.isdigit() for c in p.words.word(i)) for i in range(len(p.words))])
            lift = 1e-3 + 1e-4 * np.tanh(z) + 2e-4 * digits - 2e-4 * inq
            key = np.where(forced, np.where(np.isfinite(best[sent]), best[sent], key + 3.0) + lift, key)
            structural = p.words.role == wordsmod.FORCED
            if structural.any():
                top = key[f].max() if f.any() else 0.0
                key = np.where(structural, top + 2e-3, key)
            out.append(wordfit.DocWords(p.doc, p.words, p.allowed, key, p.inviolable))
        return out

    def _relevance(self, job: CompressionJob, clean: tuple[Document, ...]) -> dict[str, tuple[tuple, np.ndarray]]:
        """Per document: its sentence spans and each sentence's probability of being evidence."""
        seg = packing.segment(clean)
        out: dict[str, tuple[tuple, np.ndarray]] = {}
        if seg.units and job.query.strip():
            embed = self.models.static_embedder().embed
            prob = self.heads.score(CompressionJob(job.query, clean, job.budget_tokens, job.tokenizer,
                                                   job.context_format), seg, embed).unit
        else:
            prob = np.full(len(seg.units), 0.5)
        at = 0
        for d, spans_ in zip(clean, seg.spans):
            out[d.id] = (spans_, prob[at:at + len(spans_)])
            at += len(spans_)
        return out


def corpus_information(docs: Sequence[Prepared]) -> list[np.ndarray]:
    """Each allowed word's self-information in the reference corpus (``compressors/wordstats.py``)."""
    info = load_counts().information
    return [np.array([info(keep.word_key(p.words.word(i))) if p.allowed[i] else 0.0 for i in range(len(p.words))])
            for p in docs]


def sentence_of(p: Prepared, spans_: Sequence[units.Span]) -> np.ndarray:
    """The index of each word's sentence (``units.split`` spans of the document)."""
    starts = np.array([s.start for s in spans_], dtype=np.int64)
    return np.clip(np.searchsorted(starts, p.words.starts, "right") - 1, 0, max(0, len(spans_) - 1))


def _stage(method: str, budget: int, before: int, after: int, started: float) -> dict[str, Any]:
    return {"method": method, "budget_tokens": budget, "input_tokens": before, "output_tokens": after,
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 2)}


def _atoms_by_mean(words: wordsmod.Words, key: np.ndarray, free: np.ndarray) -> np.ndarray:
    """A code block is worth the mean of its words, not its best one."""
    if not np.any(words.atom >= 0):
        return key
    key = key.copy()
    for a in np.unique(words.atom[(words.atom >= 0) & free]):
        members = (words.atom == a) & free
        key[members] = key[members].mean()
    return key


def aligned(source: str, kept: str) -> list[tuple[int, int]]:
    """Character spans of ``source`` that make up ``kept`` (an earlier stage's output).

    Sentence methods return whole sentences of ``units.split`` joined by
    ``units.join``; a word pruner returns whole words of ``words.spans``. Either is
    matched in order as a subsequence of atomic pieces; anything else is a bug.
    """
    spans_ = units.split(source)
    chosen = _subsequence([source[s.start:s.end] for s in spans_], kept, by_prefix=True)
    if chosen is not None and units.join(source, spans_, chosen) == kept:
        return [(spans_[i].start, spans_[i].end) for i in chosen]
    pieces = wordsmod.spans(source)
    chosen = _subsequence([source[a:b] for a, b in pieces], [kept[a:b] for a, b in wordsmod.spans(kept)])
    if chosen is None:
        raise InternalError("an earlier stage returned text that is not made of its input's sentences or words")
    return [pieces[i] for i in chosen]


def _subsequence(pieces: list[str], kept, by_prefix: bool = False) -> list[int] | None:
    """Indices of ``pieces`` that, leftmost first, make up ``kept`` (a string read by prefixes,
    or a list of pieces compared whole); None when they do not."""
    out: list[int] = []
    if not by_prefix:
        k = 0
        for i, piece in enumerate(pieces):
            if k < len(kept) and piece == kept[k]:
                out.append(i)
                k += 1
        return out if k == len(kept) else None
    pos = 0
    for i, piece in enumerate(pieces):
        while pos < len(kept) and kept[pos].isspace():
            pos += 1
        if kept.startswith(piece, pos):
            out.append(i)
            pos += len(piece)
    return out if not kept[pos:].strip() else None
