"""Soft tokens in the kernel's local runtime: prompts with vectors at marked positions,
spliced through inputs_embeds, and the KV prefix cache keyed by the vectors too."""

from __future__ import annotations

import numpy as np
import pytest

from middleware.errors import InvalidArgument
from middleware.llm.prefix_cache import PrefixCache, PrefixCacheParams
from middleware.llm.runtime import LocalRuntime, SamplingParams
from middleware.llm.soft import MARKER, SoftPrompt, tokenize_with_markers


class WordTokenizer:
    """A fake tokenizer: one id per whitespace-separated word (ids from a growing vocabulary)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab) + 10) for w in text.split()]}


def test_markers_become_placeholders_at_the_right_positions():
    tok = WordTokenizer()
    ids, positions = tokenize_with_markers(tok, f"a b {MARKER} c {MARKER}{MARKER} d", [2, 1, 3], placeholder=0)
    assert positions == [2, 3, 5, 6, 7, 8]
    assert [ids[p] for p in positions] == [0] * 6
    assert [i for n, i in enumerate(ids) if n not in positions] == [tok.vocab[w] for w in "a b c d".split()]


def test_a_marker_count_that_does_not_match_is_refused():
    with pytest.raises(InvalidArgument, match="2 soft-token markers, expected 1"):
        tokenize_with_markers(WordTokenizer(), f"{MARKER} question with {MARKER}", [1], placeholder=0)


def test_cache_keys_cover_the_vectors():
    v = np.arange(8, dtype=np.float32).reshape(2, 4)
    a = SoftPrompt((5, 0, 0, 6), (1, 2), v)
    same = SoftPrompt((5, 0, 0, 6), (1, 2), v.copy())
    other = SoftPrompt((5, 0, 0, 6), (1, 2), v + np.float32(1e-3))
    assert a.cache_keys() == same.cache_keys()
    assert a.cache_keys()[0] == 5 and a.cache_keys()[3] == 6
    assert all(k < 0 for k in a.cache_keys()[1:3])
    assert a.cache_keys()[1:3] != other.cache_keys()[1:3]


@pytest.mark.parametrize("positions, rows, message", [
    ((1,), 2, "1 soft positions but 2 vectors"),
    ((2, 1), 2, "ascending"),
    ((3, 9), 2, "inside the prompt"),
])
def test_soft_prompts_are_checked(positions, rows, message):
    with pytest.raises(InvalidArgument, match=message):
        SoftPrompt((1, 2, 3, 4), positions, np.zeros((rows, 4), dtype=np.float32))


# -- on SmolLM2 -------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "Answer in a few words."},
            {"role": "user", "content": f"Context:\n{MARKER}\n\nQuestion: What is the capital of France?\nAnswer:"}]
CONTEXT = "France is a country in Europe. Its capital is Paris."


def _as_text(runtime: LocalRuntime) -> list[int]:
    text = [dict(m, content=m["content"].replace(MARKER, CONTEXT)) for m in MESSAGES]
    return runtime.encode_chat(text)


def _embedding_rows(runtime: LocalRuntime) -> np.ndarray:
    """The input embeddings of the context's own tokens: as soft tokens they must act as the text."""
    ids = runtime.model.tokenizer(CONTEXT, add_special_tokens=False)["input_ids"]
    return runtime.model.model.get_input_embeddings().weight[ids].detach().float().numpy()


@pytest.mark.slow
def test_soft_tokens_equal_to_token_embeddings_generate_as_the_text_does(smollm2):
    runtime = LocalRuntime(smollm2)
    soft = runtime.soft_prompt(MESSAGES, [_embedding_rows(runtime)])
    text_ids = _as_text(runtime)
    assert len(soft.ids) == len(text_ids)
    assert [i for n, i in enumerate(soft.ids) if n not in soft.positions] == \
        [i for n, i in enumerate(text_ids) if n not in soft.positions]
    params = SamplingParams(max_new_tokens=6)
    as_text = runtime.generate(text_ids, params, use_cache=False)
    as_soft = runtime.generate(list(soft.ids), params, use_cache=False, soft=soft)
    assert as_soft.token_ids == as_text.token_ids and "Paris" in as_text.text
    assert as_soft.prompt_tokens == len(soft.ids)


@pytest.mark.slow
def test_the_prefix_cache_hits_only_when_the_vectors_repeat(smollm2):
    cache = PrefixCache(PrefixCacheParams(block_size=4, max_bytes=64 * 1024 * 1024))
    runtime = LocalRuntime(smollm2, cache)
    rows = _embedding_rows(runtime)
    # A long soft context so that whole blocks after it can be cached.
    soft = runtime.soft_prompt(MESSAGES, [np.concatenate([rows, rows])])
    params = SamplingParams(max_new_tokens=4)
    cold = LocalRuntime(smollm2).generate(list(soft.ids), params, use_cache=False, soft=soft)
    first = runtime.generate(list(soft.ids), params, soft=soft)
    again = runtime.generate(list(soft.ids), params, soft=soft)
    assert first.cached_tokens == 0 and again.cached_tokens >= len(soft.ids) - 4
    assert first.token_ids == again.token_ids == cold.token_ids

    # Same ids, other vectors: the blocks before the first soft token hit, none after it.
    shifted = runtime.soft_prompt(MESSAGES, [np.concatenate([rows, rows])[::-1].copy()])
    assert shifted.ids == soft.ids
    other = runtime.generate(list(shifted.ids), params, soft=shifted)
    assert other.cached_tokens == (soft.positions[0] // 4) * 4
    alone = LocalRuntime(smollm2).generate(list(shifted.ids), params, use_cache=False, soft=shifted)
    assert other.token_ids == alone.token_ids


@pytest.mark.slow
def test_a_question_holding_the_marker_is_refused(smollm2):
    runtime = LocalRuntime(smollm2)
    bad = [MESSAGES[0], dict(MESSAGES[1], content=MESSAGES[1]["content"] + MARKER)]
    with pytest.raises(InvalidArgument, match="marker"):
        runtime.soft_prompt(bad, [_embedding_rows(runtime)])


@pytest.mark.slow
def test_soft_tokens_split_across_prefill_chunks_generate_as_in_one_chunk(smollm2):
    runtime = LocalRuntime(smollm2)
    soft = runtime.soft_prompt(MESSAGES, [_embedding_rows(runtime)])
    params = SamplingParams(max_new_tokens=6)
    whole = runtime.generate(list(soft.ids), params, use_cache=False, soft=soft)
    # A chunk of 5 tokens puts chunk boundaries inside the run of soft positions.
    first = soft.positions[0]
    assert any(first < b < soft.positions[-1] for b in range(0, len(soft.ids), 5))
    chunked = runtime.generate(list(soft.ids), params, use_cache=False, soft=soft, prefill_chunk=5)
    assert chunked.token_ids == whole.token_ids and "Paris" in whole.text
