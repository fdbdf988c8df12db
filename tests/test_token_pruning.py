"""Token-level compression (``tokens``, ``tokens-lite``): words, force-keep, structure, markers, budget.

Fast tests run ``tokens-lite`` (no language model), which shares every step with
``tokens`` but the scorer; tests marked ``slow`` run ``tokens`` on the real SmolLM2.
"""

from __future__ import annotations

import json
import re
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compressors import keep, words
from compressors.pruning import aligned
from middleware.errors import InvalidArgument, UnknownName
from middleware.types import Budget, CompressRequest, Document, Stage
from tests.conftest import FIXTURES
from tests.test_compression import DOCS, SENTENCE, _docs, check_invariants, is_made_of_source_words

CJK = (FIXTURES / "tokens_cjk.txt").read_text(encoding="utf-8")
CONFIG = (FIXTURES / "tokens_config.json").read_text(encoding="utf-8")
NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
PROSE = ("The Apollo 11 mission landed on the Moon on July 20, 1969, carrying Neil Armstrong and Buzz Aldrin. "
         "The lunar module Eagle touched down in the Sea of Tranquility at 20:17 UTC after a descent of about 13 minutes. "
         "Armstrong stepped onto the surface six hours later and described it as one small step for a man. "
         "The crew collected 21.5 kg of lunar material and returned to Earth on July 24, splashing down in the Pacific Ocean. "
         "Millions of people around the world watched the television broadcast of the landing as it happened live.")


def lite(engine, query, docs, budget, **options):
    return engine.compress(query, docs, budget, pipeline=[Stage("tokens-lite", options)])


def numbers_intact(out: str, source: str) -> bool:
    """Every number in ``out`` occurs verbatim in ``source`` (none fused, none cut)."""
    return all(n in source for n in NUMBER.findall(out))


# --- word units --------------------------------------------------------------------------

def test_spaced_words_keep_their_punctuation_and_numbers_whole():
    text = "Paris has 2,102,650 inhabitants (2019), e.g. ID-42x at https://x.org/a?b=1."
    assert [text[a:b] for a, b in words.spans(text)] == [
        "Paris", "has", "2,102,650", "inhabitants", "(2019),", "e.g.", "ID-42x", "at", "https://x.org/a?b=1."]


def test_scripts_without_spaces_are_cut_into_characters_never_inside_one():
    pieces = [CJK[a:b] for a, b in words.spans(CJK)]
    assert "コンピュータ" in pieces and "インターネット" in pieces  # katakana runs stay whole
    assert "1,410" in pieces and "2023" in pieces and "東" in pieces
    assert "「東" in pieces and "タワー」" in pieces  # brackets stay with their neighbours
    assert "👨\u200d👩\u200d👧" in "".join(pieces)
    for a, b in words.spans(CJK):
        assert not unicodedata.category(CJK[a])[0] == "M" and CJK[a] != "\u200d", CJK[a:b]
        assert b == len(CJK) or not (unicodedata.category(CJK[b])[0] == "M" or CJK[b] in "\u200d\ufe0f"), CJK[a:b + 1]
    thai = "สวัสดีครับ"
    for a, _ in words.spans(thai):
        assert unicodedata.category(thai[a])[0] != "M"


def test_joining_never_fuses_two_numbers_or_words():
    text = "2020年5月に"
    w = words.structure(text)
    assert [w.word(i) for i in range(len(w))] == ["2020", "年", "5", "月", "に"]
    assert words.join(w, np.array([0, 2, 3])) == "2020 5月"
    # Dropping the katakana between "(" and "×" must not make a new word "(×," (HotpotQA dev, "Romeo × Juliet").
    text = "Romeo × Juliet (ロミオ×ジュリエット , Romio to Jurietto )"
    w = words.structure(text)
    keep_ = np.array([i for i in range(len(w)) if w.word(i) not in ("ロミオ", "ジュリエット")])
    out = words.join(w, keep_)
    assert out == "Romeo × Juliet ( × , Romio to Jurietto )" and is_made_of_source_words(out, text)
    w = words.structure("alpha (beta) gamma\n\ndelta")
    assert words.join(w, np.array([0, 2])) == "alpha gamma"
    assert words.join(w, np.array([0, 3])) == "alpha\n\ndelta"


def test_json_skeleton_is_one_forced_atom_and_string_words_are_free():
    w = words.structure(CONFIG)
    assert w.is_json
    skeleton = [w.word(i) for i in range(len(w)) if w.role[i] == words.FORCED]
    assert '"plate"' in skeleton and "4.5" in skeleton and "null" in skeleton and "{" in skeleton
    free = {w.word(i) for i in range(len(w)) if w.role[i] == words.FREE}
    assert {"Tracks", "fuel", "dilution", '\\"cooks\\"'} <= free
    assert json.loads(words.join(w, w.role == words.FORCED))["limits"]["max_samples"] == 1200


