"""The FAISS collection: chunking, upsert/delete, filters, modes, persistence, registry."""

from __future__ import annotations

import threading

import pytest

from middleware.errors import InvalidArgument, NotFound, UnknownName
from middleware.embedders import hashing_embedder, word_spans
from middleware.types import Document
from retrievers import ChunkingParams, Collection, Collections, Query
from retrievers.chunking import chunk_text
from retrievers.lexical import reciprocal_rank_fusion

EMBEDDER = hashing_embedder()

DOCS = [
    Document(id="paris", title="Paris", text="Paris is the capital and largest city of France.",
             metadata={"lang": "en", "kind": "city"}),
    Document(id="berlin", title="Berlin", text="Berlin is the capital of Germany, on the Spree.",
             metadata={"lang": "en", "kind": "city"}),
    Document(id="brot", title="Brot", text="Brot wird im Ofen gebacken.", metadata={"lang": "de", "kind": "food"}),
    Document(id="bread", title="Bread", text="Bread is baked in an oven from flour and water.",
             metadata={"lang": "en", "kind": "food"}),
]


@pytest.fixture
def coll() -> Collection:
    c = Collection("t", EMBEDDER)
    c.upsert(DOCS)
    return c


def ids(hits):
    return [h.document.id for h in hits]


def test_chunking_windows_overlap_and_cover_the_text():
    text = " ".join(f"w{i}" for i in range(100))
    chunks = chunk_text(text, word_spans, ChunkingParams(max_tokens=30, overlap_tokens=10))
    assert chunks[0].split()[0] == "w0" and chunks[-1].split()[-1] == "w99"
    assert all(len(c.split()) <= 30 for c in chunks)
    # consecutive chunks share exactly the overlap
    assert chunks[0].split()[-10:] == chunks[1].split()[:10]
    assert len(chunks) == 5  # starts at 0, 20, 40, 60, 80


def test_short_document_is_one_verbatim_chunk():
    text = "  Exactly   as written.\n"
    assert chunk_text(text, word_spans, ChunkingParams(max_tokens=30)) == [text]


def test_bad_chunking_is_invalid():
    with pytest.raises(InvalidArgument, match="overlap_tokens"):
        ChunkingParams(max_tokens=20, overlap_tokens=15)
    with pytest.raises(InvalidArgument, match="max_tokens"):
        ChunkingParams(max_tokens=2)


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_each_mode_finds_the_matching_document_first(coll, mode):
    hits = coll.retrieve(Query("capital of France", top_k=2, mode=mode))
    assert ids(hits)[0] == "paris"
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_unknown_mode_lists_the_known_ones(coll):
    with pytest.raises(UnknownName, match="dense, hybrid, lexical"):
        coll.retrieve(Query("x", mode="sparse"))


def test_metadata_filter_is_an_equality_match(coll):
    hits = coll.retrieve(Query("capital city baked bread", top_k=10, filter={"kind": "food"}))
    assert sorted(ids(hits)) == ["bread", "brot"]
    hits = coll.retrieve(Query("baked", top_k=10, mode="lexical", filter={"kind": "food", "lang": "en"}))
    assert ids(hits) == ["bread"]
    assert coll.retrieve(Query("baked", filter={"kind": "car"})) == []
    assert coll.retrieve(Query("baked", filter={"missing": None})) == []


def test_upsert_replaces_and_delete_removes(coll):
    coll.upsert([Document(id="paris", text="Paris hosts the Louvre museum.", metadata={"v": 2})])
    assert len(coll) == 4 and coll.chunk_count == 4
    assert coll.get(["paris"])[0].metadata == {"v": 2}
    assert ids(coll.retrieve(Query("Louvre museum", top_k=1, mode="lexical"))) == ["paris"]
    assert coll.retrieve(Query("largest city of France", top_k=4, mode="lexical", filter={"v": 2})) == []
    assert coll.delete(["paris", "nope"]) == 1
    assert "paris" not in ids(coll.retrieve(Query("Paris Louvre", top_k=10)))
    assert coll.get(["paris", "berlin"]) == [DOCS[1]]


def test_long_document_is_chunked_and_chunks_map_back():
    c = Collection("long", EMBEDDER, ChunkingParams(max_tokens=20, overlap_tokens=5))
    words = [f"filler{i}" for i in range(60)]
    words[45] = "needle"
    n = c.upsert([Document(id="doc", text=" ".join(words), metadata={"a": 1})])
    assert n == c.chunk_count == 4
    hit = c.retrieve(Query("needle", top_k=1, mode="lexical"))[0]
    assert hit.document_id == "doc" and hit.document.id == f"doc#{hit.chunk}"
    assert "needle" in hit.document.text and hit.document.metadata == {"a": 1}
    assert c.delete(["doc"]) == 1 and c.chunk_count == 0
    assert c.retrieve(Query("needle")) == []


