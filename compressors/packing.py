"""Choosing whole units by score under an exact token ceiling.

Shared by every sentence-selecting method, so that each of them meets the
budget invariant the same way: the assembled context (titles and separators
included) never has more tokens than ``job.budget_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from compressors import context, units
from compressors.base import CompressionJob
from middleware.types import Document


@dataclass(frozen=True)
class Unit:
    doc: int        # index into job.documents
    index: int      # index into that document's spans
    text: str


@dataclass(frozen=True)
class Segmented:
    spans: tuple[tuple[units.Span, ...], ...]
    units: tuple[Unit, ...]


def segment(docs: Sequence[Document]) -> Segmented:
    all_spans = []
    all_units = []
    for d, doc in enumerate(docs):
        spans = units.split(doc.text)
        all_spans.append(spans)
        all_units.extend(Unit(d, i, doc.text[s.start:s.end]) for i, s in enumerate(spans))
    return Segmented(tuple(all_spans), tuple(all_units))


def build(job: CompressionJob, seg: Segmented, chosen: Sequence[int]) -> tuple[Document, ...]:
    """Documents made of the chosen units, in original document and sentence order."""
    per_doc: dict[int, list[int]] = {}
    for u in sorted(chosen, key=lambda k: (seg.units[k].doc, seg.units[k].index)):
        per_doc.setdefault(seg.units[u].doc, []).append(seg.units[u].index)
    out = []
    for d, doc in enumerate(job.documents):
        if d in per_doc:
            out.append(doc.with_text(units.join(doc.text, seg.spans[d], per_doc[d])))
    return tuple(out)


def pack(job: CompressionJob, seg: Segmented, priority: Sequence[int]) -> tuple[tuple[Document, ...], dict]:
    """Greedily take units in ``priority`` order while the estimate fits, then make it exact.

    The estimate adds per-unit token counts plus the cost of a new document's title
    and separator; BPE makes the real count differ by a few tokens, so the result is
    counted exactly and the least important units are removed until it fits.
    """
    tok, fmt = job.tokenizer, job.context_format
    budget = job.budget_tokens
    sep_cost = tok.count(fmt.separator)
    chosen: list[int] = []
    opened: set[int] = set()
    used = 0
    for u in priority:
        unit = seg.units[u]
        cost = tok.count(unit.text) + 1
        if unit.doc not in opened:
            doc = job.documents[unit.doc]
            header = context.render(doc.with_text(""), fmt)
            cost += tok.count(header) + (sep_cost if opened else 0)
        if used + cost <= budget:
            chosen.append(u)
            opened.add(unit.doc)
            used += cost
    removed = 0
    docs = build(job, seg, chosen)
    while chosen and context.count(docs, fmt, tok) > budget:
        chosen.pop()  # the least important kept unit
        removed += 1
        docs = build(job, seg, chosen)
    return docs, {"units_total": len(seg.units), "units_kept": len(chosen), "exactness_removals": removed}
