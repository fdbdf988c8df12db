"""The faithfulness guard: every fact a summary states must be in its sources.

:func:`index` reads the source documents once; :func:`check` lists the facts of
a text (:mod:`compressors.facts`: numbers with units, dates, capitalised names,
identifiers, CJK terms) that the sources do not support; :func:`guard` keeps the
sentences of a summary whose facts are all supported and reports the rest.

Support, by kind:
- a number: the sources state the same value (within the rounding a scale word
  allows: "2.1 million"), with the same unit when the summary gives one;
- a date: the sources state a date that agrees on every part the summary gives;
- a name: every word of it occurs in the sources, and a name of several words
  occurs as a phrase or within one source sentence (so "John Smith" is not made
  of one document's John and another's Smith);
- an identifier: it occurs in the sources; a CJK term: it is made of pieces of
  the sources' CJK text, with single characters only at its edges (a Hangul word:
  its stem, the same way).

The guard rejects rather than guesses: a fact it cannot match is unsupported.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from compressors import facts as F


@dataclass(frozen=True)
class Source:
    """What the source documents state, in normal form (built by :func:`index`)."""

    values: tuple[Decimal, ...]                       # sorted
    units: dict[str, frozenset[str]]                 # canonical value -> units seen with it ("" = none)
    dates: frozenset[tuple]
    words: frozenset[str]
    phrases: str                                     # folded words of each sentence, " | " between
    sentences: tuple[frozenset[str], ...]
    raw: str                                         # folded text, for identifiers
    cjk: str                                         # the CJK text (NFKC), for CJK terms and Hangul stems


def index(texts: Iterable[str]) -> Source:
    from compressors import units as U

    values: dict[str, Decimal] = {}
    units: dict[str, set[str]] = {}
    dates: set[tuple] = set()
    words: set[str] = set()
    sentences: list[frozenset[str]] = []
    phrases: list[str] = []
    raws: list[str] = []
    cjk: list[str] = []
    for text in texts:
        norm = F.normalise(text)
        raws.append(F.fold(norm))
        for fact in F.numbers(norm, source=True):
            value, fact_units, _ = fact.key
            values.setdefault(value, Decimal(value))
            units.setdefault(value, set()).update(fact_units or {""})
        dates.update(f.key for f in F.dates(norm))
        for span in U.split(norm):
            folded = [F.fold(w) for w, _, _ in F.words(norm[span.start:span.end])]
            # "Jean-Luc" is also "Jean" and "Luc".
            parts = [p for w in folded if "-" in w for p in w.split("-") if p]
            sentences.append(frozenset(folded + parts))
            phrases.append(" ".join(folded))
            words.update(folded, parts)
        cjk.extend(F.CJK_TERM.findall(norm) + F.HANGUL_WORD.findall(norm))
    return Source(values=tuple(sorted(values.values())), units={k: frozenset(v) for k, v in units.items()},
                  dates=frozenset(dates), words=frozenset(words), phrases=" " + " | ".join(phrases) + " ",
                  sentences=tuple(sentences), raw="\n".join(raws), cjk="\n".join(cjk))


@dataclass(frozen=True)
class Verdict:
    """The checkable facts of one text and those the sources do not support."""

    facts: tuple[F.Fact, ...]
    unsupported: tuple[F.Fact, ...]

    @property
    def ok(self) -> bool:
        return not self.unsupported


def facts_of(text: str) -> list[F.Fact]:
    """Every checkable fact of ``text`` (normalised first); figures inside a date are the date's."""
    norm = F.normalise(text)
    found = F.dates(norm)
    taken = [(f.start, f.end) for f in found]
    outside = lambda f: not any(s < f.end and f.start < e for s, e in taken)  # noqa: E731
    found += [f for f in [*F.numbers(norm), *F.identifiers(norm), *F.names(norm), *F.cjk_terms(norm)] if outside(f)]
    return found


def check(text: str, source: Source) -> Verdict:
    """The facts of ``text`` and the unsupported ones (``text`` is best one sentence:
    a sentence's first word is allowed to be a capitalised common word)."""
    found = facts_of(text)
    return Verdict(tuple(found), tuple(f for f in found if not supported(f, source)))


def supported(fact: F.Fact, source: Source) -> bool:
    return _SUPPORT[fact.kind](fact.key, source)


def _number(key: tuple, source: Source) -> bool:
    value, units, tol = key
    target = Decimal(value)
    lo = bisect.bisect_left(source.values, target - tol)
    hi = bisect.bisect_right(source.values, target + tol)
    for candidate in source.values[lo:hi]:
        seen = source.units[F.canonical(candidate)]
        if not units or units & seen:
            return True
    return False


def _date(key: tuple, source: Source) -> bool:
    year, month, day = key
    return any(y == year and m == month and (day is None or d == day) for y, m, d in source.dates)


def _name(key: tuple, source: Source) -> bool:
    if not all(w in source.words for w in key):
        return False
    if len(key) == 1:
        return True
    if f" {' '.join(key)} " in source.phrases:
        return True
    wanted = set(key)
    return any(wanted <= sentence for sentence in source.sentences)


def _identifier(key: tuple, source: Source) -> bool:
    return key[0] in source.raw


def _cjk(key: tuple, source: Source) -> bool:
    """A CJK term is covered by pieces of the source's CJK text of two characters or more;
    a single character is allowed only at the term's edges (a particle or a verb attached
    to a name: "东京塔高" = "东京塔" + "高"), never inside, so names are not spliced."""
    term = key[0]
    if term in source.cjk:
        return True
    n = len(term)
    reach = [True] + [False] * n
    for i in range(n):
        if not reach[i]:
            continue
        if (i == 0 or i == n - 1) and term[i] in source.cjk:
            reach[i + 1] = True
        for j in range(i + 2, n + 1):
            if term[i:j] in source.cjk:
                reach[j] = True
    return reach[n]


_SUPPORT = {"number": _number, "date": _date, "name": _name, "identifier": _identifier, "cjk": _cjk}


@dataclass(frozen=True)
class Guarded:
    """A summary after the guard: the sentences kept, those dropped with their unsupported
    facts, and the action: ``passed`` (all kept), ``repaired`` (some dropped) or
    ``failed`` (nothing left)."""

    kept: tuple[str, ...]
    dropped: tuple[tuple[str, tuple[F.Fact, ...]], ...]
    facts_checked: int

    @property
    def action(self) -> str:
        if not self.dropped:
            return "passed"
        return "repaired" if self.kept else "failed"

    def report(self) -> dict:
        """JSON-ready details: what was checked and what was not supported."""
        return {"action": self.action, "facts_checked": self.facts_checked,
                "sentences_dropped": len(self.dropped),
                "unsupported": [{"kind": f.kind, "text": f.text} for _, fs in self.dropped for f in fs][:20]}


def guard(sentences: Sequence[str], source: Source) -> Guarded:
    """Keep the sentences whose facts the sources all support."""
    kept: list[str] = []
    dropped: list[tuple[str, tuple[F.Fact, ...]]] = []
    checked = 0
    for sentence in sentences:
        verdict = check(sentence, source)
        checked += len(verdict.facts)
        if verdict.ok:
            kept.append(sentence)
        else:
            dropped.append((sentence, verdict.unsupported))
    return Guarded(tuple(kept), tuple(dropped), checked)
