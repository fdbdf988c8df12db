"""The extractive method's behaviours beyond the common contract."""

from __future__ import annotations

import numpy as np
import pytest

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
    from compressors import features

    heads = load()
    for head_, names in ((heads.doc1, features.DOC_FEATURES_1), (heads.doc2, features.DOC_FEATURES_2),
                         (heads.pair, features.PAIR_FEATURES), (heads.unit, features.UNIT_FEATURES)):
        assert head_.names == names
        p = head_(np.zeros((3, len(names)), np.float32))
        assert p.shape == (3,) and np.all((p > 0) & (p < 1))


def test_trees_exported_from_scikit_learn_predict_what_scikit_learn_predicts():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from compressors.trees import Forest

    rng = np.random.default_rng(0)
    x = rng.random((400, 4))
    y = ((x[:, 0] > 0.5) & (x[:, 2] < 0.7) | (rng.random(400) < 0.1)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, max_depth=3, random_state=0).fit(x, y)
    forest = Forest.from_json(Forest.from_sklearn(model, ("a", "b", "c", "d")).to_json(), ("a", "b", "c", "d"))
    probe = rng.random((50, 4))
    assert np.allclose(forest(probe), model.predict_proba(probe)[:, 1], atol=1e-6)
    assert forest(np.zeros((0, 4))).shape == (0,)
    with pytest.raises(RuntimeError, match="retrain"):
        Forest.from_json(forest.to_json(), ("a", "b"))


def test_averaged_forests_predict_the_mean_of_their_logits():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from compressors.trees import Forest

    rng = np.random.default_rng(1)
    x = rng.random((300, 3))
    y = ((x[:, 0] + 0.3 * x[:, 1] > 0.6) | (rng.random(300) < 0.1)).astype(int)
    names = ("a", "b", "c")
    # different depths and sizes, so that the tables are padded to one width
    forests = [Forest.from_sklearn(HistGradientBoostingClassifier(max_iter=m, max_depth=d, random_state=0)
                                   .fit(x, y, sample_weight=rng.poisson(1.0, 300).astype(float)), names)
               for m, d in ((10, 2), (25, 3), (5, 4))]
    probe = rng.random((40, 3))
    mean = np.mean([f.logit(probe) for f in forests], axis=0)
    bagged = Forest.from_json(Forest.average(forests).to_json(), names)
    assert bagged.feature.shape[0] == 40
    assert np.allclose(bagged.logit(probe), mean, atol=1e-5)
    assert not np.allclose(forests[0].logit(probe), mean, atol=1e-3)
    with pytest.raises(ValueError, match="no forests"):
        Forest.average([])
    with pytest.raises(ValueError, match="different features"):
        Forest.average([forests[0], Forest.from_json(forests[1].to_json() | {"features": ["x", "y", "z"]},
                                                     ("x", "y", "z"))])


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


# A two-hop question: the festival's document names the town; only the town's
# document holds the answer, and it shares few words with the question. The
# distractors share more of the question's words but name no other document.
BRIDGE = [
    {"id": "d1", "title": "River festivals", "text": "A river festival is a town festival held on a river. "
                                                     "Such festivals draw crowds to the river bank of a town."},
    {"id": "a", "title": "Zorblat Festival", "text": "The Zorblat Festival is an annual music festival. "
                                                     "It is held every summer in Quenton."},
    {"id": "d2", "title": "Rivers of Hallam", "text": "Many rivers flow through the towns of Hallam. "
                                                      "A festival is held where two rivers meet."},
    {"id": "b", "title": "Quenton", "text": "Quenton is a market town in Hallam. "
                                            "The river Marrow runs through it, and it has three bridges."},
    {"id": "d3", "title": "Town festival", "text": "A town festival is held in a town. Music and a river "
                                                   "parade are common at a festival."},
]
BRIDGE_QUERY = "Which river flows through the town where the Zorblat Festival is held?"


