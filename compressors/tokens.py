"""``tokens``: question-aware word pruning scored by a small local language model.

LLMLingua's idea (drop what a small LM finds predictable), without its failures:
whole words only, verbatim and in order; numbers, names, identifiers and
structure force-kept; caller-marked spans untouched; the ceiling exact in the
target model's tokenizer; any prompt length. The shared steps are in
``compressors/pruning.py``; this module gives each word its information:

    information(word) = - sum over its LM tokens of log p(token | question, text before it)

scored by the local runtime's model (SmolLM2-135M-Instruct by default), injected
through the model registry. The question goes in a prefix computed once; every
document (title, then its surviving words) is a segment scored behind the
prefix's shared KV cache, in length-sorted batches (``middleware/llm/scoring.py``).
Documents longer than ``window`` LM tokens are scored in windows, each behind
the prefix. Token scores are mapped onto words through the tokenizer's character
offsets, so a word split into many LM tokens (or a CJK character into several
bytes) is scored as one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from compressors import words as wordsmod
from compressors.base import CompressionJob, Compressor, parse_options
from compressors.pruning import Prepared, PruneOptions, WordPruner
from compressors.registry import register
from middleware.errors import InvalidArgument
from middleware.models import ModelRegistry

PROMPT = "Question: {question}\nPassages that answer it:\n"
NO_QUESTION = "Passages:\n"


@dataclass(frozen=True)
class TokensOptions(PruneOptions):
    # The scoring model, a local one ("local/<name>"); "" is the service's local_model setting.
    scorer: str = ""
    # LM tokens per scored window, and padded tokens per batched forward pass.
    window: int = 256
    batch_tokens: int = 1024

    def check(self, method: str) -> None:
        super().check(method)
        if self.scorer and not self.scorer.startswith("local/"):
            raise InvalidArgument(f"method {method!r}: scorer must be a local model ('local/<name>'), got {self.scorer!r}")
        if not 16 <= self.window <= 4096 or not 16 <= self.batch_tokens <= 65536:
            raise InvalidArgument(f"method {method!r}: window must be in [16, 4096] and batch_tokens in [16, 65536]")


class TokensCompressor(WordPruner):
    name = "tokens"

    def __init__(self, options: TokensOptions, models: ModelRegistry) -> None:
        super().__init__(options, models)
        self.scorer = options.scorer or models.settings.local_model
        self._runtime: Any = None
        self._lock = threading.Lock()

    def runtime(self) -> Any:
        """The scoring model's runtime, loaded on first use (building the stage stays cheap)."""
        with self._lock:
            if self._runtime is None:
                self._runtime = self.models.local_runtime(self.scorer)
        return self._runtime

    def information(self, job: CompressionJob, docs: Sequence[Prepared]) -> list[np.ndarray]:
        from middleware.llm.scoring import segment_logprobs

        runtime = self.runtime()
        tok = runtime.model.tokenizer
        prompt = PROMPT.format(question=" ".join(job.query.split())) if job.query.strip() else NO_QUESTION
        prefix = tok.encode(prompt, add_special_tokens=False)
        window = self.options.window  # type: ignore[attr-defined]
        segments: list[list[int]] = []
        owners: list[tuple[int, np.ndarray]] = []  # (document, word index of each token of the segment)
        for d, p in enumerate(docs):
            ids, word_of = _tokens_to_words(tok, p)
            for lo in range(0, len(ids), window):
                segments.append(ids[lo:lo + window])
                owners.append((d, word_of[lo:lo + window]))
        logprobs = segment_logprobs(runtime.model, prefix, segments, lock=runtime.step_lock,
                                    batch_tokens=self.options.batch_tokens)  # type: ignore[attr-defined]
        out = [np.zeros(len(p.words), dtype=np.float64) for p in docs]
        for (d, word_of), lp in zip(owners, logprobs):
            valid = word_of >= 0
            out[d] += np.bincount(word_of[valid], weights=-lp[valid].astype(np.float64), minlength=len(out[d]))
        return out


def _tokens_to_words(tok: Any, p: Prepared) -> tuple[list[int], np.ndarray]:
    """LM token ids of the document as scored (title, newline, surviving words), and the word
    (index into ``p.words``) each token belongs to; -1 for the title's tokens.

    A token belongs to the word holding its last character; a token that ends in the
    whitespace before a word (SmolLM2 has a lone-space token before digits) belongs
    to the word after it.
    """
    title = p.doc.title.strip()
    lead = f"{title}\n" if title else ""
    kept = np.flatnonzero(p.allowed)
    body, at = wordsmod.join_with_offsets(p.words, kept)
    enc = tok(lead + body, return_offsets_mapping=True, add_special_tokens=False)
    ids = list(enc["input_ids"])
    if not ids:
        return [], np.zeros(0, dtype=np.int64)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    last = offsets[:, 1] - 1 - len(lead)
    ends = at + (p.words.ends - p.words.starts)[kept]
    k = np.searchsorted(at, last, side="right") - 1
    k = np.where((k >= 0) & (last >= ends[np.clip(k, 0, None)]), k + 1, k)
    word_of = np.where((last >= 0) & (k >= 0) & (k < len(kept)), kept[np.clip(k, 0, len(kept) - 1)], -1)
    return ids, word_of


@register("tokens", "question-aware word pruning scored by the local LM (SmolLM2) after extractive: "
                    "whole words, numbers, names and structure kept, exact budget", unit="word")
def _factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
    return TokensCompressor(parse_options(TokensOptions, options, "tokens"), models)
