"""Word units for token-level compression, and how kept words are joined back.

A *word* is a verbatim span of the text that is kept or dropped whole:

- in scripts written with spaces (Latin, Cyrillic, Greek, Hangul, ...), a maximal
  run of non-space characters, punctuation included ("(1889),", "ID-42x",
  "2,102,650", "https://x.org/a?b=1"): a number, identifier or URL is never cut;
- in scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar,
  Tibetan), one character with its combining marks (a katakana run is one word);
  closing punctuation sticks to the character before it and opening brackets to
  the one after, and a run of other characters inside such text ("1400",
  "Python") stays one word. No unit boundary ever falls inside a character or a
  grapheme cluster (combining marks, variation selectors and zero-width joiners
  stay with their base).

Structure (:func:`structure`) groups words that must live or die together:
fenced code blocks and Markdown headings are atoms; a JSON document's skeleton
(brackets, keys, numbers, literals, the quotes of string values) is one forced
atom, its string values' words are free; list markers and table pipes depend on
the words of their item or table (kept exactly when one of those is kept).

:func:`join` is the one place kept words become text again: adjacent words keep
the original whitespace; across a gap, a newline if the gap had one, else a space,
except between two characters of a script without spaces (nothing) and against
the quotes of a JSON string (nothing unless both sides had a space). So two
words of spaced scripts are never glued together ("2020年5月" with "年" dropped
gives "2020 5月", not "20205月"), and the output splits into the same words.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Scripts written without spaces between words.
_NOSPACE = ("\u0e00-\u0e7f\u0e80-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
            "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
            "\U00020000-\U0002ffff")
_HAS_NOSPACE = re.compile(f"[{_NOSPACE}]")
_KATAKANA = re.compile("[\u30a0-\u30ff\u31f0-\u31ff]")
_RUN = re.compile(r"\S+")
# Punctuation that belongs to the character before it, and brackets that open onto the next.
_CJK_CLOSING = frozenset("。、，．！？：；」』）】〉》〕｝］…")
_CJK_OPENING = frozenset("「『（【〈《〔｛［")
_JOINERS = {"\u200d", "\u200c"}

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t][^\n]*$", re.M)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+[^\n]*$", re.M)
_TABLE = re.compile(r"(?:^[ \t]*\|[^\n]*(?:\n|$))+", re.M)
_PIPES = re.compile(r"^[|:\-\s]+$")
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|[{}\[\]:,]|\s+')

# Roles of a word.
FREE = 0        # content: scored, kept or dropped on its own (or with its atom)
FORCED = 1      # structure kept whenever its document keeps anything (headings, JSON skeletons)
DEPENDENT = 2   # structure kept exactly when a word of its item is (list markers, table pipes)


@dataclass(frozen=True)
class Words:
    """The words of one text: spans, and how they hang together.

    ``atom[i] >= 0``: words with the same atom are kept or dropped together.
    ``item[i] >= 0``: the list item or table a word belongs to; a DEPENDENT word
    is kept exactly when some non-dependent word of its item is.
    """

    text: str
    starts: np.ndarray
    ends: np.ndarray
    role: np.ndarray
    atom: np.ndarray
    item: np.ndarray
    is_json: bool = False   # the whole text is one JSON document

    def __len__(self) -> int:
        return len(self.starts)

    def word(self, i: int) -> str:
        return self.text[self.starts[i]:self.ends[i]]


def _is_mark(ch: str) -> bool:
    return ch in _JOINERS or unicodedata.category(ch)[0] == "M" or "\ufe00" <= ch <= "\ufe0f"


def _split_run(run: str, offset: int) -> list[tuple[int, int]]:
    """Cut a non-space run that holds characters of scripts without spaces."""
    pieces: list[list[int]] = []  # [start, end] within run
    pending = -1                  # where an opening bracket waits for the unit after it
    i, n = 0, len(run)
    while i < n:
        ch = run[i]
        if pieces and pending < 0 and (_is_mark(ch) or ch in _CJK_CLOSING):
            pieces[-1][1] = i + 1  # marks and closing punctuation join the unit before
            i += 1
            continue
        if ch in _CJK_OPENING:
            pending = i if pending < 0 else pending
            i += 1
            continue
        j = i + 1
        if _KATAKANA.match(ch):
            while j < n and (_KATAKANA.match(run[j]) or _is_mark(run[j])):
                j += 1
        elif not _HAS_NOSPACE.match(ch):
            while j < n and not _HAS_NOSPACE.match(run[j]) and run[j] not in _CJK_CLOSING and run[j] not in _CJK_OPENING:
                j += 1
        pieces.append([pending if pending >= 0 else i, j])
        pending = -1
        i = j
    if pending >= 0:
        pieces.append([pending, n])
    return [(offset + a, offset + b) for a, b in pieces]


def spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Word spans of ``text[start:end]`` in order (see the module docstring)."""
    out: list[tuple[int, int]] = []
    for m in _RUN.finditer(text, start, len(text) if end is None else end):
        if _HAS_NOSPACE.search(m.group()):
            out.extend(_split_run(m.group(), m.start()))
        else:
            out.append((m.start(), m.end()))
    return out