def test_markdown_structure_roles():
    text = "# Fuel report\n\nIntro text here.\n\n- first item words\n- second item\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode line\n```"
    w = words.structure(text)
    by = {w.word(i): (int(w.role[i]), int(w.atom[i]), int(w.item[i])) for i in range(len(w))}
    assert by["#"][0] == words.FORCED and by["#"][1] == by["report"][1] >= 0  # a heading is one forced atom
    assert by["-"][0] == words.DEPENDENT and by["|---|---|"][0] == words.DEPENDENT
    assert by["code"][1] == by["```"][1] >= 0  # a code block is one atom


# --- force-keep and markers ----------------------------------------------------------------

def test_forced_words():
    w = words.structure("The Lord of the Rings sold 150 million copies; HTTP_PROXY and fooBar are set, "
                        "He met Maria Lopez on Jan. 5 in the city of paris.")
    kept = {w.word(i) for i in np.flatnonzero(keep.forced(w))}
    assert {"Lord", "of", "the", "Rings", "150", "HTTP_PROXY", "fooBar", "Maria", "Lopez", "Jan.", "5"} <= kept
    assert not {"The", "He", "sold", "copies;", "million", "paris."} & kept


def test_unmark_and_its_errors():
    m = keep.unmark(f"a {keep.OPEN}b c{keep.CLOSE} d", "doc")
    assert m.text == "a b c d" and m.protected == ((2, 5),)
    for bad in (f"{keep.OPEN}x", f"x{keep.CLOSE}", f"{keep.OPEN}{keep.OPEN}x{keep.CLOSE}{keep.CLOSE}"):
        with pytest.raises(InvalidArgument, match="doc"):
            keep.unmark(bad, "doc")


def test_alignment_of_sentences_and_of_words():
    src = "Alpha one. Beta two three. Gamma four."
    assert aligned(src, "Alpha one. Gamma four.") == [(0, 10), (27, 38)]
    assert aligned(src, "Alpha two Gamma") == [(0, 5), (16, 19), (27, 32)]


# --- the method through the pipeline ---------------------------------------------------------

def test_prose_fills_the_budget_keeps_numbers_and_names(fast_engine):
    for budget in (25, 40, 60, 80):
        res = lite(fast_engine, "When did Apollo 11 land on the Moon?", [{"id": "a", "title": "Apollo 11", "text": PROSE}],
                   budget)
        assert budget * 0.9 <= res.compressed_tokens <= budget, (budget, res.compressed_tokens)
        out = res.documents[0].text
        assert is_made_of_source_words(out, PROSE) and numbers_intact(out, PROSE)
        if "landed" in out:  # a surviving sentence keeps all its figures and names
            assert all(t in out for t in ("Apollo", "11", "Moon", "July", "20,", "1969,"))


def test_the_budget_split_is_reported(fast_engine):
    docs = [{"id": str(i), "title": f"Doc {i}", "text": PROSE} for i in range(4)]
    res = lite(fast_engine, "How much lunar material was collected?", docs, 60)
    stages = res.stages[0].details["stages"]
    assert [s["method"] for s in stages] == ["extractive", "tokens-lite"]
    assert stages[0]["budget_tokens"] == 120 and stages[1]["budget_tokens"] == 60
    assert stages[0]["input_tokens"] == res.original_tokens and stages[1]["output_tokens"] == res.compressed_tokens
    assert stages[1]["input_tokens"] <= 120
    res = lite(fast_engine, "x", docs, 60, coarse="none")
    assert [s["method"] for s in res.stages[0].details["stages"]] == ["tokens-lite"]


def test_short_prompts_are_compressed_when_asked(fast_engine):
    text = "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911."
    res = fast_engine.compress("Which prizes?", [{"id": "a", "text": text}], Budget(keep_ratio=0.6),
                               pipeline=[Stage("tokens-lite")])
    assert 0 < res.compressed_tokens <= int(res.original_tokens * 0.6) < res.original_tokens
    assert "Curie" in res.context and numbers_intact(res.context, text)


def test_marked_spans_come_back_untouched(fast_engine):
    marked = "Do NOT change: pump pressure must stay below the red line at all times."
    text = f"{PROSE} {keep.OPEN}{marked}{keep.CLOSE} Trailing words that can go."
    res = lite(fast_engine, "When did Apollo land?", [{"id": "a", "text": text}, {"id": "b", "text": PROSE}], 40)
    assert marked in res.context and keep.OPEN not in res.context and res.compressed_tokens <= 40
    # A document the coarse step drops keeps its marked span.
    res = lite(fast_engine, "Apollo", [{"id": "a", "text": PROSE}, {"id": "z", "text": f"Bread. {keep.OPEN}Keep me.{keep.CLOSE}"}],
               30)
    assert "Keep me." in res.context
    with pytest.raises(InvalidArgument, match="marked to keep needs .* over the budget of 5"):
        lite(fast_engine, "q", [{"id": "a", "text": f"{keep.OPEN}{marked}{keep.CLOSE}"}], 5)
    with pytest.raises(InvalidArgument, match="document 'a': .* is never closed"):
        lite(fast_engine, "q", [{"id": "a", "text": f"{keep.OPEN}{marked}"}], 50)


