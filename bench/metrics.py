"""Scoring a compressed context against gold (HotpotQA row format): supporting-fact recall and answer kept."""

from __future__ import annotations

import re
import statistics
import string
import unicodedata
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, no punctuation/articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squash(text: str) -> str:
    return " ".join(text.split())


def answer_kept(answer: str | Sequence[str], context: str) -> bool | None:
    """Whether any accepted answer survives, normalised (NQ lists several in ``answers``).

    None when no answer can be looked for: yes/no answers (they never appear in a
    context) and empty answers.
    """
    norms = [n for n in (normalise(a) for a in ([answer] if isinstance(answer, str) else answer))
             if n and n not in ("yes", "no")]
    if not norms:
        return None
    ctx = f" {normalise(context)} "
    return any(f" {n} " in ctx for n in norms)


def answers(gold: dict) -> list[str]:
    """Every accepted answer of a gold record (``answers`` when the row lists them)."""
    return list(gold.get("answers") or [gold.get("answer", "")])


def supporting_recall(gold: dict, context: str) -> float | None:
    """Share of the gold supporting sentences present verbatim (whitespace-normalised) in the context."""
    ctx = squash(context)
    facts = []
    for title, index in gold["supporting_facts"]:
        sents = gold["sentences"].get(title)
        if sents is not None and index < len(sents) and sents[index].strip():
            facts.append(squash(sents[index]))
    if not facts:
        return None
    return sum(f in ctx for f in facts) / len(facts)


class Tally:
    """A method's figures over many questions: recall, answer kept and tokens used.

    With ``full_context``, answer kept is also counted over the questions whose
    whole context holds the answer at all ("reachable").
    """

    def __init__(self) -> None:
        self.recall: list[float] = []
        self.answer: list[bool] = []
        self.reachable: list[bool] = []
        self.tokens: list[int] = []

    def add(self, gold: dict, context: str, tokens: int, full_context: str | None = None) -> bool | None:
        """Counts one question; returns whether it kept its answer (None for yes/no answers)."""
        recall, answer = supporting_recall(gold, context), answer_kept(answers(gold), context)
        if recall is not None:
            self.recall.append(recall)
        if answer is not None:
            self.answer.append(answer)
            if full_context is not None and answer_kept(answers(gold), full_context):
                self.reachable.append(answer)
        self.tokens.append(tokens)
        return answer

    def summary(self) -> dict:
        mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
        out = {"sf_recall": mean(self.recall), "answer_kept": mean(self.answer),
               "answer_questions": len(self.answer), "tokens": mean(self.tokens)}
        if self.reachable:
            out.update(answer_kept_reachable=mean(self.reachable), reachable_questions=len(self.reachable))
        return out


def percentile(values: Sequence[float], q: float, empty: float | None = None) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between ranks; ``empty`` for no values."""
    if not values:
        return empty
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