def test_pair_shares_form_a_posterior_over_pairs():
    from compressors import features

    share = features.pair_marginals(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
                                    np.array([3.0, 1.0, 0.0, 0.0, 0.0, -1.0], np.float32))
    assert share.sum() == pytest.approx(2.0, abs=1e-5)  # every pair gives its mass to two documents
    assert share[0] > share[1] > share[2] > share[3]
    assert features.pair_marginals(1, [], np.zeros(0, np.float32)).tolist() == [1.0]


def test_the_second_hop_is_found_through_the_document_that_names_it(fast_engine):
    from compressors import features, head, packing
    from compressors.base import CompressionJob

    req = fast_engine.request(BRIDGE_QUERY, BRIDGE, 60)
    job = CompressionJob(req.query, req.documents, 60, fast_engine.models.tokenizers.get(req.model))
    ctx = features.prepare(job, packing.segment(req.documents), fast_engine.models.static_embedder().embed)
    # The fast heads show the mechanism (the default heads already rank the answer's document high alone).
    p_doc, share, soft = load(head.FAST_PATH).documents(ctx)
    ids = [d.id for d in req.documents]
    assert {ids[i] for i in np.argsort(-share)[:2]} == {"a", "b"}
    assert {ids[i] for i in np.argsort(-soft)[:2]} == {"a", "b"} and soft.max() < share.max()
    # Alone, the answer's document ranks below a distractor; the pair lifts it.
    assert p_doc[ids.index("b")] < max(p_doc[ids.index(d)] for d in ("d1", "d2", "d3"))
    res = fast_engine.compress(BRIDGE_QUERY, BRIDGE, 60)
    assert "Marrow" in res.context and "Quenton" in res.context


def test_only_the_likeliest_documents_are_paired(fast_engine):
    from compressors import features, packing
    from compressors.base import CompressionJob

    filler = [{"id": f"f{i}", "title": f"Filler {i}", "text": f"Filler page {i} is about pottery glaze number {i}."}
              for i in range(40)]
    req = fast_engine.request(BRIDGE_QUERY, filler[:20] + BRIDGE + filler[20:], 60)
    job = CompressionJob(req.query, req.documents, 60, fast_engine.models.tokenizers.get(req.model))
    ctx = features.prepare(job, packing.segment(req.documents), fast_engine.models.static_embedder().embed)
    p_doc, share, _ = load().documents(ctx)
    pairs, _ = features.pair_features(ctx, p_doc)
    n = features.PAIR_CANDIDATES
    assert len(pairs) == n * (n - 1) // 2
    assert int((share > 0).sum()) == n
    ids = [d.id for d in req.documents]
    assert {ids[i] for i in np.argsort(-share)[:2]} == {"a", "b"}


def test_titles_that_are_only_a_qualifier_or_punctuation_are_no_titles(fast_engine):
    docs = [{"id": "q", "title": "(2015 film)", "text": "The film was released in 2015 to mixed reviews."},
            {"id": "p", "title": "!!!", "text": "Quenton is a market town on the river Marrow."},
            {"id": "e", "title": "", "text": "The Zorblat Festival is held in Quenton every summer."}]
    res = fast_engine.compress(BRIDGE_QUERY, docs, 40)
    assert 0 < res.compressed_tokens <= 40
    assert "Marrow" in res.context


NQ_LIKE = [
    {"id": f"x{k}", "title": f"Album {k}", "text": f"Album {k} was recorded in a studio. The band toured in spring."}
    for k in range(6)
] + [{"id": "gold", "title": "Rip It Up", "text": "Rip It Up is an album. It was sung by the band Orange Juice."}]
NQ_QUERY = "who sang rip it up and start again album band"


def _with_rerank():
    """The committed cheap heads plus a rerank head that follows the transformer's lead cosine alone."""
    import dataclasses

    from compressors import rerank
    from compressors.head import Logistic

    names = rerank.RERANK_FEATURES
    coef = np.array([5.0 if n == "doc_dense" else 0.0 for n in names], np.float32)
    ones = np.ones(len(names), np.float32)
    return dataclasses.replace(load(), rerank=Logistic(names, ones * 0, ones, coef, 0.0))