def test_caller_patterns_and_terms(fast_engine):
    text = "The engine showed fuel dilution after many short trips, and the plate number was checked twice."
    res = lite(fast_engine, "engine", [{"id": "a", "text": text}], 9, coarse="none",
               keep_terms=["Fuel Dilution"], keep_patterns=[r"twice\."])
    assert "fuel dilution" in res.context and "twice." in res.context
    for options, message in [({"keep_patterns": ["("]}, "bad regular expression"),
                             ({"keep_terms": [3]}, "must be a list of strings"),
                             ({"keep_terms": ["x"] * 40}, "at most 32"),
                             ({"coarse_ratio": 0.5}, r"coarse_ratio must be in \[1, 100\]"),
                             ({"coarse": "tokens-lite"}, "cannot be the method itself")]:
        with pytest.raises(InvalidArgument, match=message):
            lite(fast_engine, "q", [{"id": "a", "text": text}], 9, **options)
    with pytest.raises(UnknownName, match="unknown method 'nope'"):
        lite(fast_engine, "q", [{"id": "a", "text": text}], 9, coarse="nope")


def test_json_fixture_round_trips(fast_engine):
    original = json.loads(CONFIG)
    res = lite(fast_engine, "q", [{"id": "cfg", "text": CONFIG}], 10_000)
    assert res.documents[0].text == CONFIG  # fits: untouched
    for budget in (180, 200, 240, 300):
        res = lite(fast_engine, "Which vehicle has high fuel dilution?", [{"id": "cfg", "text": CONFIG}], budget)
        assert res.compressed_tokens <= budget
        if not res.documents:
            continue
        got = json.loads(res.documents[0].text)
        assert _skeleton(got) == _skeleton(original)  # same keys, numbers, literals, list lengths
        for path, value in _strings(got):
            assert is_made_of_source_words(value, dict(_strings(original))[path])


def test_json_that_does_not_fit_is_dropped_whole(fast_engine):
    res = lite(fast_engine, "q", [{"id": "cfg", "text": CONFIG}, {"id": "p", "text": PROSE}], 60)
    assert "cfg" in res.dropped_ids and res.compressed_tokens <= 60


def test_cjk_fixture_round_trips(fast_engine):
    res = lite(fast_engine, "q", [{"id": "cjk", "text": CJK}], 10_000)
    assert res.documents[0].text == CJK
    for budget in (40, 80, 120, 200):
        res = lite(fast_engine, "東京の人口は?", [{"id": "cjk", "text": CJK}], budget)
        out = res.documents[0].text if res.documents else ""
        assert res.compressed_tokens <= budget and "\ufffd" not in out
        assert unicodedata.normalize("NFC", out) == unicodedata.normalize("NFC", out)
        assert is_made_of_source_words(out, CJK) and numbers_intact(out, CJK)
        out.encode("utf-8")


def test_markdown_structure_survives(fast_engine):
    text = ("# Fleet oil report\n\nShort trips raise fuel dilution in most engines we sampled this winter.\n\n"
            "- Truck 12 showed 4.9 percent dilution after city routes\n- Truck 7 stayed near 1.1 percent on highways\n"
            "- the remaining vans were not sampled at all this month\n\n| unit | dilution |\n|---|---|\n| 12 | 4.9 |\n\n"
            "```python\nalert = dilution > 4.5\n```\n\nOther notes about weather and drivers follow here for the record.")
    for budget in (30, 45, 60, 80):
        res = lite(fast_engine, "Which truck had high dilution?", [{"id": "m", "title": "", "text": text}], budget)
        out = res.documents[0].text if res.documents else ""
        assert res.compressed_tokens <= budget
        if out:
            assert out.startswith("# Fleet oil report")  # the heading stays whole
        for line in out.splitlines():
            assert line.strip() not in ("-", "|", "| |", "```") or line.strip() == "```" and "```python" in out
        assert ("alert = dilution > 4.5" in out) == ("```python" in out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=DOCS, query=SENTENCE, budget=st.integers(min_value=1, max_value=300))
def test_numbers_are_never_corrupted(fast_engine, pairs, query, budget):
    contract(fast_engine, Stage("tokens-lite", {"coarse": "none"}), pairs, query, budget)


