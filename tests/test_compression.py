"""Budget, order, ids and verbatim-ness of every selecting method (fast, hashing embedder)."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compressors import context, registry, units, words
from middleware.errors import InvalidArgument, UnknownName
from middleware.types import Budget, CompressRequest, ContextFormat, Document, Stage

WORDS = st.sampled_from(
    "the Paris 1889 Dr. U.S. e.g. 3.14 $2,500 東京 人口 🗼 😀 naïve café ID-42x "
    "version v1.2.3 (see) [note] a, b; c: – ... ! ? \n".split(" ") + ["\n", "\n\n", "  "]
)
SENTENCE = st.lists(WORDS, min_size=0, max_size=30).map(lambda ws: " ".join(ws))
DOC_TEXT = st.lists(SENTENCE, min_size=0, max_size=8).map(lambda ss: ". ".join(ss))
DOCS = st.lists(st.tuples(st.text(max_size=12), DOC_TEXT), min_size=0, max_size=6)
FORMATS = st.sampled_from([ContextFormat(), ContextFormat(separator="\n---\n"),
                           ContextFormat(include_titles=False), ContextFormat(separator="")])


def _docs(pairs):
    return tuple(Document(id=f"d{i}", title=t, text=x, metadata={"i": i}) for i, (t, x) in enumerate(pairs))


def is_made_of_source_units(kept: str, source: str) -> bool:
    """True when ``kept`` is source units, verbatim and in order, joined by whitespace."""
    pieces = [source[s.start:s.end] for s in units.split(source)]

    @functools.lru_cache(maxsize=None)
    def match(i: int, pos: int) -> bool:
        while pos < len(kept) and kept[pos].isspace():
            pos += 1
        if pos == len(kept):
            return True
        return any(kept.startswith(pieces[j], pos) and match(j + 1, pos + len(pieces[j]))
                   for j in range(i, len(pieces)))

    return match(0, 0)


def is_made_of_source_words(kept: str, source: str) -> bool:
    """True when ``kept`` is source words (``words.spans``), verbatim and in order: its own
    words are a subsequence of the source's (leftmost matching decides it for atomic pieces)."""
    pieces = iter(source[a:b] for a, b in words.spans(source))
    return all(any(p == w for p in pieces) for w in (kept[a:b] for a, b in words.spans(kept)))


def check_invariants(req: CompressRequest, res, tokenizer, unit: str = "sentence") -> None:
    # The ceiling is never exceeded, counted exactly as reported.
    assert res.compressed_tokens <= res.budget_tokens
    assert tokenizer.count(res.context) == res.compressed_tokens
    assert res.context == context.assemble(res.documents, req.context_format)
    # Ids, titles and metadata survive; order is the input order; dropped ids complete the set.
    by_id = {d.id: (i, d) for i, d in enumerate(req.documents)}
    positions = [by_id[d.id][0] for d in res.documents]
    assert positions == sorted(positions)
    for d in res.documents:
        src = by_id[d.id][1]
        assert (d.title, dict(d.metadata)) == (src.title, dict(src.metadata))
        made_of = is_made_of_source_words if unit == "word" else is_made_of_source_units
        assert made_of(d.text, src.text), (d.text, src.text)
    assert set(res.dropped_ids) | {d.id for d in res.documents} == set(by_id)
    assert not set(res.dropped_ids) & {d.id for d in res.documents}


# Methods that keep source text. "tokens" runs the local LM: its own, smaller contract run
# is in tests/test_token_pruning.py. "abstractive" writes new text: its contract (budget,
# ids, order, no unsupported facts) runs in tests/test_abstractive.py. "soft" makes vectors
# (tests/test_soft_*.py).
FAST_METHODS = sorted(set(registry.text_methods()) - {"tokens", "abstractive"})


@pytest.mark.parametrize("method", FAST_METHODS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=DOCS, query=SENTENCE, budget=st.integers(min_value=1, max_value=400), fmt=FORMATS)
def test_every_method_meets_the_contract(fast_engine, method, pairs, query, budget, fmt):
    req = CompressRequest(query=query, documents=_docs(pairs), budget=Budget(max_tokens=budget),
                          pipeline=(Stage(method),), context_format=fmt)
    res = fast_engine.pipeline.compress(req)
    check_invariants(req, res, fast_engine.models.tokenizers.get(req.model), registry.get(method).unit)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=DOCS, ratio=st.floats(min_value=0.01, max_value=1.0))
