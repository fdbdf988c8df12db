"""The abstractive method's own logic, with a scripted summariser standing in for the model.

The summariser is a fake that meets the :class:`compressors.summarizers.Summarizer`
contract and returns the text a test gives it; everything else is real (the
extractive selector on the hashing embedder, the guard, attribution, the exact
target tokenizer, the pipeline, the cache, the usage ledger in SQLite). The model
paths run for real in test_abstractive_models.py (slow).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compressors import context, faithfulness, registry
from compressors.abstractive import AbstractiveCompressor, AbstractiveOptions
from compressors.base import CompressionJob
from compressors.summarizers import Summarizer, Summary
from compressors.summary_cache import SummaryCache
from middleware import convert
from middleware.errors import InvalidArgument
from middleware.types import Budget, CompressorUsage, CompressRequest, Document, Stage

QUERY = "How many people live in Paris, and who designed the Eiffel Tower?"
DOCS = (
    Document(id="paris", title="Paris", text="Paris is the capital of France. It has 2,102,650 inhabitants. "
             "The Seine flows through it.", metadata={"url": "https://example.org/paris"}),
    Document(id="tower", title="Eiffel Tower", text="The Eiffel Tower is in Paris. It was designed by the company "
             "of Gustave Eiffel and finished in 1889. It is 330 metres tall."),
    Document(id="bread", title="Bread", text="Bread is baked from flour. Baguettes are long."),
)


class ScriptedSummarizer(Summarizer):
    """Returns the text it was given, and records what it was asked."""

    def __init__(self, text: str, model: str = "fake/scripted", cost_usd: float = 0.0) -> None:
        self.text = text
        self.model = model
        self.cost_usd = cost_usd
        self.calls: list[tuple[list, int, float | None, str]] = []

    def count(self, text: str) -> int:
        return len(text.split())

    def summarize(self, messages, max_new_tokens, deadline, source=""):
        self.calls.append((list(messages), max_new_tokens, deadline, source))
        return Summary(self.text, self.model, 120, 30, self.cost_usd, "stop")


from test_compression import DOCS as DOC_PAIRS, FORMATS, SENTENCE, _docs  # noqa: E402


@pytest.fixture(scope="module")
def models(fast_engine):
    return fast_engine.models


@pytest.fixture(scope="module")
def tok(models):
    return models.tokenizers.get("gpt-4o")


def compressor(models, text: str, store: SummaryCache | None = None,
               **options) -> tuple[AbstractiveCompressor, ScriptedSummarizer]:
    fake = ScriptedSummarizer(text, cost_usd=options.pop("cost_usd", 0.0))
    comp = AbstractiveCompressor(AbstractiveOptions(**options), fake, registry.create("extractive", {}, models),
                                 store)
    return comp, fake


def job(tok, budget=60, docs=DOCS, query=QUERY, deadline=None) -> CompressionJob:
    return CompressionJob(query, tuple(docs), budget, tok, deadline=deadline)


def test_a_faithful_summary_is_attributed_to_its_documents(models, tok):
    comp, fake = compressor(models, "Paris has 2,102,650 inhabitants. The company of Gustave Eiffel designed "
                                    "the Eiffel Tower, finished in 1889.", cost_usd=0.0004)
    out = comp.compress(job(tok, deadline=123.0))
    ids = [d.id for d in out.documents]
    assert ids == ["paris", "tower"]
    assert out.documents[0].text == "Paris has 2,102,650 inhabitants."
    assert out.documents[0].metadata["url"] == "https://example.org/paris" and out.documents[1].title == "Eiffel Tower"
    d = out.details
    assert d["outcome"] == "passed" and d["guard"]["facts_checked"] >= 4 and d["relevant"] is True
    assert [a["documents"][0] for a in d["attribution"]] == ["paris", "tower"]
    assert out.usage == CompressorUsage("fake/scripted", 120, 30, 0.0004)
    # The summariser read the documents and the question, and got the caller's deadline.
    messages, max_new, deadline, source = fake.calls[0]
    assert QUERY in messages[-1]["content"] and "2,102,650" in source and deadline == 123.0
    assert context.count(out.documents, job(tok).context_format, tok) <= 60


def test_sentences_with_invented_facts_are_dropped_and_reported(models, tok):
    comp, _ = compressor(models, "Paris has 2,102,650 inhabitants. Paris had 3 million visitors in 1999. "
                                 "Gustave Eiffel's company designed the tower with Napoleon.")
    out = comp.compress(job(tok))
    text = " ".join(d.text for d in out.documents)
    assert "2,102,650" in text and "3 million" not in text and "Napoleon" not in text
    guard = out.details["guard"]
    assert out.details["outcome"] == "repaired" and guard["sentences_dropped"] == 2
    assert {"kind": "name", "text": "Napoleon"} in guard["unsupported"]
    assert {"kind": "number", "text": "3 million"} in guard["unsupported"]


def test_a_summary_with_nothing_faithful_is_replaced_by_extractive(models, tok):
    comp, _ = compressor(models, "Berlin has 3,850,809 inhabitants. It was founded in 1237.")
    out = comp.compress(job(tok))
    assert out.details["outcome"] == "replaced" and out.details["replaced_by"] == "extractive"
    assert "the documents lack" in out.details["reason"]
    # Extractive output: verbatim sentences of the input.
    originals = {d.id: d.text for d in DOCS}
    assert out.documents and all(s in originals[d.id] for d in out.documents for s in d.text.split(". ")[:1])
    assert "Berlin" not in " ".join(d.text for d in out.documents)


def test_on_unfaithful_extractive_replaces_at_the_first_unsupported_fact(models, tok):
    comp, _ = compressor(models, "Paris has 2,102,650 inhabitants. It was founded in 1237.",
                         on_unfaithful="extractive")
    out = comp.compress(job(tok))
    assert out.details["outcome"] == "replaced" and "1237" not in " ".join(d.text for d in out.documents)


def test_a_summary_that_finds_nothing_relevant_gives_an_empty_output(models, tok):
    comp, _ = compressor(models, "NONE")
    out = comp.compress(job(tok, query="What is the boiling point of xenon?"))
    assert out.documents == () and out.details["relevant"] is False
    assert "nothing" in out.details["reason"]
    comp, _ = compressor(models, "The documents do not mention xenon.")
    assert comp.compress(job(tok, query="What is the boiling point of xenon?")).documents == ()


def test_no_text_means_no_summary_and_no_call(models, tok):
    comp, fake = compressor(models, "Paris has 2,102,650 inhabitants.")
    out = comp.compress(job(tok, docs=[Document(id="e", text="   ")]))
    assert out.documents == () and out.details["reason"] == "no document has text" and not fake.calls


@pytest.mark.parametrize("budget", [12, 20, 35, 60, 100])
def test_the_output_never_exceeds_the_budget(models, tok, budget):
    long = " ".join(["Paris has 2,102,650 inhabitants.", "Paris is the capital of France.",
                     "The Seine flows through Paris.", "The Eiffel Tower is in Paris.",
                     "The Eiffel Tower was finished in 1889.", "The Eiffel Tower is 330 metres tall."] * 2)
    comp, fake = compressor(models, long)
    out = comp.compress(job(tok, budget=budget))
    assert context.count(out.documents, job(tok).context_format, tok) <= budget
    if out.details.get("outcome") != "replaced":
        assert out.details["sentences_trimmed"] > 0
    # The generation length follows the budget (converted to the summariser's tokens), capped.
    assert 4 <= fake.calls[0][1] <= 128


def test_generation_length_grows_with_the_budget_and_respects_the_cap(models, tok):
    lengths = []
    for budget in (40, 80, 160, 2000):
        comp, fake = compressor(models, "Paris has 2,102,650 inhabitants.", max_new_tokens=100)
        comp.compress(job(tok, budget=budget))
        lengths.append(fake.calls[0][1])
    assert lengths == sorted(lengths) and lengths[0] < lengths[2] and lengths[-1] == 100


def test_each_mode_summarises_every_relevant_document_on_its_own(models, tok):
    comp, fake = compressor(models, "Paris has 2,102,650 inhabitants.", mode="each")
    out = comp.compress(job(tok, budget=80))
    assert len(fake.calls) == out.details["summaries"] >= 2
    assert all(call[3].count("\n") <= 1 for call in fake.calls)  # one titled document each
    # Only the Paris call's source states the figure: the other documents' copies fail the guard.
    assert [d.id for d in out.documents] == ["paris"] and out.details["outcome"] == "repaired"


def test_the_cache_answers_a_repeated_request_without_calling_the_summariser(models, tok):
    cache = SummaryCache(entries=8)
    comp, fake = compressor(models, "Paris has 2,102,650 inhabitants.", store=cache, cost_usd=0.001)
    first = comp.compress(job(tok))
    again = comp.compress(job(tok))
    assert len(fake.calls) == 1 and len(cache) == 1
    assert again.documents == first.documents and first.details["cache"] == "miss" and again.details["cache"] == "hit"
    assert again.usage == CompressorUsage("fake/scripted", cached=True) and first.usage.cost_usd == 0.001
    # Anything the output depends on is in the key: query, budget, documents.
    comp.compress(job(tok, query="Who lives in Paris?"))
    comp.compress(job(tok, budget=61))
    comp.compress(job(tok, docs=DOCS[:2]))
    assert len(fake.calls) == 4
    off, fake_off = compressor(models, "Paris has 2,102,650 inhabitants.", store=cache, cache=False)
    assert off.compress(job(tok)).details["cache"] == "off" and len(fake_off.calls) == 1


def test_the_summary_cache_is_bounded_lru():
    cache = SummaryCache(entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    off = SummaryCache(entries=0)
    off.put("a", 1)
    assert off.get("a") is None
    with pytest.raises(ValueError):
        SummaryCache(entries=-1)


@pytest.mark.parametrize("options, fragment", [
    ({"mode": "sometimes"}, "mode"),
    ({"fallback": "pray"}, "fallback"),
    ({"on_unfaithful": "ignore"}, "on_unfaithful"),
    ({"max_new_tokens": 2}, "max_new_tokens"),
    ({"copy_bias": 50}, "copy_bias"),
    ({"temperature": 0.7}, "unknown option"),
    ({"summarizer": 3}, "summarizer"),
])
def test_bad_options_are_invalid_argument_before_any_model_loads(models, options, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        registry.create("abstractive", options, models)


@pytest.fixture
def scripted_method(models):
    fakes = []

    @registry.register("abstractive-scripted", "test double: abstractive with a scripted summariser")
    def factory(options, registry_models):
        fake = ScriptedSummarizer(options.get("text", ""))
        fakes.append(fake)
        return AbstractiveCompressor(AbstractiveOptions(), fake, registry.create("extractive", {}, registry_models),
                                     None)

    yield fakes
    registry.unregister("abstractive-scripted")


def test_pipeline_extractive_to_a_generous_budget_then_abstractive(fast_engine, scripted_method):
    text = "The Eiffel Tower was finished in 1889. Paris is the capital of France."
    request = CompressRequest(QUERY, DOCS, Budget(max_tokens=30), pipeline=(
        Stage("extractive", budget=Budget(max_tokens=300)), Stage("abstractive-scripted", {"text": text})))
    kept = fast_engine.pipeline.compress(dataclasses.replace(request, budget=Budget(max_tokens=300),
                                                             pipeline=(Stage("extractive"),)))
    result = fast_engine.pipeline.compress(request, deadline=None)
    first, second = result.stages
    assert first.output_tokens == kept.compressed_tokens > 30 >= second.output_tokens == result.compressed_tokens
    assert second.usage is not None and second.usage.model == "fake/scripted"
    assert "1889" in result.context and [d.id for d in result.documents] == ["paris", "tower"]
    # The summariser read what the first stage kept, not the raw input.
    assert scripted_method[0].calls[0][3] == kept.context
    # The last stage never gets more than the request's ceiling, whatever it asks.
    request = CompressRequest(QUERY, DOCS, Budget(max_tokens=20), pipeline=(
        Stage("abstractive-scripted", {"text": text}, budget=Budget(max_tokens=500)),))
    assert fast_engine.pipeline.compress(request).compressed_tokens <= 20


def test_stage_budget_and_compressor_usage_travel_over_the_wire():
    request = CompressRequest(QUERY, DOCS, Budget(max_tokens=30), pipeline=(
        Stage("extractive", budget=Budget(max_tokens=300)), Stage("abstractive", {"mode": "each"})))
    back = convert.compress_request_from_pb(convert.compress_request_to_pb(request), _settings())
    assert back.pipeline == request.pipeline
    from middleware.types import CompressResult, StageStats

    result = CompressResult(documents=DOCS[:1], dropped_ids=("tower",), context="c", original_tokens=10,
                            compressed_tokens=5, budget_tokens=6, model="gpt-4o", tokenizer="o200k_base",
                            stages=(StageStats("abstractive", 10, 5, 1.5, {"outcome": "passed"},
                                               CompressorUsage("openai/gpt-4o-mini", 100, 20, 0.0002)),
                                    StageStats("extractive", 10, 5, 1.0, {})))
    again = convert.compress_result_from_pb(convert.compress_result_to_pb(result))
    assert again.stages[0].usage == result.stages[0].usage and again.stages[1].usage is None


def _settings():
    from middleware.settings import Settings

    return Settings()


def test_the_ledger_counts_the_summarisers_dollars_as_the_compressors_cost(tmp_path):
    from middleware.accounting import Recorder, UsageQuery
    from middleware.settings import Settings
    from middleware.types import CompressResult, StageStats

    rec = Recorder(Settings(data_dir=str(tmp_path), compute_usd_per_hour=0.0))
    result = CompressResult(documents=DOCS[:1], dropped_ids=(), context="c", original_tokens=1000,
                            compressed_tokens=100, budget_tokens=100, model="gpt-4o", tokenizer="o200k_base",
                            stages=(StageStats("extractive", 1000, 300, 10.0, {}),
                                    StageStats("abstractive", 300, 100, 900.0, {},
                                               CompressorUsage("openai/gpt-4o-mini", 400, 60, 0.0042))))
    rec.record_compress(result)
    assert rec.flush(60)
    (row,) = rec.query(UsageQuery(group_by=("method",)))
    assert row.group["method"] == "extractive+abstractive"
    assert row.compute_usd == pytest.approx(0.0042)
    assert row.net_saved_usd == pytest.approx(row.saved_usd - 0.0042)
    value = rec.metrics.registry.get_sample_value
    labels = {"method": "abstractive", "model": "openai/gpt-4o-mini"}
    assert value("ragpress_compressor_model_tokens_total", {**labels, "kind": "prompt"}) == 400
    assert value("ragpress_compressor_model_tokens_total", {**labels, "kind": "completion"}) == 60
    rec.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=DOC_PAIRS, query=SENTENCE, summary=st.lists(SENTENCE, max_size=6), budget=st.integers(1, 300),
       fmt=FORMATS)
def test_the_abstractive_contract(fast_engine, pairs, query, summary, budget, fmt):
    """Whatever the summariser writes: never over budget, ids/titles/metadata/order kept,
    and every sentence returned is either the source's own or has no unsupported fact."""
    text = ". ".join(summary)
    comp, _ = compressor(fast_engine.models, text)
    docs = _docs(pairs)
    tok = fast_engine.models.tokenizers.get("gpt-4o")
    out = comp.compress(CompressionJob(query, docs, budget, tok, fmt))
    result_tokens = context.count(out.documents, fmt, tok)
    assert result_tokens <= budget
    position = {d.id: i for i, d in enumerate(docs)}
    assert [position[d.id] for d in out.documents] == sorted(position[d.id] for d in out.documents)
    by_id = {d.id: d for d in docs}
    for d in out.documents:
        assert (d.title, dict(d.metadata)) == (by_id[d.id].title, dict(by_id[d.id].metadata))
    if out.details.get("outcome") in ("passed", "repaired"):
        source = faithfulness.index(f"{d.title}\n{d.text}" for d in docs)
        for item in out.details["attribution"]:
            assert faithfulness.check(item["text"], source).ok, item
            assert item["documents"] and set(item["documents"]) <= set(by_id)


