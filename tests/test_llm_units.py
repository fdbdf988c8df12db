"""Fast checks of the LLM hop's pieces: settings, conversion, error translation, prices."""

from __future__ import annotations

import pytest

from middleware import convert
from middleware.errors import InvalidArgument
from middleware.llm import completion as gateway
from middleware.llm import retry
from middleware.llm.local import local_name, parse_model_dirs
from middleware.settings import Settings
from middleware.tokens import TokenizerRegistry, hf_tokenizer
from ragpress.v1 import ragpress_pb2 as pb


@pytest.mark.parametrize("field, value, fragment", [
    ("llm_fallback", "panic", "llm_fallback"),
    ("prefix_cache_codec", "zip", "prefix_cache_codec"),
    ("local_model", "smollm2", "local/<name>"),
    ("summarizer_model", "openai/gpt-4o", "summarizer_model"),
    ("prefix_cache_block", 0, "prefix_cache_block"),
    ("local_threads", -1, "local_threads"),
])
def test_bad_llm_settings_are_refused(field, value, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        Settings.from_mapping({field: value})


def test_generate_request_from_the_wire():
    msg = pb.GenerateRequest(query="q", model="local/smollm2", method="extractive", system_prompt="S",
                             fallback=pb.FALLBACK_POLICY_LOCAL, template="context-only",
                             documents=[pb.Document(text="t")],
                             demonstrations=[pb.Demonstration(input="i", output="o")])
    msg.budget.keep_ratio = 0.5
    msg.generation.max_tokens = 7
    msg.generation.stop.append("\n")
    req = convert.generate_request_from_pb(msg, Settings())
    assert req.fallback == "local" and req.template == "context-only" and req.system_prompt == "S"
    assert req.options.max_tokens == 7 and req.options.stop == ("\n",) and req.options.top_p is None
    assert req.demonstrations[0].id == "0" and req.compress.model == "local/smollm2"
    assert convert.generate_request_from_pb(pb.GenerateRequest(budget=msg.budget), Settings()).fallback is None


def test_litellm_errors_are_translated_in_one_place():
    import litellm

    e500 = litellm.InternalServerError("boom", llm_provider="openai", model="m")
    assert isinstance(gateway.translate(e500, "m"), gateway.UpstreamError)
    assert gateway.translate(e500, "m").transient
    limited = gateway.translate(litellm.RateLimitError("slow down", llm_provider="openai", model="m"), "m")
    assert limited.transient and "rate-limited" in str(limited)
    bad = gateway.translate(litellm.BadRequestError("no", model="m", llm_provider="openai"), "m")
    assert isinstance(bad, InvalidArgument) and "rejected" in str(bad)
    auth = gateway.translate(litellm.AuthenticationError("key", llm_provider="openai", model="m"), "m")
    assert isinstance(auth, gateway.UpstreamError) and not auth.transient


def test_prices_come_from_the_offline_map():
    assert gateway.cost_usd("gpt-4o-mini", 1000, 100) == pytest.approx(0.00015 + 0.00006)
    assert gateway.cost_usd("no-such-model-xyz", 1000, 100) is None


def test_local_names_and_dirs():
    assert local_name("local/smollm2") == "smollm2" and local_name("gpt-4o") is None
    with pytest.raises(InvalidArgument, match="needs a name"):
        local_name("local/")
    assert parse_model_dirs(" a=/x , b=/y") == {"a": "/x", "b": "/y"}
    with pytest.raises(InvalidArgument, match="name=/path"):
        parse_model_dirs("a")


def test_tokenizer_registry_resolves_local_models_through_a_resolver():
    class Words:
        def encode(self, text, add_special_tokens=False):
            return [len(w) for w in text.split()]

        def decode(self, ids):
            return " ".join("x" * i for i in ids)

    reg = TokenizerRegistry()
    reg.add_resolver("local/", lambda model: hf_tokenizer(model, "hf:words", Words()))
    tok = reg.get("local/words")
    assert tok.name == "hf:words" and tok.count("a bb ccc") == 3 and not tok.fallback
    assert reg.get("gpt-4o").name == "o200k_base"


@pytest.mark.parametrize("headers, seconds", [
    ({"Retry-After": "3"}, 3.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the finer header wins
    ({"Retry-After": "Thu, 01 Jan 2026 00:00:10 GMT"}, 10.0),
    ({"Retry-After": "Thu, 01 Jan 2026 00:00:00 GMT"}, 0.0),  # a date in the past: no wait
    ({"Retry-After": "soon"}, None),
    ({"X-Other": "1"}, None),
    (None, None),
])
def test_retry_after_headers_in_seconds_or_as_a_date(headers, seconds):
    now = 1767225600.0  # 2026-01-01T00:00:00Z
    assert gateway.parse_retry_after(headers, now=now) == seconds


def test_a_rate_limit_carries_the_upstreams_retry_after():
    import httpx
    import litellm

    response = httpx.Response(429, headers={"Retry-After": "7"},
                              request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    exc = litellm.RateLimitError("slow down", llm_provider="openai", model="m", response=response)
    assert gateway.translate(exc, "m").retry_after == 7.0


def _failing(exc: Exception):
    calls = []

    def call():
        calls.append(1)
        raise exc
    return call, calls


@pytest.mark.parametrize("exc, retries, left, attempts", [
    (gateway.UpstreamError("down", transient=False), 3, float("inf"), 1),  # not transient: never retried
    (gateway.UpstreamError("down", transient=True), 0, float("inf"), 1),  # no retries asked for
    (gateway.UpstreamError("down", transient=True), 3, 0.1, 1),  # the first back-off (>= 0.2 s) passes the deadline
    (gateway.UpstreamError("busy", transient=True, retry_after=5.0), 3, 4.0, 1),  # Retry-After past the deadline
    (gateway.UpstreamError("busy", transient=True, retry_after=3600.0), 3, float("inf"), 1),  # beyond the cap
    (gateway.UpstreamError("down", transient=True), 1, float("inf"), 2),  # one retry, then the error
])
def test_the_retry_policy_stops_where_it_must_and_reraises_the_last_error(exc, retries, left, attempts):
    call, calls = _failing(exc)
    with pytest.raises(gateway.UpstreamError) as info:
        for attempt in retry.retrying(retries, lambda: left):
            with attempt:
                call()
    assert info.value is exc and len(calls) == attempts