def _nq_job(engine, budget=60):
    from compressors import packing
    from compressors.base import CompressionJob

    req = engine.request(NQ_QUERY, NQ_LIKE, budget)
    return CompressionJob(req.query, req.documents, budget, engine.models.tokenizers.get(req.model)), \
        packing.segment(req.documents)


def test_the_transformer_reads_the_leads_of_the_likeliest_documents_and_reorders_only_their_units(fast_engine):
    from compressors import rerank

    job, seg = _nq_job(fast_engine)
    gold_doc = next(d for d, doc in enumerate(job.documents) if doc.id == "gold")
    calls = []

    def oracle(texts):  # the query and the gold passage's lead share a vector; every other text is orthogonal
        calls.append(list(texts))
        out = np.zeros((len(texts), 3), np.float32)
        for i, t in enumerate(texts):
            out[i, 0 if (i == 0 or t.startswith("Rip It Up:")) else 1 + i % 2] = 1.0
        return out

    heads, embed = _with_rerank(), fast_engine.models.static_embedder().embed
    cheap = heads.score(job, seg, embed)
    k = int(np.flatnonzero(np.argsort(-cheap.doc, kind="stable") == gold_doc)[0]) + 2
    read = heads.score(job, seg, embed, oracle, rerank.Reading(k))
    assert cheap.reranked == 0 and read.reranked == k and len(calls) == 1 and len(calls[0]) == 1 + k
    assert all(len(t.split(": ", 1)[1].split()) <= heads.lead_words for t in calls[0][1:])
    chosen = set(np.argsort(-cheap.doc, kind="stable")[:k].tolist())
    n = sum(seg.units[int(i)].doc in chosen for i in read.order)
    assert {seg.units[int(i)].doc for i in read.order[:n]} == chosen
    assert read.order[n:].tolist() == [int(i) for i in cheap.order if seg.units[int(i)].doc not in chosen]
    assert seg.units[int(read.order[0])].doc == gold_doc
    assert sorted(read.order.tolist()) == list(range(len(seg.units)))


def test_a_lead_is_the_title_and_the_first_words():
    from compressors import rerank
    from compressors.base import CompressionJob
    from middleware.types import Document

    docs = (Document(id="a", text=" ".join(f"w{i}" for i in range(100)), title="T"), Document(id="b", text="x y"))
    job = CompressionJob("q", docs, 10, None)
    assert rerank.lead(job, 0, 3) == "T: w0 w1 w2"
    assert rerank.lead(job, 1) == "x y"


def test_the_reading_takes_the_likeliest_documents_then_more_only_where_still_likely():
    from compressors import rerank

    prob = np.array([0.1, 0.9, 0.5, 0.02, 0.3, 0.001, 0.016], np.float32)
    assert rerank.Reading(2).choose(prob).tolist() == [1, 2]
    # 2 always, then up to 3 more at >= 0.015: 0.3, 0.1 and 0.02 qualify, 0.016 is a fourth (no room)
    assert rerank.Reading(2, 3, 0.015).choose(prob).tolist() == [1, 2, 4, 0, 3]
    assert rerank.Reading(2, 3, 0.2).choose(prob).tolist() == [1, 2, 4]
    assert rerank.Reading(5, 4, 0.015).choose(prob).tolist() == [1, 2, 4, 0, 3, 6]
    assert rerank.Reading(10, 4, 0.0).choose(prob).tolist() == [1, 2, 4, 0, 3, 6, 5]
    assert rerank.Reading(0, 4, 0.0).choose(prob).tolist() == [1, 2, 4, 0]