def test_input_errors_are_invalid_argument():
    c = Collection("t", EMBEDDER)
    with pytest.raises(InvalidArgument, match="duplicate"):
        c.upsert([Document(id="a", text="x"), Document(id="a", text="y")])
    with pytest.raises(InvalidArgument, match="JSON-like"):
        c.upsert([Document(id="a", text="x", metadata={"f": object()})])
    with pytest.raises(InvalidArgument, match="top_k"):
        Query("x", top_k=0)
    assert len(c) == 0


def test_rank_fusion_rewards_agreement():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    assert [cid for cid, _ in fused] == [1, 3, 2, 4]


def test_empty_collection_returns_nothing_in_every_mode():
    c = Collection("e", EMBEDDER)
    for mode in ("dense", "lexical", "hybrid"):
        assert c.retrieve(Query("anything", mode=mode)) == []


def test_save_and_reload_gives_the_same_answers(tmp_path, coll):
    coll.folder = tmp_path / "t"
    coll.save()
    again = Collection.load("t", EMBEDDER, tmp_path / "t")
    for mode in ("dense", "lexical", "hybrid"):
        q = Query("baked bread oven", top_k=3, mode=mode)
        assert [(h.document, round(h.score, 5)) for h in again.retrieve(q)] == \
               [(h.document, round(h.score, 5)) for h in coll.retrieve(q)]
    # ids keep counting after a reload, so new chunks never collide with old ones
    again.upsert([Document(id="rome", text="Rome is the capital of Italy.")])
    assert ids(again.retrieve(Query("capital of Italy", top_k=1)))[0] == "rome"


def test_reload_with_another_embedder_is_refused(tmp_path, coll):
    coll.folder = tmp_path / "t"
    coll.save()
    with pytest.raises(InvalidArgument, match="re-index"):
        Collection.load("t", hashing_embedder(64), tmp_path / "t")


def test_collections_registry(tmp_path):
    colls = Collections(lambda: EMBEDDER, root=tmp_path)
    with pytest.raises(NotFound, match="'news'"):
        colls.get("news")
    with pytest.raises(InvalidArgument, match="collection name"):
        colls.get_or_create("../etc")
    with pytest.raises(InvalidArgument, match="tenant"):
        colls.get_or_create("news", tenant="..")
    news = colls.get_or_create("news")
    news.upsert(DOCS[:2])
    news.save()
    colls.get_or_create("news", tenant="other").upsert(DOCS[2:])
    assert colls.get("news") is news
    assert colls.names() == ["news"]
    # a fresh registry on the same folder finds the saved collection; tenants stay apart
    fresh = Collections(lambda: EMBEDDER, root=tmp_path)
    assert sorted(fresh.get("news").ids()) == ["berlin", "paris"]
    with pytest.raises(NotFound):
        fresh.get("news", tenant="other")  # never saved
    assert fresh.drop("news") and not fresh.drop("news")
    with pytest.raises(NotFound):
        Collections(lambda: EMBEDDER, root=tmp_path).get("news")


def test_concurrent_upserts_and_searches_keep_the_invariants():
    colls = Collections(lambda: EMBEDDER)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            c = colls.get_or_create("shared")
            for i in range(20):
                c.upsert([Document(id=f"{t}-{i % 5}", text=f"writer {t} round {i} text")])
                c.retrieve(Query(f"writer {t}", top_k=3, mode="hybrid"))
                if i % 7 == 0:
                    c.delete([f"{t}-0"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    c = colls.get("shared")
    assert len(c) == c.chunk_count == c._index.ntotal
    # ids 1..4 of every writer were written last by an upsert and never deleted
    assert {f"{t}-{i}" for t in range(4) for i in range(1, 5)} <= set(c.ids())
    assert set(c.ids()) <= {f"{t}-{i}" for t in range(4) for i in range(5)}


def test_bm25_scores_match_rank_bm25():
    """The inverted-index scoring gives rank-bm25's own scores (same idf variant)."""
    from retrievers.lexical import Bm25Index, _okapi, tokenize

    texts = ["the cat sat on the mat", "a dog and a cat", "dogs bark at night", "the the the", "mat mat cat"]
    index = Bm25Index()
    index.rebuild(enumerate(texts, start=100))
    reference = _okapi()([tokenize(t) for t in texts]).get_scores(tokenize("cat mat the"))
    got = dict(index.search("cat mat the", n=10))
    assert set(got) == {100, 101, 103, 104}
    for i, ref in enumerate(reference):
        assert got.get(100 + i, 0.0) == pytest.approx(ref)
    assert [cid for cid, _ in index.search("cat mat the", n=2, allowed={101, 103})] == \
        sorted([101, 103], key=lambda c: -got[c])
