"""Demonstration selection in-process: pools, every strategy, the budget, the order and
the stable core prefix, compression of long inputs, and bad input.

Fast: the model-free hashing embedder (bag of words, so "nearest" means "shares the
most words") and tiktoken's o200k_base for gpt-4o budgets; pools in temporary folders.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from middleware.errors import InvalidArgument, NotFound, UnknownName
from middleware.library import Ragpress
from middleware.settings import Settings
from middleware.types import Demonstration
from retrievers.demos import packing, registry
from retrievers.demos.base import SelectionJob

# A small TREC-like pool: three questions per label, one label per question type.
POOL = [
    {"id": "h1", "input": "Who wrote the play Hamlet ?", "output": "person", "label": "person"},
    {"id": "h2", "input": "Who painted the Mona Lisa ?", "output": "person", "label": "person"},
    {"id": "h3", "input": "Who invented the telephone ?", "output": "person", "label": "person"},
    {"id": "l1", "input": "Where is the Eiffel Tower ?", "output": "location", "label": "location"},
    {"id": "l2", "input": "Where is Mount Everest ?", "output": "location", "label": "location"},
    {"id": "l3", "input": "What country is Paris the capital of ?", "output": "location", "label": "location"},
    {"id": "n1", "input": "How many legs does a spider have ?", "output": "number", "label": "number"},
    {"id": "n2", "input": "How many moons does Mars have ?", "output": "number", "label": "number"},
    {"id": "n3", "input": "How far is the Moon from the Earth ?", "output": "number", "label": "number"},
    {"id": "a1", "input": "What does NASA stand for ?", "output": "abbreviation", "label": "abbreviation"},
]

DEMOS = [Demonstration(d["id"], d["input"], d["output"], d["label"]) for d in POOL]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Ragpress(Settings(embedding_model="hashing", data_dir=str(tmp_path_factory.mktemp("demos"))))


@pytest.fixture(scope="module")
def trec(engine):
    engine.index_demonstrations("trec", POOL)
    return engine.demonstrations.pools.get("trec", "default")


def _job(pool, query: str, k: int, **kw) -> SelectionJob:
    return SelectionJob(query, pool.embed(query), pool, k, **kw)


@pytest.mark.parametrize("name", sorted(registry.strategies()))
def test_every_strategy_meets_the_contract(trec, name):
    """Known ids only, never an excluded one, no repeats, at most k wanted, deterministic."""
    job = _job(trec, "Who painted the Sistine Chapel ?", 3, exclude=frozenset({"h2"}))
    first = registry.create(name, {}).select(job)
    again = registry.create(name, {}).select(job)
    ids = [c.id for c in first.ranked]
    assert ids and set(ids) <= set(trec.ids()) and "h2" not in ids and len(ids) == len(set(ids))
    assert 0 <= first.limit <= 3 and len(ids) <= job.depth
    assert first == again


def test_similar_ranks_the_nearest_first(trec):
    ranked = registry.create("similar", {}).select(_job(trec, "Who painted the ceiling ?", 2)).ranked
    assert ranked[0].id == "h2"  # shares "Who painted the"
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_random_is_seeded_by_seed_and_input(trec):
    pick = lambda seed, q: [c.id for c in registry.create("random", {}).select(_job(trec, q, 3, seed=seed)).ranked]
    assert pick(1, "Who?") == pick(1, "Who?")
    draws = {tuple(pick(s, "Who?")) for s in range(8)} | {tuple(pick(1, f"Who {i}?")) for i in range(8)}
    assert len(draws) > 4


def test_mmr_gives_way_to_diversity(engine):
    # Three near-copies of one question and one other close question: similar takes the
    # copies, mmr takes one copy and then the other question.
    pool = engine.demonstrations.pools.inline([
        Demonstration("c1", "who wrote the famous play", "person"),
        Demonstration("c2", "who wrote the famous play again", "person"),
        Demonstration("c3", "who wrote the famous play once more", "person"),
        Demonstration("o1", "who wrote songs", "person"),
        Demonstration("x1", "how many legs", "number")])
    job = _job(pool, "who wrote the famous music", 2)
    similar = [c.id for c in registry.create("similar", {}).select(job).ranked[:2]]
    diverse = [c.id for c in registry.create("mmr", {"diversity": 0.4}).select(job).ranked[:2]]
    assert set(similar) <= {"c1", "c2", "c3"} and "o1" in diverse
    with pytest.raises(InvalidArgument, match="'diversity' must be in \\[0, 1\\]"):
        registry.create("mmr", {"diversity": 2})


def test_balanced_takes_labels_in_turn_and_needs_labels(engine, trec):
    ranked = registry.create("balanced", {}).select(_job(trec, "Who is the capital of how many ?", 6)).ranked
    labels = [trec.label_of(c.id) for c in ranked[:4]]
    assert len(set(labels)) == 4  # one of each label before any label repeats
    unlabelled = engine.demonstrations.pools.inline([Demonstration("1", "a b", "x", "A"),
                                                     Demonstration("2", "a c", "y")])
    with pytest.raises(InvalidArgument, match=r"needs a label on every demonstration.*\['2'\]"):
        registry.create("balanced", {}).select(_job(unlabelled, "a", 2))


def test_dynamic_uses_fewer_when_neighbours_agree_and_says_why(engine):
    agree = engine.demonstrations.pools.inline(
        [Demonstration(f"p{i}", f"who wrote book {i}", "person", "person") for i in range(6)]
        + [Demonstration("n1", "how many legs", "number", "number")])
    easy = registry.create("dynamic", {"agreement": 0.8, "min_demonstrations": 1}).select(
        _job(agree, "who wrote the book", 4))
    assert easy.limit == 1 and easy.details["easy"] and easy.details["majority"] == "person"
    assert "agree on 'person'" in easy.details["reason"]
    mixed = engine.demonstrations.pools.inline(
        [Demonstration(f"p{i}", f"who wrote how many {i}", "person", "person") for i in range(3)]
        + [Demonstration(f"n{i}", f"who wrote how many {i}", "number", "number") for i in range(3)])
    hard = registry.create("dynamic", {"agreement": 0.8}).select(_job(mixed, "who wrote how many", 4))
    assert hard.limit == 4 and not hard.details["easy"] and "disagree" in hard.details["reason"]
    # Without labels the neighbours vote on the output.
    outputs = engine.demonstrations.pools.inline([Demonstration(str(i), f"yes or no {i}", "yes") for i in range(4)])
    assert registry.create("dynamic", {}).select(_job(outputs, "yes or no", 3)).details["majority"] == "yes"


def test_dynamic_shows_an_easy_input_only_the_label_its_neighbours_agree_on(engine):
    pool = engine.demonstrations.pools.inline(
        [Demonstration(f"p{i}", f"who wrote book {i}", "person", "person") for i in range(5)]
        + [Demonstration("n1", "who wrote book how many", "number", "number")])
    job = _job(pool, "who wrote book", 6)
    kept = registry.create("dynamic", {"agreement": 0.7, "min_demonstrations": 3}).select(job)
    assert kept.details["easy"] and kept.limit == 3 and "of 'person'" in kept.details["reason"]
    assert {pool.label_of(c.id) for c in kept.ranked} == {"person"} and len(kept.ranked) == 5
    plain = registry.create("dynamic", {"agreement": 0.7, "min_demonstrations": 3, "consensus": False}).select(job)
    assert "n1" in {c.id for c in plain.ranked} and plain.limit == 3
    # A hard input keeps every label: the disagreement is what it needs to see.
    hard = registry.create("dynamic", {"agreement": 0.95}).select(job)
    assert not hard.details["easy"] and "n1" in {c.id for c in hard.ranked}


def test_a_pool_saved_with_another_embedder_is_embedded_again_never_mixed(tmp_path):
    from middleware import cancel
    from middleware.embedders import hashing_embedder
    from retrievers.demos.pools import DemoPools
    from retrievers.store import Collection

    Ragpress(Settings(embedding_model="hashing", data_dir=str(tmp_path))).index_demonstrations("faq", POOL)
    root = tmp_path / "demonstrations"
    narrow = DemoPools(lambda: hashing_embedder(64), root)
    # Loaded by a call already past its deadline: the one-off re-embedding still finishes.
    pool = cancel.bound(cancel.Token(deadline=0.0), lambda: narrow.get("faq", "default"))()
    assert pool.collection.embedder.name == "hashing-64" and pool.vectors(["h1", "a1"]).shape == (2, 64)
    near = pool.nearest(pool.embed("Who wrote the play Hamlet ?"), 1)
    assert near[0].id == "h1" and near[0].score == pytest.approx(1.0, abs=1e-5)
    # Saved again with the new embedder's name: a document collection's strict load accepts it as is.
    assert len(Collection.load("faq", hashing_embedder(64), root / "default" / "faq")) == len(POOL)
    with pytest.raises(InvalidArgument, match="was built with embedder 'hashing-64'.*re-index it"):
        Collection.load("faq", hashing_embedder(), root / "default" / "faq")


def test_pools_use_the_fast_embedder_and_fall_back_to_torch_without_onnx_runtime():
    from middleware.errors import Unavailable
    from middleware.models import ModelRegistry

    class NoOnnx(ModelRegistry):  # a machine without ONNX Runtime
        def onnx_embedder(self):
            raise Unavailable("the int8 ONNX MiniLM needs onnxruntime")

    settings = Settings(embedding_model="hashing")
    assert ModelRegistry(settings).fast_embedder().name == "hashing-256"
    fallback = NoOnnx(settings)
    assert fallback.fast_embedder() is fallback.embedder()
    assert Ragpress(settings).demonstrations.pools.inline(DEMOS).collection.embedder.name == "hashing-256"


@pytest.mark.slow
def test_real_pools_are_embedded_by_the_int8_onnx_minilm(real_engine):
    pool = real_engine.demonstrations.pools.inline(DEMOS)
    assert pool.collection.embedder.name.startswith("onnx-int8-v")
    assert pool.collection.embedder is real_engine.models.onnx_embedder()
    r = real_engine.select_demonstrations("Who composed the Magic Flute ?", POOL, method="similar",
                                          max_demonstrations=2)
    assert {d.label for d in r.demonstrations} == {"person"}


def test_unknown_strategy_and_option_are_named(engine):
    with pytest.raises(UnknownName, match="unknown demonstration strategy 'knn'; known: balanced, dynamic, mmr, "
                                          "random, similar"):
        engine.select_demonstrations("q", POOL, method="knn")
    with pytest.raises(InvalidArgument, match=r"method 'dynamic': unknown option\(s\) \['agree'\]"):
        engine.select_demonstrations("q", POOL, method="dynamic", options={"agree": 0.5})


def test_selection_is_rendered_in_order_nearest_last_within_budget(engine, trec):
    r = engine.select_demonstrations("Who painted the ceiling ?", pool_name="trec", max_demonstrations=3,
                                     budget=1000)
    assert len(r.demonstrations) == 3 and r.demonstrations[-1].id == "h2"
    assert list(r.scores) == sorted(r.scores)
    assert r.prompt == packing.render(r.demonstrations)
    assert r.prompt.endswith("Question: Who painted the Mona Lisa ?\nAnswer: person\n\n")
    tok = engine.models.tokenizers.get("gpt-4o")
    assert r.selected_tokens == tok.count(r.prompt) <= r.budget_tokens == 1000
    first = engine.select_demonstrations("Who painted the ceiling ?", pool_name="trec", max_demonstrations=3,
                                         order="nearest_first")
    assert first.demonstrations[0].id == "h2"


def test_a_tight_budget_skips_long_demonstrations_for_shorter_ones(engine, trec):
    # Budgets in the target's tokens (o200k): the fixed-k block costs more than the ceiling.
    r = engine.select_demonstrations("Who painted the Mona Lisa ?", pool_name="trec", max_demonstrations=4,
                                     budget=30)
    assert 0 < r.selected_tokens <= 30 < r.original_tokens
    assert r.details["skipped_for_budget"] >= 1
    share = engine.select_demonstrations("Who painted the Mona Lisa ?", pool_name="trec", max_demonstrations=4,
                                         budget=0.5)
    assert share.budget_tokens == share.original_tokens // 2 and share.selected_tokens <= share.budget_tokens


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet="ab \n0123456789é🙂", min_size=1, max_size=40), min_size=1, max_size=12),
       budget=st.integers(min_value=1, max_value=120), limit=st.integers(min_value=0, max_value=8),
       order=st.sampled_from(packing.ORDERS))
def test_packing_never_exceeds_the_budget_or_the_limit(engine, texts, budget, limit, order):
    tok = engine.models.tokenizers.get("gpt-4o")
    ranked = [packing.Candidate(Demonstration(str(i), t or "x", t[::-1]), 1.0 / (i + 1)) for i, t in enumerate(texts)]
    packed = packing.pack([], ranked, limit, budget, tok, "{input}|{output}", order)
    assert packed.tokens == tok.count(packed.text) <= budget
    assert len(packed.demonstrations) <= limit
    assert packed.text == packing.render(packed.demonstrations, "{input}|{output}")


def test_the_core_comes_first_in_canonical_order_and_its_prefix_is_stable(engine, trec):
    picks = [engine.select_demonstrations(q, pool_name="trec", core_ids=["n2", "a1"], max_demonstrations=4)
             for q in ("Who painted the ceiling ?", "Where is the Louvre ?")]
    for r in picks:
        assert [d.id for d in r.demonstrations[:2]] == ["a1", "n2"] and r.core_count == 2
        assert {"a1", "n2"}.isdisjoint(d.id for d in r.demonstrations[2:])
    tok = engine.models.tokenizers.get("gpt-4o")
    stable = picks[0].stable_prefix_tokens
    assert stable > 0 and stable == picks[1].stable_prefix_tokens
    a, b = (tok.encode(r.prompt) for r in picks)
    assert a[:stable] == b[:stable] and a[stable:] != b[stable:]
    with pytest.raises(InvalidArgument, match=r"core_ids \['zz'\] are not in pool 'trec'"):
        engine.select_demonstrations("q", pool_name="trec", core_ids=["zz"])
    with pytest.raises(InvalidArgument, match="core demonstrations alone take .* over the budget of 5"):
        engine.select_demonstrations("q", pool_name="trec", core_ids=["n2"], budget=5)


def test_long_inputs_are_compressed_by_a_registered_compressor(engine):
    long_text = ("The Eiffel Tower is in Paris. " + "It was built for a fair and painted many times over the "
                 "years by teams of workers who climbed it. " * 6 + "It is 330 metres tall.")
    pool = [{"id": "long", "input": long_text, "output": "location", "label": "location"},
            {"id": "short", "input": "Where is Rome ?", "output": "location", "label": "location"}]
    r = engine.select_demonstrations("Where is the Eiffel Tower ?", pool, max_demonstrations=2,
                                     compression="extractive", compress_above_tokens=20)
    tok = engine.models.tokenizers.get("gpt-4o")
    assert r.compressed_ids == ("long",)
    shrunk = next(d for d in r.demonstrations if d.id == "long")
    assert 0 < tok.count(shrunk.input) <= 20
    assert all(sentence.strip(". ") in long_text for sentence in shrunk.input.split(". "))  # verbatim sentences
    assert shrunk.output == "location"  # outputs are never compressed
    assert r.selected_tokens < r.original_tokens and r.details["compression"] == ["extractive"]
    assert r.method_label == "similar+extractive"
    with pytest.raises(InvalidArgument, match="compression needs compress_above_tokens"):
        engine.select_demonstrations("q", pool, compression="extractive")


def test_pools_upsert_delete_persist_and_stay_per_tenant(tmp_path):
    settings = Settings(embedding_model="hashing", data_dir=str(tmp_path))
    first = Ragpress(settings)
    assert first.index_demonstrations("faq", POOL[:3], tenant="acme").size == 3
    changed = first.index_demonstrations("faq", [dict(POOL[0], output="author")], ["h3"], tenant="acme")
    assert (changed.upserted, changed.deleted, changed.size) == (1, 1, 2)
    later = Ragpress(settings)  # a new process: the pool comes back from disk
    r = later.select_demonstrations("Who wrote Hamlet ?", pool_name="faq", tenant="acme", max_demonstrations=2)
    assert {d.id for d in r.demonstrations} == {"h1", "h2"}
    assert next(d for d in r.demonstrations if d.id == "h1").output == "author"
    with pytest.raises(NotFound, match="demonstration pool 'faq' does not exist for tenant 'other'"):
        later.select_demonstrations("q", pool_name="faq", tenant="other")
    with pytest.raises(NotFound, match="does not exist"):
        later.index_demonstrations("nope", delete_ids=["x"], tenant="acme")
    with pytest.raises(InvalidArgument, match="needs an 'id'"):
        later.index_demonstrations("faq", [{"input": "no id"}], tenant="acme")
    later.index_demonstrations("faq", delete_ids=["h1", "h2"], tenant="acme")
    with pytest.raises(InvalidArgument, match="pool 'faq' is empty"):
        later.select_demonstrations("q", pool_name="faq", tenant="acme")


@pytest.mark.parametrize("kwargs, message", [
    ({"pool": []}, "the pool is empty"),
    ({"pool": POOL, "pool_name": "trec"}, "not both"),
    ({"pool": POOL, "max_demonstrations": 999}, "max_demonstrations must be in 1..256"),
    ({"pool": POOL, "order": "sideways"}, "unknown demonstration order 'sideways'"),
    ({"pool": POOL, "template": "{question}"}, r"unknown field\(s\) \['question'\]"),
    ({"pool": [POOL[0], POOL[0]]}, "duplicate demonstration id 'h1'"),
    ({"pool": [{"input": ""}]}, "input is empty"),
    ({"pool": POOL, "core_ids": ["h1", "h1"]}, "lists an id twice"),
])
def test_bad_requests_are_invalid_argument_with_a_clear_message(engine, kwargs, message):
    pool = kwargs.pop("pool")
    with pytest.raises(InvalidArgument, match=message):
        engine.select_demonstrations("Who?", pool, **kwargs)


def test_an_empty_query_is_invalid(engine):
    with pytest.raises(InvalidArgument, match="query is required"):
        engine.select_demonstrations("  ", POOL)


def test_generate_places_the_selection_and_counts_the_fixed_k_block_as_original(engine, trec):
    from middleware.generation.generate import GenerateRequest
    from middleware.library import build_select_request

    select = build_select_request("Who painted the ceiling ?", pool_name="trec", max_demonstrations=3, budget=30)
    request = GenerateRequest(compress=engine.request("Who painted the ceiling ?", [{"text": "Ceilings are high."}],
                                                      100, model="gpt-4o"), select=select)
    prepared = engine.generator.prepare(request, tenant="default")
    chosen = prepared.demonstrations
    assert chosen.prompt and chosen.prompt in prepared.prompt.user
    assert prepared.prompt.user.startswith(chosen.prompt)  # demonstrations first: a stable prefix
    tok = engine.models.tokenizers.get("gpt-4o")
    saved = tok.count(prepared.original.text) - tok.count(prepared.prompt.text)
    assert saved == pytest.approx(chosen.original_tokens - chosen.selected_tokens, abs=2)
    with pytest.raises(NotFound):
        engine.generator.prepare(request, tenant="somebody-else")