def test_rerank_documents_is_bounded(fast_engine):
    from middleware.errors import InvalidArgument

    for bad in (-1, 10_000):
        with pytest.raises(InvalidArgument, match="rerank_documents"):
            fast_engine.compress(NQ_QUERY, NQ_LIKE, 80, pipeline=[Stage("extractive", {"rerank_documents": bad})])
    res = fast_engine.compress(NQ_QUERY, NQ_LIKE, 80, pipeline=[Stage("extractive", {"rerank_documents": 0})])
    assert res.stages[0].details["reranked"] == 0


@pytest.mark.slow
def test_the_int8_onnx_minilm_agrees_with_sentence_transformers(real_engine):
    texts = ["who sang rip it up and start again",
             "Rip It Up: Rip It Up is the second album by Scottish post-punk band Orange Juice.",
             "Driver's license: Karl Benz had to receive written permission to operate his car."]
    fast, full = real_engine.models.onnx_embedder().embed(texts), real_engine.models.embedder().embed(texts)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    assert np.all(np.sum(fast * full, axis=1) > 0.9)  # int8 weights move vectors a little, not their meaning
    assert (fast[1] @ fast[0] > fast[2] @ fast[0]) and (full[1] @ full[0] > full[2] @ full[0])


@pytest.mark.slow
def test_a_texts_int8_vector_does_not_depend_on_what_is_embedded_beside_it(real_engine):
    onnx = real_engine.models.onnx_embedder()
    query = "who sang rip it up and start again"
    neighbours = ["Rip It Up: Rip It Up is the second album by Scottish post-punk band Orange Juice, "
                  "released in November 1982 on Polydor Records, produced by Martin Hayes.",
                  "x", "Driver's license: Karl Benz had to receive written permission to operate his car."]
    onnx.clear_cache()
    alone = onnx.embed([query])[0]
    onnx.clear_cache()
    together = onnx.embed([*neighbours, query])[-1]
    # Bit for bit: a padded int8 batch shares one activation scale, and moved this vector.
    assert np.array_equal(alone, together)


def test_the_default_heads_read_leads_and_the_fast_heads_do_not(fast_engine):
    from compressors import head
    from middleware.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="heads must be one of"):
        fast_engine.compress(NQ_QUERY, NQ_LIKE, 80, pipeline=[Stage("extractive", {"heads": "nq"})])
    default = fast_engine.compress(NQ_QUERY, NQ_LIKE, 80)
    fast = fast_engine.compress(NQ_QUERY, NQ_LIKE, 80, pipeline=[Stage("extractive", {"heads": "fast"})])
    alias = fast_engine.compress(NQ_QUERY, NQ_LIKE, 80, pipeline=[Stage("extractive", {"heads": "rerank"})])
    assert fast.stages[0].details["reranked"] == 0
    assert default.stages[0].details["reranked"] == len(NQ_LIKE)  # 7 documents: all of them are read
    assert alias.context == default.context  # "rerank" names the default heads (it was opt-in before)
    assert 0 < default.compressed_tokens <= 80 and 0 < fast.compressed_tokens <= 80


def test_the_default_heads_read_8_documents_and_up_to_4_more_that_the_cheap_heads_still_like(fast_engine):
    from compressors import features, head, packing
    from compressors.base import CompressionJob

    heads = load(head.NAMED["default"])
    assert (heads.reading.documents, heads.reading.more, heads.reading.probability) == (8, 4, 0.015)
    docs = NQ_LIKE + [{"id": f"y{k}", "title": f"Rip It Up ({k})", "text": f"Rip It Up is a song from {1980 + k}. "
                       "It was sung again and again."} for k in range(9)]
    req = fast_engine.request(NQ_QUERY, docs, 80)
    job = CompressionJob(req.query, req.documents, 80, fast_engine.models.tokenizers.get(req.model))
    _, cheap_doc = heads.cheap(features.prepare(job, packing.segment(req.documents),
                                                fast_engine.models.static_embedder().embed))
    after = np.sort(cheap_doc)[::-1][8:12]
    expected = 8 + int((after >= 0.015).sum())
    assert 8 < expected < 12  # the example has documents on both sides of the bar
    res = fast_engine.compress(NQ_QUERY, docs, 80)
    assert res.stages[0].details["reranked"] == expected
    exact = fast_engine.compress(NQ_QUERY, docs, 80, pipeline=[Stage("extractive", {"rerank_documents": 2})])
    assert exact.stages[0].details["reranked"] == 2  # a request's count is exact


