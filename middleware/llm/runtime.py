"""Generation on a local model, reusing cached KV prefixes.

One request = one working DynamicCache of its own, assembled from the prefix
cache's immutable blocks (or empty on a miss). The prompt's uncached suffix is
prefilled on top of it, the prompt's new whole blocks are copied into the store,
then a decode loop runs (greedy at temperature 0). Concurrent requests are safe:
they share only the model (read-only under ``inference_mode``) and the store
(locked); model forwards are serialised step by step by one lock, so requests
interleave token by token instead of oversubscribing the CPU cores.

The transformers cache traps (docs/llm-gateway.md) are handled here:
- the stored KV is never handed out; each request gets freshly concatenated tensors;
- the full ids are known and only the uncached suffix is fed, with positions
  continuing from the cache length;
- a prompt that is entirely cached keeps one token uncached (the working copy is
  cropped by one), because the last prompt token's logits are needed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from middleware.errors import InvalidArgument
from middleware.llm import kv
from middleware.llm import soft as soft_module
from middleware.llm.local import LocalModel, chat_ids
from middleware.llm.prefix_cache import PrefixCache
from middleware.llm.soft import SoftPrompt


@dataclass(frozen=True)
class LocalGeneration:
    """What a local generation produced; ``finish_reason`` is stop, length or cancelled."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    cached_tokens: int
    ttft_seconds: float
    finish_reason: str

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Added to the logits of these token ids at every step (as OpenAI's ``logit_bias``):
    # the abstractive summariser favours the source's own tokens with it.
    logit_bias: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InvalidArgument(f"max_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise InvalidArgument(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InvalidArgument(f"top_p must be in (0, 1], got {self.top_p}")


class LocalRuntime:
    """Generates with one local model and (optionally) a shared prefix cache."""

    def __init__(self, model: LocalModel, cache: PrefixCache | None = None, codec: str = "fp") -> None:
        if codec not in kv.CODECS:
            raise InvalidArgument(f"KV codec must be one of {kv.CODECS}, got {codec!r}")
        self.model = model
        self.cache = cache if cache is not None and _cacheable(model) else None
        self.codec = codec
        self.namespace = f"{model.namespace}|kv:{codec}"
        self._step = threading.Lock()
        self._eos = model.eos_ids()
        self._count_lock = threading.Lock()
        self.finished: dict[str, int] = {"stop": 0, "length": 0, "cancelled": 0}

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of a chat prompt under the model's own chat template."""
        return chat_ids(self.model.tokenizer, messages)

    def soft_prompt(self, messages: Sequence[dict[str, str]], vectors: Sequence[Any]) -> SoftPrompt:
        """A chat prompt whose i-th :data:`~middleware.llm.soft.MARKER` becomes the vectors ``vectors[i]``."""
        tok = self.model.tokenizer
        placeholder = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return soft_module.soft_chat_prompt(tok, messages, vectors, int(placeholder))

    def generate(self, ids: Sequence[int], params: SamplingParams, *, tenant: str = "default",
                 use_cache: bool = True, cancel: threading.Event | None = None,
                 on_delta: Callable[[str], None] | None = None, prefill_chunk: int = 512,
                 soft: SoftPrompt | None = None) -> LocalGeneration:
        """Run one request to completion (blocking; call it off the event loop).

        The prompt is prefilled ``prefill_chunk`` tokens at a time: eager attention holds a
        chunk x prompt score matrix per layer instead of prompt x prompt, and ``cancel`` is
        checked between chunks as well as between decode steps.

        With ``soft``, ``ids`` must be ``soft.ids``: its vectors replace the input
        embeddings at its positions, and the prefix cache is keyed by
        :meth:`SoftPrompt.cache_keys` (ids and vectors), not by the ids alone.
        """
        import torch

        if not ids:
            raise InvalidArgument("the prompt is empty")
        if soft is not None and tuple(ids) != soft.ids:
            raise InvalidArgument("ids and the soft prompt's ids differ")
        started = time.perf_counter()
        cache = self.cache if use_cache else None
        keys = soft.cache_keys() if soft is not None else ids
        with torch.inference_mode():
            work, cached = self._working_cache(keys, tenant, cache)
            device = self.model.device
            logits = None
            step = max(1, prefill_chunk)
            for start in range(cached, len(ids), step):
                if cancel is not None and cancel.is_set():
                    with self._count_lock:
                        self.finished["cancelled"] += 1
                    return LocalGeneration("", (), len(ids), cached, 0.0, "cancelled")
                chunk = list(ids[start:start + step])
                inp = torch.tensor([chunk], dtype=torch.long, device=device)
                logits = self._forward(inp, work, self._spliced(soft, start, start + len(chunk)))
            if cache is not None:
                self._store(keys, tenant, work, cache)
            bias = _bias(params, logits)
            gen = torch.Generator(device="cpu")
            if params.seed is not None:
                gen.manual_seed(params.seed)
            out: list[int] = []
            emitted = ""
            ttft = 0.0
            finish = "length"
            hold = max((len(s) for s in params.stop), default=1) - 1
            stream = _TextStream(self.model.tokenizer)
            text = ""
            while len(out) < params.max_new_tokens:
                if cancel is not None and cancel.is_set():
                    finish = "cancelled"
                    break
                token = _pick(logits if bias is None else logits + bias, params, gen)
                if not out:
                    ttft = time.perf_counter() - started
                    if cache is not None:
                        cache.record_ttft(ttft, hit=cached > 0)
                if token in self._eos:
                    finish = "stop"
                    break
                out.append(token)
                seen = len(text)
                text += stream.step(token)
                # Only the new text (and a stop string's length before it) can hold a new stop.
                cut = _find_stop(text, params.stop, max(0, seen - hold))
                if cut is not None:
                    text, finish = text[:cut], "stop"
                if on_delta is not None:
                    # Hold back a possible partial stop string or a half-decoded character.
                    safe = len(text) if finish == "stop" else max(len(emitted), len(text) - hold)
                    while safe > len(emitted) and text[safe - 1] == "\ufffd":
                        safe -= 1
                    if safe > len(emitted):
                        on_delta(text[len(emitted):safe])
                        emitted = text[:safe]
                if finish == "stop":
                    break
                if len(out) < params.max_new_tokens:
                    logits = self._forward(torch.tensor([[token]], dtype=torch.long, device=device), work)
        text = self.model.tokenizer.decode(out, skip_special_tokens=True)
        cut = _find_stop(text, params.stop)
        text = text[:cut] if cut is not None else text
        if on_delta is not None and len(text) > len(emitted) and text.startswith(emitted):
            on_delta(text[len(emitted):])
        with self._count_lock:
            self.finished[finish] += 1
        return LocalGeneration(text, tuple(out), len(ids), cached, ttft, finish)

    @property
    def step_lock(self) -> threading.Lock:
        """Held around every model forward: generation and scoring (``scoring.py``) take turns."""
        return self._step

    def _forward(self, inp: Any, work: Any, splice: tuple[list[int], Any] | None = None) -> Any:
        with self._step:
            if splice is None:
                return self.model.model(input_ids=inp, past_key_values=work, use_cache=True).logits[0, -1]
            embeds = soft_module.input_embeddings(self.model.model, inp, *splice)
            return self.model.model(inputs_embeds=embeds, past_key_values=work, use_cache=True).logits[0, -1]

    def _spliced(self, soft: SoftPrompt | None, start: int, end: int) -> tuple[list[int], Any] | None:
        """The soft positions in ``ids[start:end]`` (the prefill chunk; relative to it) and their
        vectors as a tensor; soft tokens before ``start`` are already in the KV."""
        if soft is None:
            return None
        import torch

        rows = [i for i, p in enumerate(soft.positions) if start <= p < end]
        if not rows:
            return None
        vectors = torch.as_tensor(soft.vectors[rows], dtype=self.model.dtype, device=self.model.device)
        return [soft.positions[i] - start for i in rows], vectors

    def _working_cache(self, ids: Sequence[int], tenant: str, cache: PrefixCache | None) -> tuple[Any, int]:
        from transformers import DynamicCache

        if cache is None:
            return DynamicCache(config=self.model.config), 0
        match = cache.match_prefix(self.namespace, tenant, ids)
        if not match.tokens:
            return DynamicCache(config=self.model.config), 0
        # The last prompt token must be run to get the next-token logits: keep it uncached.
        keep = min(match.tokens, len(ids) - 1)
        if keep == 0:
            return DynamicCache(config=self.model.config), 0
        return kv.assemble(match.payloads, self.model.config, self.model.dtype, keep_tokens=keep), keep

    def _store(self, ids: Sequence[int], tenant: str, work: Any, cache: PrefixCache) -> None:
        size = cache.block_size
        whole = len(ids) // size
        # Blocks already stored are skipped by hash; only encode the ones that are new.
        first = cache.cached_blocks(self.namespace, tenant, ids)
        if first < whole:
            payloads = kv.encode_blocks(work, first, whole - first, size, self.codec)
            cache.insert(self.namespace, tenant, ids, payloads, start_block=first)


def _cacheable(model: LocalModel) -> bool:
    """Prefix reuse is exact only for full-attention layers (no sliding windows, no recurrent state)."""
    text = model.config.get_text_config(decoder=True)
    types = getattr(text, "layer_types", None) or ["full_attention"]
    return all(t == "full_attention" for t in types) and not getattr(text, "sliding_window", None)


def _bias(params: SamplingParams, logits: Any) -> Any:
    """The logit bias as one dense vector (built once per request), or None."""
    if not params.logit_bias:
        return None
    import torch

    bias = torch.zeros_like(logits)
    ids = torch.tensor([i for i, _ in params.logit_bias], dtype=torch.long, device=logits.device)
    values = torch.tensor([v for _, v in params.logit_bias], dtype=logits.dtype, device=logits.device)
    valid = ids < bias.shape[-1]
    bias[ids[valid]] = values[valid]
    return bias


def _pick(logits: Any, params: SamplingParams, gen: Any) -> int:
    import torch

    if params.temperature == 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits.float() / params.temperature, dim=-1).cpu()
    if params.top_p < 1:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < params.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs, 1, generator=gen).item())


def _find_stop(text: str, stops: Sequence[str], start: int = 0) -> int | None:
    cuts = [i for i in (text.find(s, start) for s in stops if s) if i >= 0]
    return min(cuts) if cuts else None


class _TextStream:
    """The text of generated tokens, one token at a time, without decoding the whole output
    at every step: ``tokenizers``' DecodeStream for fast tokenizers (it holds back bytes of a
    character split over tokens); a slow tokenizer falls back to decoding everything."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.backend = getattr(tokenizer, "backend_tokenizer", None)
        self.ids: list[int] = []
        self.text = ""
        if self.backend is not None:
            from tokenizers.decoders import DecodeStream

            self.stream = DecodeStream(skip_special_tokens=True)

    def step(self, token: int) -> str:
        """The text ``token`` adds (may be empty while a character is incomplete)."""
        if self.backend is not None:
            return self.stream.step(self.backend, token) or ""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd") or not text.startswith(self.text):
            return ""  # a character split over tokens: wait for its last byte
        new, self.text = text[len(self.text):], text
        return new