def test_keep_ratio_budgets(fast_engine, pairs, ratio):
    req = CompressRequest(query="Paris population", documents=_docs(pairs), budget=Budget(keep_ratio=ratio))
    res = fast_engine.pipeline.compress(req)
    assert res.budget_tokens == max(1, int(res.original_tokens * ratio))
    check_invariants(req, res, fast_engine.models.tokenizers.get(req.model))


def test_no_documents(fast_engine):
    res = fast_engine.compress("anything", [], 100)
    assert (res.context, res.documents, res.dropped_ids, res.original_tokens, res.compressed_tokens) == ("", (), (), 0, 0)


def test_blank_documents_are_dropped_not_emitted(fast_engine):
    res = fast_engine.compress("q", [{"id": "a", "text": ""}, {"id": "b", "text": "  \n "}, {"id": "c", "text": "Real text."}], 50,
                               method="first")
    assert [d.id for d in res.documents] == ["c"] and set(res.dropped_ids) == {"a", "b"}


def test_empty_query_keeps_leading_sentences(fast_engine):
    docs = [{"id": "a", "title": "Alpha", "text": "Alpha opens here. Alpha goes on. Alpha closes."},
            {"id": "b", "title": "Beta", "text": "Beta opens here. Beta goes on. Beta closes."}]
    res = fast_engine.compress("", docs, 16)
    assert res.context == "Alpha\nAlpha opens here.\n\nBeta\nBeta opens here."


def test_one_huge_document(fast_engine):
    sentence = "The reactor core temperature reached 1,234.5 K at 03:14 on 2021-06-30. "
    filler = "Unrelated filler words go on and on without much meaning here. "
    text = (filler * 2000) + sentence + (filler * 2000)
    res = fast_engine.compress("reactor core temperature", [{"id": "big", "text": text}], 60)
    assert 0 < res.compressed_tokens <= 60
    assert "1,234.5 K" in res.context


def test_unbroken_run_without_spaces_is_never_cut(fast_engine):
    blob = "x" * 5000
    res = fast_engine.compress("x", [{"id": "a", "text": f"Short one. {blob} End."}], 30)
    assert blob not in res.context and res.compressed_tokens <= 30
    # The unbroken run stays one unit: it is never cut inside.
    assert blob in [f"Short one. {blob} End."[s.start:s.end] for s in units.split(f"Short one. {blob} End.")]


def test_cjk_and_emoji(fast_engine):
    docs = [{"id": "jp", "title": "東京", "text": "東京は日本の首都である。人口は約1400万人だ。🗼 東京タワーは1958年に完成した。"}]
    res = fast_engine.compress("東京の人口", docs, 25)
    assert res.compressed_tokens <= 25
    assert res.context and "東京" in res.context


def test_numbers_and_abbreviations_are_not_split():
    text = "Dr. Smith paid $3.50 on Jan. 5, 2020 in Washington D.C. for version 1.2.3. Next sentence."
    pieces = [text[s.start:s.end] for s in units.split(text)]
    assert pieces[0].endswith("version 1.2.3.") and pieces[1] == "Next sentence."


def test_unknown_method_lists_the_known_ones(fast_engine):
    with pytest.raises(UnknownName, match="unknown method 'abstractive-magic'; known: .*extractive"):
        fast_engine.compress("q", [{"text": "a."}], 10, method="abstractive-magic")


@pytest.mark.parametrize("options, message", [
    ({"min_probabilty": 0.5}, r"unknown option\(s\) \['min_probabilty'\]"),
    ({"min_probability": "high"}, "option 'min_probability' must be float"),
    ({"min_probability": 2.0}, r"min_probability must be in \[0, 1\]"),
    ({"duplicate_threshold": -1}, r"duplicate_threshold must be in \[0, 1\]"),
    ({"reorder": "yes"}, "option 'reorder' must be bool"),
])
def test_bad_options_are_named(fast_engine, options, message):
    with pytest.raises(InvalidArgument, match=message):
        fast_engine.compress("q", [{"text": "a."}], 10, pipeline=[Stage("extractive", options)])


def test_metadata_and_ids_survive(fast_engine):
    docs = [{"id": "x-1", "title": "T", "text": "Paris is big. Paris is old.", "metadata": {"url": "u", "rank": 3, "tags": ["a"]}}]
    res = fast_engine.compress("Paris", docs, 100)
    assert res.documents[0].id == "x-1" and dict(res.documents[0].metadata) == {"url": "u", "rank": 3, "tags": ["a"]}


def test_budget_smaller_than_any_sentence_returns_empty_context(fast_engine):
    res = fast_engine.compress("q", [{"id": "a", "title": "A long title here", "text": "Some sentence of several words."}], 2)
    assert res.compressed_tokens <= 2 and res.dropped_ids == ("a",)
