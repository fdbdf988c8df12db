"""The local runtime on the real SmolLM2: greedy output with the prefix cache equals
greedy output without it, token for token, in every cache situation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from middleware.llm.prefix_cache import PrefixCache, PrefixCacheParams
from middleware.llm.runtime import LocalRuntime, SamplingParams

pytestmark = pytest.mark.slow

FACTS = " ".join(f"Room {i} is painted {c}." for i, c in enumerate(
    ["red", "blue", "green", "white", "black", "pink", "grey", "gold", "teal", "navy"]))
SYSTEM = "You answer questions about a hotel using the facts. Facts: " + FACTS
PARAMS = SamplingParams(max_new_tokens=4)
BLOCK = 16


def chat(rt: LocalRuntime, question: str) -> list[int]:
    return rt.encode_chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])


def runtime(smollm2, max_bytes: int = 64 * 2**20, codec: str = "fp") -> LocalRuntime:
    return LocalRuntime(smollm2, PrefixCache(PrefixCacheParams(BLOCK, max_bytes)), codec)


@pytest.fixture(scope="module")
def prompts(smollm2):
    rt = runtime(smollm2)
    a, b = chat(rt, "What colour is room 3?"), chat(rt, "Which room is gold?")
    ref = {tuple(p): rt.generate(p, PARAMS, use_cache=False).token_ids for p in (a, b)}
    return a, b, ref


def test_full_and_partial_hits_equal_no_cache(smollm2, prompts):
    a, b, ref = prompts
    rt = runtime(smollm2)
    miss = rt.generate(a, PARAMS)
    full = rt.generate(a, PARAMS)
    partial = rt.generate(b, PARAMS)
    assert miss.cached_tokens == 0 and full.cached_tokens == len(a) // BLOCK * BLOCK
    assert 0 < partial.cached_tokens < len(b) - BLOCK
    assert miss.token_ids == full.token_ids == ref[tuple(a)]
    assert partial.token_ids == ref[tuple(b)]
    assert len(ref[tuple(a)]) > 0
    s = rt.cache.stats()
    assert s["hit_tokens"] == full.cached_tokens + partial.cached_tokens and s["ttft_hit_count"] == 2


def test_an_entirely_cached_prompt_keeps_its_last_token_uncached(smollm2, prompts):
    a, _, _ = prompts
    ids = a[: len(a) // BLOCK * BLOCK]  # a whole number of blocks: every token can be cached
    rt = runtime(smollm2)
    reference = rt.generate(ids, PARAMS, use_cache=False)
    first = rt.generate(ids, PARAMS)
    second = rt.generate(ids, PARAMS)
    assert second.cached_tokens == len(ids) - 1
    assert first.token_ids == second.token_ids == reference.token_ids


def test_eviction_keeps_outputs_exact_and_the_store_within_its_bound(smollm2, prompts):
    a, b, ref = prompts
    block_bytes = BLOCK * 30 * 2 * 3 * 64 * 4  # tokens x layers x (k, v) x kv heads x head dim x fp32
    bound = 5 * block_bytes
    rt = runtime(smollm2, max_bytes=bound)
    outs = [rt.generate(p, PARAMS) for p in (a, b, a)]
    assert [o.token_ids for o in outs] == [ref[tuple(a)], ref[tuple(b)], ref[tuple(a)]]
    s = rt.cache.stats()
    assert s["evicted_blocks"] > 0 and 0 < s["bytes"] <= bound


def test_concurrent_requests_equal_sequential_no_cache(smollm2, prompts):
    a, b, ref = prompts
    rt = runtime(smollm2)
    order = [a, b, a, b, a]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outs = list(pool.map(lambda p: rt.generate(p, PARAMS), order))
    assert [o.token_ids for o in outs] == [ref[tuple(p)] for p in order]
    assert rt.cache.stats()["hit_tokens"] > 0


def test_no_hit_crosses_tenants(smollm2, prompts):
    a, _, ref = prompts
    rt = runtime(smollm2)
    alice = rt.generate(a, PARAMS, tenant="alice")
    bob = rt.generate(a, PARAMS, tenant="bob")
    bob_again = rt.generate(a, PARAMS, tenant="bob")
    assert alice.cached_tokens == 0 and bob.cached_tokens == 0 and bob_again.cached_tokens > 0
    assert alice.token_ids == bob.token_ids == bob_again.token_ids == ref[tuple(a)]


def test_int8_storage_is_smaller_and_keeps_the_first_tokens(smollm2, prompts):
    a, _, ref = prompts
    fp, q8 = runtime(smollm2), runtime(smollm2, codec="int8")
    fp.generate(a, PARAMS)
    q8.generate(a, PARAMS)
    hit = q8.generate(a, PARAMS)
    assert hit.cached_tokens > 0 and q8.cache.nbytes * 3 < fp.cache.nbytes
    # Lossy: exactness is measured in bench/kv_cache.py; the first token must survive.
    assert hit.token_ids[:1] == ref[tuple(a)][:1]


def test_a_cancel_event_stops_generation(smollm2, prompts):
    a, _, _ = prompts
    rt = runtime(smollm2)
    cancel = threading.Event()
    out = rt.generate(a, SamplingParams(max_new_tokens=50), cancel=cancel, on_delta=lambda d: cancel.set())
    assert out.finish_reason == "cancelled" and 1 <= out.completion_tokens < 5
    assert rt.finished["cancelled"] == 1


def test_stop_strings_and_streamed_deltas_agree(smollm2, prompts):
    a, _, _ = prompts
    rt = runtime(smollm2)
    full = rt.generate(a, SamplingParams(max_new_tokens=6), use_cache=False)
    stop = full.text.split(" ")[1] if " " in full.text else full.text[-1]
    deltas: list[str] = []
    out = rt.generate(a, SamplingParams(max_new_tokens=6, stop=(stop,)), on_delta=deltas.append)
    assert stop not in out.text and out.finish_reason == "stop" and full.text.startswith(out.text)
    assert "".join(deltas) == out.text


@pytest.mark.parametrize("text", ["Paris, 1889: the Eiffel Tower (324 m).", "東京タワーは333メートルです 🗼✨",
                                  "naïve café — Zürich\nid=A-17/b"])
def test_the_text_stream_adds_up_to_the_whole_decode(smollm2, text):
    from middleware.llm.runtime import _TextStream

    tok = smollm2.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    for tokenizer in (tok, _SlowOnly(tok)):
        stream = _TextStream(tokenizer)
        parts = [stream.step(i) for i in ids]
        assert "".join(parts) == tok.decode(ids, skip_special_tokens=True) == text
        assert "\ufffd" not in "".join(parts[:-1])


class _SlowOnly:
    """The same tokenizer seen without its fast backend: the fallback path decodes everything."""

    def __init__(self, tok) -> None:
        self.decode = tok.decode
