"""Documents cut into sentence units with their character spans.

Units are verbatim substrings of the document text. Protected blocks are single
units, never cut: fenced code blocks, Markdown tables (consecutive lines starting
with "|") and list items (a line starting with "-", "*", "•" or "1." / "1)").
Other text is split by line, then into sentences (sentencex, Wikimedia's
rule-based segmenter); over-long sentences are cut at clause punctuation or
whitespace, never inside a word (so never inside a number, date or identifier)
and never next to a digit (so "Jan. 5, 2020" and "3 500 km" stay whole).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sentencex

_LINE = re.compile(r"[^\n]+")
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
_TABLE = re.compile(r"(?:^[ \t]*\|[^\n]*(?:\n|$))+", re.M)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*•]|\d{1,3}[.)])[ \t]+")
_CLAUSE_BREAK = re.compile(r"(?<=[;:,])\s+|\s+(?=\()")
_WS = re.compile(r"\s+")
# A rough characters-per-token figure used only to cut over-long sentences into
# pieces; budgets are always checked with the real tokenizer.
_MAX_UNIT_CHARS = 600


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def _sentences(line: str, offset: int) -> list[Span]:
    spans: list[Span] = []
    pos = 0
    for piece in sentencex.segment("en", line):
        start = line.find(piece, pos)
        if start < 0:  # the segmenter altered the text; keep the line whole rather than guess
            return [Span(offset, offset + len(line))]
        pos = start + len(piece)
        spans.append(Span(offset + start, offset + pos))
    return spans


def _cut_long(text: str, span: Span, max_chars: int) -> list[Span]:
    if span.end - span.start <= max_chars:
        return [span]
    pieces: list[Span] = []
    start = span.start
    while span.end - start > max_chars:
        window = text[start:start + max_chars]
        cut = None
        for m in _CLAUSE_BREAK.finditer(window):
            if m.start() > max_chars // 3 and _safe_cut(window, m.start(), m.end()):
                cut = m.end()
        if cut is None:
            ws = [m.end() for m in _WS.finditer(window) if m.start() > 0 and _safe_cut(window, m.start(), m.end())]
            cut = ws[-1] if ws else None
        if cut is None:  # one unbroken token longer than the window: keep it whole
            nxt = _WS.search(text, start + max_chars, span.end)
            cut = (nxt.end() - start) if nxt else span.end - start
        pieces.append(Span(start, start + cut))
        start += cut
    if start < span.end:
        pieces.append(Span(start, span.end))
    return pieces


def _safe_cut(window: str, start: int, end: int) -> bool:
    """No cut right next to a digit: numbers, dates and amounts stay in one unit."""
    before = window[:start].rstrip(",;:")[-1:]
    after = window[end:end + 1]
    return not (before.isdigit() or after.isdigit())


def _protected(text: str) -> list[Span]:
    spans = [Span(m.start(), m.end()) for m in _FENCE.finditer(text)]
    spans += [Span(m.start(), m.end()) for m in _TABLE.finditer(text)
              if not any(s.start <= m.start() < s.end for s in spans)]
    return sorted(spans, key=lambda s: s.start)


def _split_plain(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    spans: list[Span] = []
    for line in _LINE.finditer(text, start, end):
        if _LIST_ITEM.match(line.group()):
            spans.append(Span(line.start(), line.end()))
            continue
        for sent in _sentences(line.group(), line.start()):
            spans.extend(_cut_long(text, sent, max_chars))
    return spans


def _trim(text: str, span: Span) -> Span | None:
    piece = text[span.start:span.end]
    stripped = piece.strip()
    if not stripped:
        return None
    lead = len(piece) - len(piece.lstrip())
    return Span(span.start + lead, span.start + lead + len(stripped))


@lru_cache(maxsize=50_000)
def split(text: str, max_chars: int = _MAX_UNIT_CHARS) -> tuple[Span, ...]:
    """Sentence spans of ``text``: stripped, in order, non-overlapping, non-empty."""
    pieces: list[Span] = []
    pos = 0
    for block in _protected(text):
        pieces.extend(_split_plain(text, pos, block.start, max_chars))
        pieces.append(block)
        pos = block.end
    pieces.extend(_split_plain(text, pos, len(text), max_chars))
    return tuple(t for t in (_trim(text, p) for p in pieces) if t is not None)


def join(text: str, spans: tuple[Span, ...], keep: list[int]) -> str:
    """The kept spans of ``text`` (indices ascending), verbatim, joined.

    Adjacent units keep the original whitespace between them; across a gap the
    joint is a newline if the original had one before the next kept unit, else a space.
    """
    out: list[str] = []
    prev = None
    for i in keep:
        span = spans[i]
        if prev is not None:
            if i == prev + 1:
                out.append(text[spans[prev].end:span.start])
            else:
                before = text[spans[i - 1].end:span.start]
                out.append("\n" if "\n" in before else " ")
        out.append(text[span.start:span.end])
        prev = i
    return "".join(out)
