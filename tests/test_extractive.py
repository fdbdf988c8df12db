"""The extractive method's behaviours beyond the common contract."""

from __future__ import annotations

from compressors import units
from compressors.head import load
from middleware.types import Stage

PARIS = [
    {"id": "p", "title": "Paris", "text": "Paris is the capital of France. Paris has 2,102,650 inhabitants. "
                                          "The Seine flows through Paris."},
    {"id": "c", "title": "Cars", "text": "Cars have four wheels. Engines burn fuel. Tyres wear out."},
    {"id": "b", "title": "Bread", "text": "Bread is baked from flour. Yeast makes dough rise."},
]


def test_the_committed_head_matches_the_features():
    heads = load()
    assert heads.unit.coef.shape == heads.unit.mean.shape


def test_protected_blocks_are_single_units():
    text = ("Intro text here. More intro.\n```python\nx = 1. y = 2.\nprint(x)\n```\n"
            "| a | b |\n|---|---|\n| 1.5 | 2 |\n- item one. still item one.\n2) second item. yes.\nLast one. Really.")
    pieces = [text[s.start:s.end] for s in units.split(text)]
    assert "```python\nx = 1. y = 2.\nprint(x)\n```" in pieces
    assert "| a | b |\n|---|---|\n| 1.5 | 2 |" in pieces
    assert "- item one. still item one." in pieces and "2) second item. yes." in pieces


def test_long_sentences_are_never_cut_next_to_numbers():
    clause = "the committee met again, discussed the budget, and adjourned"
    text = ", ".join([clause] * 8) + ", on Jan. 5, 2020 at 10:30, " + ", ".join([clause] * 8) + "."
    pieces = [text[s.start:s.end] for s in units.split(text)]
    assert len(pieces) > 1
    assert any("Jan. 5, 2020 at 10:30," in p for p in pieces)


def test_near_duplicates_across_documents_are_kept_once(fast_engine):
    docs = [{"id": "a", "title": "Paris", "text": "Paris has 2,102,650 inhabitants according to the census."},
            {"id": "b", "title": "Paris again", "text": "Paris has 2,102,650 inhabitants according to the census!"}]
    res = fast_engine.compress("How many inhabitants does Paris have?", docs, 200,
                               pipeline=[Stage("extractive", {"min_probability": 0, "min_document_probability": 0})])
    assert res.context.count("2,102,650") == 1
    assert res.stages[0].details["duplicates_removed"] == 1


def test_reorder_puts_the_strongest_documents_at_the_edges(fast_engine):
    docs = PARIS + [{"id": "q", "title": "Paris museums", "text": "Paris has the Louvre museum."}]
    plain = fast_engine.compress("Paris inhabitants capital", docs, 500,
                                 pipeline=[Stage("extractive", {"min_probability": 0, "min_document_probability": 0})])
    moved = fast_engine.compress("Paris inhabitants capital", docs, 500,
                                 pipeline=[Stage("extractive", {"reorder": True, "min_probability": 0,
                                                                "min_document_probability": 0})])
    assert [d.id for d in plain.documents] == ["p", "c", "b", "q"]
    assert sorted(d.id for d in moved.documents) == sorted(d.id for d in plain.documents)
    assert moved.stages[0].details["reordered"] is True
    assert moved.compressed_tokens <= moved.budget_tokens


def test_adaptive_selection_returns_fewer_tokens_than_a_loose_budget(fast_engine):
    res = fast_engine.compress("How many inhabitants does Paris have?", PARIS, 10_000,
                               pipeline=[Stage("extractive", {"min_probability": 0.2})])
    assert "2,102,650" in res.context
    assert res.compressed_tokens < res.original_tokens
    assert res.stages[0].details["fewer_than_budget"] is True
