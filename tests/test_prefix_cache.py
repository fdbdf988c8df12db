"""The prefix store on its own: no model, no torch (payloads are plain objects with a size)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from middleware.errors import InvalidArgument
from middleware.llm.prefix_cache import PrefixCache, PrefixCacheParams, chain_hashes

NS = "model|float32|tok"


@dataclass(frozen=True)
class P:
    """A fake payload: which block of which prompt it came from, and its size."""

    tag: str
    nbytes: int = 100


def blocks(tag: str, n: int) -> list[P]:
    return [P(f"{tag}{i}") for i in range(n)]


def cache(max_bytes: int = 10_000, block: int = 4) -> PrefixCache:
    return PrefixCache(PrefixCacheParams(block_size=block, max_bytes=max_bytes))


def test_longest_prefix_match_is_block_granular():
    c = cache()
    ids = list(range(18))  # 4 whole blocks of 4, 2 tokens left over
    assert c.insert(NS, "t", ids, blocks("a", 4)).inserted == 4
    assert c.match_prefix(NS, "t", ids).tokens == 16
    partial = ids[:10] + [99] * 8  # shares 2 whole blocks and 2 tokens of the third
    m = c.match_prefix(NS, "t", partial)
    assert m.tokens == 8 and [p.tag for p in m.payloads] == ["a0", "a1"]
    assert c.match_prefix(NS, "t", [7] + ids[1:]).tokens == 0  # differs in the first token


def test_no_hit_crosses_tenants_or_namespaces():
    c = cache()
    ids = list(range(16))
    c.insert(NS, "alice", ids, blocks("a", 4))
    assert c.match_prefix(NS, "bob", ids).tokens == 0
    assert c.match_prefix(NS + "|other-dtype", "alice", ids).tokens == 0
    c.insert(NS, "bob", ids, blocks("b", 4))
    assert [p.tag for p in c.match_prefix(NS, "bob", ids).payloads] == ["b0", "b1", "b2", "b3"]
    assert [p.tag for p in c.match_prefix(NS, "alice", ids).payloads] == ["a0", "a1", "a2", "a3"]
    assert set(chain_hashes(NS, "alice", ids, 4)).isdisjoint(chain_hashes(NS, "bob", ids, 4))


def test_entries_are_immutable_and_shared_prefixes_are_stored_once():
    c = cache()
    ids = list(range(16))
    c.insert(NS, "t", ids, blocks("a", 4))
    other = ids[:8] + [50, 51, 52, 53, 54, 55, 56, 57]
    r = c.insert(NS, "t", other, blocks("b", 4))
    assert (r.inserted, r.present) == (2, 2)
    assert [p.tag for p in c.match_prefix(NS, "t", other).payloads] == ["a0", "a1", "b2", "b3"]
    assert len(c) == 6 and c.nbytes == 600


def test_the_store_stays_under_its_byte_bound_and_evicts_least_recent_leaves_first():
    c = cache(max_bytes=500)
    a, b = list(range(16)), list(range(100, 116))
    c.insert(NS, "t", a, blocks("a", 4))
    c.match_prefix(NS, "t", a)  # a is now more recent than nothing else; b comes next
    c.insert(NS, "t", b, blocks("b", 4))
    assert c.nbytes <= 500 and len(c) == 5
    # a's leaves went first: its first block still matches, its tail does not.
    assert c.match_prefix(NS, "t", a).tokens == 4
    assert c.match_prefix(NS, "t", b).tokens == 16
    assert c.stats()["evicted_blocks"] == 3


def test_blocks_larger_than_the_store_are_refused_and_orphans_never_stored():
    c = cache(max_bytes=250)
    r = c.insert(NS, "t", list(range(16)), [P("big", 300)] + blocks("x", 3)[1:])
    assert (r.inserted, r.refused) == (0, 3) and len(c) == 0
    # Block 1 without block 0 could never be matched: refused.
    r = c.insert(NS, "t", list(range(16)), blocks("y", 2), start_block=1)
    assert r.refused == 2 and len(c) == 0


def test_evict_frees_bytes_on_request():
    c = cache()
    c.insert(NS, "t", list(range(16)), blocks("a", 4))
    assert c.evict(150) == 200 and c.nbytes == 200


def test_stats_count_hit_and_queried_tokens_and_ttft():
    c = cache()
    ids = list(range(20))
    c.match_prefix(NS, "t", ids)
    c.insert(NS, "t", ids, blocks("a", 5))
    c.match_prefix(NS, "t", ids)
    c.record_ttft(0.5, hit=False)
    c.record_ttft(0.1, hit=True)
    s = c.stats()
    assert (s["queried_tokens"], s["hit_tokens"], s["lookups"], s["hits"]) == (40, 20, 2, 1)
    assert s["hit_rate"] == 0.5 and s["ttft_hit_count"] == 1 and s["ttft_miss_seconds_sum"] == 0.5


def test_concurrent_inserts_and_matches_keep_the_bound():
    c = cache(max_bytes=2_000)

    def work(k: int) -> None:
        for j in range(50):
            ids = [k, j % 7] + list(range(14))
            c.insert(NS, "t", ids, blocks(f"{k}-", 4))
            c.match_prefix(NS, "t", ids)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.nbytes <= 2_000 and c.nbytes == 100 * len(c)


def test_params_are_validated():
    with pytest.raises(InvalidArgument, match="block_size"):
        PrefixCacheParams(block_size=0)
    with pytest.raises(InvalidArgument, match="more payloads"):
        cache().insert(NS, "t", list(range(5)), blocks("a", 2))