def test_settings_and_batch_lines_carry_the_new_knobs():
    from middleware.batch import BatchDefaults, parse_line
    from middleware.settings import Settings

    with pytest.raises(InvalidArgument, match="summary_cache_entries"):
        Settings.from_mapping({"summary_cache_entries": -1})
    assert Settings.from_mapping({"summary_cache_entries": "0"}).summary_cache_entries == 0
    line = {"query": "q", "documents": [{"text": "t"}], "target_tokens": 50,
            "pipeline": [{"method": "extractive", "target_tokens": 300}, {"method": "abstractive", "keep_ratio": 0.5}]}
    request = parse_line(line, BatchDefaults())
    assert [s.budget for s in request.pipeline] == [Budget(max_tokens=300), Budget(keep_ratio=0.5)]


def test_backfill_adds_verbatim_sentences_in_the_room_the_summary_leaves(models, tok):
    comp, _ = compressor(models, "The Eiffel Tower was finished in 1889.", backfill=True)
    plain, _ = compressor(models, "The Eiffel Tower was finished in 1889.")
    out, bare = comp.compress(job(tok, budget=80)), plain.compress(job(tok, budget=80))
    assert out.details["backfilled_tokens"] > 0
    assert context.count(out.documents, job(tok).context_format, tok) <= 80
    assert context.count(bare.documents, job(tok).context_format, tok) < context.count(
        out.documents, job(tok).context_format, tok)
    tower = next(d for d in out.documents if d.id == "tower")
    assert tower.text.startswith("The Eiffel Tower was finished in 1889. ")
    # What was added is the documents' own sentences.
    originals = {d.id: d.text for d in DOCS}
    extra = " ".join(d.text for d in out.documents).replace("The Eiffel Tower was finished in 1889.", "")
    assert all(s.strip(". ") in " ".join(originals.values()) for s in extra.split(". ") if s.strip(". "))
