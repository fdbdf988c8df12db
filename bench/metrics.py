"""Scoring a compressed context against HotpotQA gold: supporting-fact recall and answer kept."""

from __future__ import annotations

import re
import string
import unicodedata

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, no punctuation/articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squash(text: str) -> str:
    return " ".join(text.split())


def answer_kept(answer: str, context: str) -> bool | None:
    """None for yes/no answers (they never appear in a context) and empty answers."""
    norm = normalise(answer)
    if not norm or norm in ("yes", "no"):
        return None
    return f" {norm} " in f" {normalise(context)} "


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
