"""Keeping the best words under an exact token ceiling.

Words of all documents compete in one order of priority. An *entry* is what is
kept or dropped at once: a word, or a whole atom (a code block, a heading, a JSON
skeleton). Dependent structure (list markers, table pipes) is not an entry: it
is kept exactly when a word of its item is. Inviolable words (caller-marked
spans) come first and are always kept.

The ceiling is met exactly, counted on the assembled context (titles and
separators included) with the target model's tokenizer: a binary search finds
the longest prefix of the priority order that fits, then later entries that
still fit the slack are added one by one, each checked exactly. BPE counts are
not quite additive, so every candidate is counted for real; nothing is estimated
into the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from compressors import context, words as wordsmod
from compressors.base import CompressionJob
from middleware.errors import InvalidArgument
from middleware.types import Document

# How many single entries the slack-filling pass may try after the binary search.
_FILL_TRIES = 24


@dataclass(frozen=True)
class DocWords:
    """One document's words and what the caller decided about them."""

    doc: Document           # the input document (id, title, metadata); its text is replaced
    words: wordsmod.Words   # the words of the clean text (keep markers removed)
    allowed: np.ndarray     # bool per word: survived the earlier stages
    key: np.ndarray         # float per word: priority (higher is kept first); ignored for dependent words
    inviolable: np.ndarray  # bool per word: never dropped (caller-marked spans)


class _Plan:
    """Entries over all documents, sorted by priority, with the mapping back to words."""

    def __init__(self, docs: Sequence[DocWords]) -> None:
        self.docs = docs
        entry_of: list[np.ndarray] = []
        keys: list[float] = []
        first_inviolable: list[bool] = []
        needs: list[int] = []  # the entry an entry cannot live without (a JSON string word needs its skeleton)
        for d in docs:
            w = d.words
            ids = np.full(len(w), -1, dtype=np.int64)
            start = len(keys)
            live = d.allowed & ((w.role != wordsmod.DEPENDENT) | d.inviolable)
            atoms: dict[int, int] = {}
            for i in np.flatnonzero(live).tolist():
                a = int(w.atom[i])
                if d.inviolable[i]:
                    ids[i] = len(keys)
                    keys.append(np.inf)
                    first_inviolable.append(True)
                elif a >= 0 and a in atoms:
                    ids[i] = atoms[a]
                    keys[atoms[a]] = max(keys[atoms[a]], float(d.key[i]))
                else:
                    ids[i] = len(keys)
                    if a >= 0:
                        atoms[a] = ids[i]
                    keys.append(float(d.key[i]))
                    first_inviolable.append(False)
            needs.extend([-1] * (len(keys) - len(needs)))
            if w.is_json and 0 in atoms:
                needs[start:] = [atoms[0] if e != atoms[0] else -1 for e in range(start, len(keys))]
            entry_of.append(ids)
        self.entry_of = entry_of
        key_arr = np.asarray(keys, dtype=np.float64)
        # Descending priority; ties keep reading order (entries are numbered in reading order).
        self.order = np.argsort(-key_arr, kind="stable")
        self.rank = np.empty(len(keys), dtype=np.int64)
        self.rank[self.order] = np.arange(len(keys))
        self.inviolable = int(sum(first_inviolable))
        self.needs = np.asarray(needs, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.order)

    def masks(self, included: np.ndarray) -> list[np.ndarray]:
        """Per document, the kept words when the entries flagged in ``included`` are in."""
        out = []
        for d, ids in zip(self.docs, self.entry_of):
            kept = np.zeros(len(ids), dtype=bool)
            has = ids >= 0
            kept[has] = included[ids[has]]
            dep = d.allowed & (d.words.role == wordsmod.DEPENDENT) & ~kept
            if dep.any():
                items = np.unique(d.words.item[kept & (d.words.item >= 0)])
                kept |= dep & np.isin(d.words.item, items)
            out.append(kept)
        return out

    def documents(self, included: np.ndarray) -> tuple[Document, ...]:
        out = []
        for d, kept in zip(self.docs, self.masks(included)):
            if kept.any():
                text = wordsmod.join(d.words, kept)
                if text.strip():
                    out.append(d.doc.with_text(text))
        return tuple(out)


def fit(job: CompressionJob, docs: Sequence[DocWords]) -> tuple[tuple[Document, ...], dict]:
    """The documents made of the best words that fit ``job.budget_tokens``, and statistics."""
    plan, included, used, tries = _choose(job, docs)
    result = plan.documents(included)
    kept_words = sum(int(m.sum()) for m in plan.masks(included))
    return result, {"words_total": int(sum(len(d.words) for d in docs)),
                    "words_in": int(sum(int(d.allowed.sum()) for d in docs)),
                    "words_kept": kept_words, "fill": round(used / job.budget_tokens, 4) if job.budget_tokens else 0.0,
                    "slack_fill_tries": tries}


def select(job: CompressionJob, docs: Sequence[DocWords]) -> list[np.ndarray]:
    """Per document, the words :func:`fit` keeps (a boolean mask)."""
    plan, included, _, _ = _choose(job, docs)
    return plan.masks(included)


def _choose(job: CompressionJob, docs: Sequence[DocWords]) -> tuple[_Plan, np.ndarray, int, int]:
    plan = _Plan(docs)
    fmt, budget = job.context_format, job.budget_tokens

    def count(included: np.ndarray) -> int:
        return len(job.tokenizer.encode(context.assemble(plan.documents(included), fmt)))

    def prefix(k: int) -> np.ndarray:
        return plan.rank < k

    lo = plan.inviolable
    needed = count(prefix(lo))
    if needed > budget:
        raise InvalidArgument(f"the text marked to keep needs {needed} tokens, over the budget of {budget}")
    hi = len(plan)
    if count(prefix(hi)) <= budget:
        lo = hi
    else:  # invariant: prefix(lo) fits, prefix(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if count(prefix(mid)) <= budget:
                lo = mid
            else:
                hi = mid
    included = prefix(lo)
    used = count(included)
    tries = 0
    for e in plan.order[lo + 1:].tolist() if lo < len(plan) else []:
        if used >= budget or tries >= _FILL_TRIES:
            break
        if plan.needs[e] >= 0 and not included[plan.needs[e]]:
            continue
        included[e] = True
        trial = count(included)
        tries += 1
        if trial <= budget:
            used = trial
        else:
            included[e] = False
    return plan, included, used, tries