def test_a_rerank_reorders_what_the_cheap_heads_keep_but_never_drops_it(fast_engine):
    from compressors import rerank

    job, seg = _nq_job(fast_engine)
    heads, embed = _with_rerank(), fast_engine.models.static_embedder().embed

    def contrary(texts):  # the transformer likes every lead but the one the cheap heads like best
        out = np.zeros((len(texts), 2), np.float32)
        out[:, 0] = 1.0
        out[1] = [0.0, 1.0]
        return out

    cheap = heads.score(job, seg, embed)
    read = heads.score(job, seg, embed, contrary, rerank.Reading(4))
    assert read.reranked == 4
    demoted = np.flatnonzero(read.unit < cheap.unit - 1e-6)
    assert len(demoted)  # the rerank did lower some units' probability ...
    assert np.all(read.floor >= cheap.unit - 1e-6) and np.all(read.doc_floor >= cheap.doc - 1e-6)  # ... not the floor


def test_without_onnx_runtime_the_cheap_heads_serve_and_say_so(fast_engine, caplog):
    from compressors.extractive import ExtractiveCompressor, ExtractiveOptions
    from compressors.base import CompressionJob
    from middleware.errors import Unavailable

    def missing():  # what ModelRegistry.onnx_embedder raises where ONNX Runtime cannot be imported
        raise Unavailable("the int8 ONNX MiniLM needs onnxruntime")

    with caplog.at_level("WARNING"):
        method = ExtractiveCompressor(ExtractiveOptions(), fast_engine.models.static_embedder().embed, missing)
    assert method.dense is None and "without the MiniLM rerank" in caplog.text
    req = fast_engine.request(NQ_QUERY, NQ_LIKE, 60)
    out = method.compress(CompressionJob(req.query, req.documents, 60, fast_engine.models.tokenizers.get(req.model)))
    assert out.details["reranked"] == 0 and out.documents


def test_the_shipped_rerank_heads_were_trained_as_their_card_says():
    import json

    from compressors import head

    spec = json.loads(head.NAMED["rerank"].read_text())
    assert spec["rerank_documents"] == 8 and spec["rerank_lead_words"] == 32
    assert spec["rerank_more_documents"] == 4 and spec["rerank_more_probability"] == 0.015
    assert "hotpot_distractor_dev100.jsonl" not in spec["trained_on"] and "nq_hybrid_dev.jsonl" not in spec["trained_on"]
    assert load().rerank is not None and load(head.NAMED["fast"]).rerank is None


@pytest.mark.slow
def test_the_static_embedders_word_memo_gives_the_ids_of_the_whole_text(real_engine):
    static = real_engine.models.static_embedder()
    texts = ["Rip It Up (1982 album), by Orange Juice.", "Ünïcödé naïve café émigré's", "北京是中国的首都。东京 Tokyo",
             "a\tb\nc\rd x\u00a0y p\u2028q", "v\x0bw\x0cx\x1cy\x85z", "soft\u00adhyphen zero\u200bwidth", "3.5km 1,234 US$ 12°C",
             "", "   ", "don't-stop"]
    static.clear_cache()
    first = static.token_ids(texts)
    again = static.token_ids(texts)  # every word memoised now
    for text, a, b in zip(texts, first, again):
        whole = static._tok.encode(text, add_special_tokens=False).ids
        assert a.tolist() == whole and b.tolist() == whole, text
    assert static._word_ids
    vectors = static.embed(texts[:2])
    static.clear_cache()
    assert not static._word_ids and np.allclose(static.embed(texts[:2]), vectors)
