"""What token-level compression must not lose: force-kept words and caller-marked spans.

Force-kept words (:func:`forced`) are kept whenever any word of their sentence is
kept, so a surviving sentence never loses its figures or names:

- numbers, dates, amounts, versions: any word with a digit ("2,102,650", "1889),",
  "v1.2.3", "03:14", "$3.50");
- identifiers: words with ``_ / @ # \\ :: ://``, camelCase, ALL-CAPS acronyms
  ("ID-42x" has a digit; "HTTP_PROXY", "foo.bar()", "https://...", "user@x.org");
- capitalised names that are not sentence-opening function words ("Paris",
  "Shirley"; not "The", "He"), and the connectors inside a name ("Lord of the
  Rings", "Bank of America", "Ludwig van Beethoven");
- words matching the caller's ``keep_patterns`` (regular expressions) or
  ``keep_terms`` (literal, case-insensitive), matched on the text, so a term of
  several words ("Fuel Dilution") is kept whole.

Caller-marked spans (:func:`unmark`): text between ``<ragpress:keep>`` and
``</ragpress:keep>`` comes back untouched (without the markers), or the request
fails when the marked text alone does not fit the budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from compressors.lexical import STOPWORDS
from compressors.words import Words
from middleware.errors import InvalidArgument

OPEN, CLOSE = "<ragpress:keep>", "</ragpress:keep>"
_MARKER = re.compile(re.escape(OPEN) + "|" + re.escape(CLOSE))
EDGE_PUNCT = "\"'“”‘’«»()[]{}<>,.;:!?¡¿—–-…*_`"
_IDENT = re.compile(r"[_/@#\\]|::|[a-z][A-Z]|^[A-Z]{2,}\W*$|[$€£¥%]")
_CONNECTORS = frozenset("of the de da del der den van von la le du di y and & bin al el upon".split())
# Capitalised words that open sentences without naming anything.
_OPENERS = STOPWORDS | frozenset(
    "also although however however, many most some such there these this those while yet "
    "after during since later today when where then thus so".split())
MAX_PATTERNS = 32
MAX_PATTERN_CHARS = 200


@dataclass(frozen=True)
class Unmarked:
    """A text without its keep markers, and the spans (in the clean text) that were marked."""

    text: str
    protected: tuple[tuple[int, int], ...]


def unmark(text: str, where: str) -> Unmarked:
    """Remove the keep markers; unbalanced or nested markers are an :class:`InvalidArgument`."""
    if OPEN not in text and CLOSE not in text:
        return Unmarked(text, ())
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos, length, opened = 0, 0, -1
    for m in _MARKER.finditer(text):
        out.append(text[pos:m.start()])
        length += m.start() - pos
        pos = m.end()
        if m.group() == OPEN:
            if opened >= 0:
                raise InvalidArgument(f"{where}: nested {OPEN} markers")
            opened = length
        else:
            if opened < 0:
                raise InvalidArgument(f"{where}: {CLOSE} without an opening {OPEN}")
            spans.append((opened, length))
            opened = -1
    if opened >= 0:
        raise InvalidArgument(f"{where}: {OPEN} is never closed")
    out.append(text[pos:])
    return Unmarked("".join(out), tuple(s for s in spans if s[1] > s[0]))


def compile_patterns(patterns: Sequence[str], terms: Sequence[str], method: str) -> re.Pattern | None:
    """One regular expression for the caller's patterns and literal terms (None if none)."""
    if len(patterns) + len(terms) > MAX_PATTERNS:
        raise InvalidArgument(f"method {method!r}: at most {MAX_PATTERNS} keep_patterns and keep_terms together")
    parts = []
    for p in patterns:
        if not p or len(p) > MAX_PATTERN_CHARS:
            raise InvalidArgument(f"method {method!r}: keep_patterns must be 1 to {MAX_PATTERN_CHARS} characters")
        try:
            re.compile(p)
        except re.error as exc:
            raise InvalidArgument(f"method {method!r}: keep_patterns: bad regular expression {p!r}: {exc}") from exc
        parts.append(f"(?:{p})")
    for t in terms:
        if not t.strip() or len(t) > MAX_PATTERN_CHARS:
            raise InvalidArgument(f"method {method!r}: keep_terms must be 1 to {MAX_PATTERN_CHARS} characters")
        parts.append(f"(?i:{re.escape(t)})")
    return re.compile("|".join(parts)) if parts else None


def _core(word: str) -> str:
    return word.strip(EDGE_PUNCT)


def word_key(word: str) -> str:
    """A word compared across texts: lower case, edge punctuation stripped ("Paris," -> "paris")."""
    return word.strip(EDGE_PUNCT).lower()


def forced(words: Words, pattern: re.Pattern | None = None) -> np.ndarray:
    """A boolean per word: the words the force-keep rules of the module docstring protect."""
    n = len(words)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    cores = [_core(words.word(i)) for i in range(n)]
    capital = np.zeros(n, dtype=bool)
    for i, (raw, core) in enumerate(zip((words.word(i) for i in range(n)), cores)):
        if any(c.isdigit() for c in raw) or "://" in raw or _IDENT.search(core or raw):
            out[i] = True
        elif core[:1].isupper() and core.lower() not in _OPENERS:
            capital[i] = True
    out |= capital
    # Connectors between two capitalised words of one name ("Lord of the Rings").
    lower = [c.lower() for c in cores]
    for i in range(1, n - 1):
        if lower[i] in _CONNECTORS and capital[i - 1]:
            j = i + 1
            if j < n - 1 and lower[j] in _CONNECTORS:
                j += 1
            if capital[j] and not words.text[words.ends[i - 1]:words.starts[j]].count("\n"):
                out[i:j] = True
    if pattern is not None:
        out |= covered(words, [(m.start(), m.end()) for m in pattern.finditer(words.text) if m.end() > m.start()])
    return out


def covered(words: Words, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """A boolean per word: does the word overlap one of ``spans``?"""
    mask = np.zeros(len(words), dtype=bool)
    for a, b in spans:
        mask |= (words.starts < b) & (words.ends > a)
    return mask