def contract(engine, stage, pairs, query, budget):
    """The common contract at word level, and no number changed."""
    req = CompressRequest(query=query, documents=_docs(pairs), budget=Budget(max_tokens=budget), pipeline=(stage,))
    res = engine.pipeline.compress(req)
    check_invariants(req, res, engine.models.tokenizers.get(req.model), "word")
    for d in res.documents:
        assert numbers_intact(d.text, next(s.text for s in req.documents if s.id == d.id))


def test_composes_in_a_pipeline_after_another_method(fast_engine):
    docs = [{"id": str(i), "title": f"T{i}", "text": PROSE} for i in range(3)]
    res = fast_engine.compress("Apollo landing", docs, 50, pipeline=[Stage("bm25"), Stage("tokens-lite", {"coarse": "none"})])
    assert res.compressed_tokens <= 50 and [s.method for s in res.stages] == ["bm25", "tokens-lite"]


def _skeleton(value):
    if isinstance(value, dict):
        return {k: _skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_skeleton(v) for v in value]
    return "<str>" if isinstance(value, str) else value


def _strings(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))
    elif isinstance(value, str):
        yield path, value


# --- the LM-scored method (real SmolLM2) ------------------------------------------------------

@pytest.fixture(scope="module")
def lm_engine(smollm2):
    from middleware.library import Ragpress
    from middleware.settings import Settings
    from tests.conftest import DATA_DIR

    return Ragpress(Settings(embedding_model="hashing", data_dir=str(DATA_DIR), local_device="cpu",
                             local_threads=1))


@pytest.mark.slow
def test_batched_prefix_scores_equal_one_full_pass(smollm2):
    import torch

    from middleware.llm.scoring import segment_logprobs

    tok = smollm2.tokenizer
    prefix = tok.encode("Question: where is Paris?\n", add_special_tokens=False)
    segments = [tok.encode(t, add_special_tokens=False) for t in
                ("Paris is the capital of France.", "Bread is baked from flour and water in an oven.", "x", "")]
    got = segment_logprobs(smollm2, prefix, segments, batch_tokens=24)  # several batches, right-padded
    assert len(got[3]) == 0
    with torch.inference_mode():
        for seg, lp in zip(segments[:3], got):
            ids = torch.tensor([prefix + seg])
            full = torch.log_softmax(smollm2.model(input_ids=ids).logits[0].float(), -1)
            want = full[len(prefix) - 1:-1].gather(-1, ids[0, len(prefix):, None])[:, 0].numpy()
            assert np.allclose(lp, want, atol=1e-3)
    with pytest.raises(InvalidArgument):
        segment_logprobs(smollm2, [], segments)


@pytest.mark.slow
def test_tokens_scores_every_word_and_meets_the_budget(lm_engine):
    res = lm_engine.compress("When did Apollo 11 land?", [{"id": "a", "title": "Apollo 11", "text": PROSE},
                                                         {"id": "cjk", "title": "東京", "text": CJK}], 90,
                             pipeline=[Stage("tokens", {"window": 32})])
    assert 80 <= res.compressed_tokens <= 90
    for d in res.documents:
        src = PROSE if d.id == "a" else CJK
        assert is_made_of_source_words(d.text, src) and numbers_intact(d.text, src)
    from compressors.tokens import TokensCompressor, TokensOptions
    from compressors.pruning import Prepared

    method = TokensCompressor(TokensOptions(window=16), lm_engine.models)
    w = words.structure(CJK)
    prepared = Prepared(Document(id="c", text=CJK, title="東京"), w, np.ones(len(w), bool), np.zeros(len(w), bool))
    from compressors.base import CompressionJob

    info = method.lm_information(CompressionJob("q", (prepared.doc,), 10, lm_engine.models.tokenizers.get("gpt-4o")),
                              [prepared])[0]
    assert (info > 0).all()  # every word, CJK characters and emoji included, got its tokens' scores


@pytest.mark.slow
def test_tokens_round_trips_the_fixtures(lm_engine):
    original = json.loads(CONFIG)
    for budget in (200, 260):
        res = lm_engine.compress("Which vehicle has high dilution?", [{"id": "cfg", "text": CONFIG}], budget,
                                 method="tokens")
        got = json.loads(res.documents[0].text)
        assert _skeleton(got) == _skeleton(original) and res.compressed_tokens <= budget
    res = lm_engine.compress("東京の人口は?", [{"id": "cjk", "text": CJK}], 80, method="tokens")
    out = res.documents[0].text
    assert res.compressed_tokens <= 80 and is_made_of_source_words(out, CJK) and numbers_intact(out, CJK)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=DOCS, query=SENTENCE, budget=st.integers(min_value=1, max_value=200))
def test_tokens_meets_the_contract(lm_engine, pairs, query, budget):
    contract(lm_engine, Stage("tokens", {"coarse": "tokens-lite"}), pairs, query, budget)
