import pytest

from middleware.tokens import TokenizerRegistry, UnknownModel


def test_gpt4o_counts_with_o200k_exactly():
    import tiktoken

    tok = TokenizerRegistry().get("gpt-4o")
    text = "Paris has 2,102,650 inhabitants. 東京 🗼"
    assert tok.name == "o200k_base" and not tok.fallback
    assert tok.count(text) == len(tiktoken.get_encoding("o200k_base").encode(text))
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("model, encoding", [
    ("openai/gpt-4o", "o200k_base"),
    ("gpt-4o-mini", "o200k_base"),
    ("gpt-3.5-turbo", "cl100k_base"),
    ("gpt-4", "cl100k_base"),
])
def test_openai_models_and_provider_prefixes(model, encoding):
    tok = TokenizerRegistry().get(model)
    assert (tok.name, tok.fallback) == (encoding, False)


def test_unknown_model_is_a_clear_error_by_default():
    with pytest.raises(UnknownModel, match="unknown model 'no-such-model-x'.*fallback"):
        TokenizerRegistry().get("no-such-model-x")


def test_unknown_model_fallback_is_reported():
    tok = TokenizerRegistry("fallback").get("no-such-model-x")
    assert tok.name == "cl100k_base" and tok.fallback


def test_known_non_openai_model_uses_a_reported_approximation():
    import litellm

    name = next(m for m in ("gemini-1.5-pro", "mistral/mistral-large-latest", "claude-3-haiku-20240307")
                if m in litellm.model_cost)
    tok = TokenizerRegistry().get(name)
    assert tok.fallback and tok.name == "cl100k_base"


def test_empty_text_counts_zero():
    assert TokenizerRegistry().get("gpt-4o").count("") == 0