def _json_structure(text: str) -> list[tuple[int, int, int]] | None:
    """(start, end, role) of every word of a JSON document, or None if ``text`` is not JSON."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        json.loads(stripped)
    except ValueError:
        return None
    tokens = []
    pos = 0
    for m in _JSON_TOKEN.finditer(text):
        if m.start() != pos:
            return None  # something the lexer does not know: treat the text as prose
        pos = m.end()
        if not m.group().isspace():
            tokens.append(m)
    if pos != len(text):
        return None
    out: list[tuple[int, int, int]] = []
    for k, m in enumerate(tokens):
        tok = m.group()
        is_key = tok.startswith('"') and k + 1 < len(tokens) and tokens[k + 1].group() == ":"
        if tok.startswith('"') and not is_key and len(tok) > 2:
            # A string value: its quotes are skeleton, its words are content.
            out.append((m.start(), m.start() + 1, FORCED))
            out.extend((a, b, FREE) for a, b in spans(text, m.start() + 1, m.end() - 1))
            out.append((m.end() - 1, m.end(), FORCED))
        else:
            out.append((m.start(), m.end(), FORCED))
    return out


@lru_cache(maxsize=20_000)
def structure(text: str) -> Words:
    """The words of ``text`` with their roles, atoms and items (cached per text)."""
    as_json = _json_structure(text)
    if as_json is not None:
        starts, ends, roles = (np.array(c, dtype=np.int64) for c in zip(*as_json)) if as_json else _empty(3)
        atom = np.where(roles == FORCED, 0, -1)
        return Words(text, starts, ends, roles.astype(np.int8), atom, np.full(len(starts), -1), is_json=True)
    found = spans(text)
    starts = np.array([a for a, _ in found], dtype=np.int64)
    ends = np.array([b for _, b in found], dtype=np.int64)
    role = np.zeros(len(found), dtype=np.int8)
    atom = np.full(len(found), -1, dtype=np.int64)
    item = np.full(len(found), -1, dtype=np.int64)
    if len(found) and any(c in text for c in "`~#|-*+•0123456789"):
        groups = 0
        for kind, m in _blocks(text):
            inside = (starts >= m.start()) & (ends <= m.end())
            if kind == "fence":
                atom[inside & (atom < 0)] = groups
            elif kind == "heading":
                atom[inside & (atom < 0)] = groups
                role[inside & (atom == groups)] = FORCED
            elif kind == "list":
                free = inside & (atom < 0) & (item < 0)
                idx = np.flatnonzero(free)
                if len(idx):
                    item[idx] = groups
                    role[idx[0]] = DEPENDENT  # the marker
            elif kind == "table":
                free = inside & (atom < 0) & (item < 0)
                item[free] = groups
                for i in np.flatnonzero(free):
                    if _PIPES.match(text[starts[i]:ends[i]]):
                        role[i] = DEPENDENT
            groups += 1
        # A list item or table with no content word would leave a dangling marker.
        for g in np.unique(item[item >= 0]):
            members = item == g
            if not np.any(members & (role != DEPENDENT)):
                role[members] = FREE
                item[members] = -1
    return Words(text, starts, ends, role, atom, item)


def _blocks(text: str):
    """(kind, match) of the structural blocks, none overlapping: fences, tables, headings, list items."""
    taken: list[tuple[int, int]] = []
    for kind, pattern in (("fence", _FENCE), ("table", _TABLE), ("heading", _HEADING), ("list", _LIST_ITEM)):
        for m in pattern.finditer(text):
            if not any(a < m.end() and m.start() < b for a, b in taken):
                taken.append((m.start(), m.end()))
                yield kind, m


def _empty(n: int):
    return tuple(np.zeros(0, dtype=np.int64) for _ in range(n))


def _glue(left: str, right: str) -> bool:
    """Would putting these two characters side by side make one word of two (neither is of a
    script without spaces, so nothing would tell them apart)?"""
    return not (_HAS_NOSPACE.match(left) or _HAS_NOSPACE.match(right) or left.isspace() or right.isspace())


def _quote(words: Words, i: int) -> bool:
    return bool(words.role[i] == FORCED) and words.ends[i] - words.starts[i] == 1 and words.text[words.starts[i]] == '"'


def join(words: Words, keep: np.ndarray) -> str:
    """The kept words (a boolean mask or ascending indices) as text; see the module docstring."""
    return join_with_offsets(words, keep)[0]


def join_with_offsets(words: Words, keep: np.ndarray) -> tuple[str, np.ndarray]:
    """:func:`join`, and where each kept word starts in the result."""
    idx = np.flatnonzero(keep) if keep.dtype == bool else keep
    if len(idx) == 0:
        return "", np.zeros(0, dtype=np.int64)
    text, starts, ends = words.text, words.starts, words.ends
    out: list[str] = []
    at = np.empty(len(idx), dtype=np.int64)
    length = 0
    prev = -1
    for k, i in enumerate(idx.tolist()):
        if prev >= 0:
            gap = text[ends[prev]:starts[i]]
            if i == prev + 1:
                sep = gap
            else:
                before_ws = text[starts[i] - 1].isspace()
                after_ws = text[ends[prev]].isspace()
                if "\n" in gap and (before_ws or after_ws):
                    sep = "\n\n" if "\n\n" in gap else "\n"
                elif _quote(words, prev) or _quote(words, i):
                    sep = " " if before_ws and after_ws else ""  # inside a JSON string, against its quote
                elif _glue(text[ends[prev] - 1], text[starts[i]]) or (before_ws or after_ws):
                    sep = " "
                else:
                    sep = ""
            out.append(sep)
            length += len(sep)
        at[k] = length
        piece = text[starts[i]:ends[i]]
        out.append(piece)
        length += len(piece)
        prev = i
    return "".join(out), at
