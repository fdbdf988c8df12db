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

from compressors import wordfit, words as wordsmod
from compressors.base import CompressionJob, Compressor, parse_options
from compressors.pruning import Prepared, PruneOptions, WordPruner, corpus_information, sentence_of
from compressors.registry import register
from middleware.errors import InvalidArgument
from middleware.models import ModelRegistry

PROMPT = "Question: {question}\nPassages that answer it:\n"
NO_QUESTION = "Passages:\n"
CONDITIONS = ("question", "none", "contrastive")


@dataclass(frozen=True)
class TokensOptions(PruneOptions):
    # The scoring model, a local one ("local/<name>"); "" is the service's local_model setting.
    scorer: str = ""
    # What the LM's scores are conditioned on: "question" (the question in the prefix),
    # "none" (a fixed prefix: plain self-information, its KV computed once per process), or
    # "contrastive" (none, plus how much more likely the question makes each word; two passes).
    condition: str = "question"
    # The LM scores the sentences holding words near the cut (priority within ``margin`` of it,
    # nearest first), at most ``lm_words`` words; corpus statistics rank the others.
    lm_words: int = 160
    margin: float = 3.0
    # LM tokens per scored window, and padded tokens per batched forward pass.
    window: int = 256
    batch_tokens: int = 1024

    def check(self, method: str) -> None:
        super().check(method)
        if self.condition not in CONDITIONS:
            raise InvalidArgument(f"method {method!r}: condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.scorer and not self.scorer.startswith("local/"):
            raise InvalidArgument(f"method {method!r}: scorer must be a local model ('local/<name>'), got {self.scorer!r}")
        if not 0 <= self.lm_words <= 100_000 or not 0.0 <= self.margin <= 100.0:
            raise InvalidArgument(f"method {method!r}: lm_words must be in [0, 100000] and margin in [0, 100]")
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
        """The first ranking: corpus statistics (as ``tokens-lite``); :meth:`refine` brings in the LM."""
        return corpus_information(docs)

    def refine(self, job: CompressionJob, prepared: list[Prepared], relevance: dict, info_z: list[np.ndarray],
               keyed: list[wordfit.DocWords]) -> list[wordfit.DocWords]:
        """Re-rank the words near the cut by the LM: their sentences are scored, and within them
        LM information replaces corpus information (rescaled to the same mean and spread, so the
        region keeps its place and only the order inside it follows the LM)."""
        o = self.options
        free = [p.allowed & (p.words.role == wordsmod.FREE) & ~p.inviolable for p in prepared]
        masks = wordfit.select(job, keyed)
        kept = np.concatenate([k.key[f & m] for k, f, m in zip(keyed, free, masks)])
        dropped = np.concatenate([k.key[f & ~m] for k, f, m in zip(keyed, free, masks)])
        if dropped.size == 0 or o.lm_words == 0:  # type: ignore[attr-defined]
            return keyed
        cut = (dropped.max() + (kept.min() if kept.size else dropped.max())) / 2
        near = []  # (distance to the cut, document, sentence, words)
        sents = [sentence_of(p, relevance[p.doc.id][0]) for p in prepared]
        for d, (k, f, sent) in enumerate(zip(keyed, free, sents)):
            dist = np.abs(k.key - cut)
            for s in np.unique(sent[f]).tolist():
                members = f & (sent == s)
                near.append((float(dist[members].min()), d, s, int(members.sum())))
        chosen = [np.zeros(len(p.words), dtype=bool) for p in prepared]
        total = 0
        for dist, d, s, n in sorted(near):
            if dist > o.margin or total + n > o.lm_words:  # type: ignore[attr-defined]
                break
            chosen[d] |= free[d] & (sents[d] == s)
            total += n
        if total == 0:
            return keyed
        lm = self.lm_information(job, [Prepared(p.doc, p.words, c, p.inviolable) for p, c in zip(prepared, chosen)])
        lm_z = self.info_z(job, prepared, lm, among=chosen)
        old = np.concatenate([z[c] for z, c in zip(info_z, chosen)])
        mu, sd = float(old.mean()), float(old.std()) or 1.0
        mixed = [np.where(c, mu + sd * l, z) for z, l, c in zip(info_z, lm_z, chosen)]
        return self.keyed(job, prepared, relevance, mixed)

    def lm_information(self, job: CompressionJob, docs: Sequence[Prepared]) -> list[np.ndarray]:
        """Each allowed word's surprisal under the LM (see ``condition``); documents without
        allowed words cost nothing."""
        runtime = self.runtime()
        tok = runtime.model.tokenizer
        window = self.options.window  # type: ignore[attr-defined]
        segments: list[list[int]] = []
        owners: list[tuple[int, np.ndarray]] = []  # (document, word index of each token of the segment)
        for d, p in enumerate(docs):
            if not p.allowed.any():
                continue
            ids, word_of = _tokens_to_words(tok, p)
            for lo in range(0, len(ids), window):
                segments.append(ids[lo:lo + window])
                owners.append((d, word_of[lo:lo + window]))
        condition = self.options.condition  # type: ignore[attr-defined]
        question = " ".join(job.query.split())
        if condition == "question" and question:
            return self._per_word(docs, owners, self._surprisal(runtime, PROMPT.format(question=question), segments))
        plain = self._surprisal(runtime, NO_QUESTION, segments)
        if condition == "contrastive" and question:
            gain = [p - q for p, q in zip(plain, self._surprisal(runtime, PROMPT.format(question=question), segments))]
            plain = [p + g for p, g in zip(plain, gain)]
        return self._per_word(docs, owners, plain)

    def _surprisal(self, runtime: Any, prompt: str, segments: list[list[int]]) -> list[np.ndarray]:
        from middleware.llm.scoring import segment_logprobs

        prefix = runtime.model.tokenizer.encode(prompt, add_special_tokens=False)
        lps = segment_logprobs(runtime.model, prefix, segments, lock=runtime.step_lock,
                               batch_tokens=self.options.batch_tokens)  # type: ignore[attr-defined]
        return [-lp.astype(np.float64) for lp in lps]

    @staticmethod
    def _per_word(docs: Sequence[Prepared], owners: list[tuple[int, np.ndarray]],
                  surprisal: list[np.ndarray]) -> list[np.ndarray]:
        out = [np.zeros(len(p.words), dtype=np.float64) for p in docs]
        for (d, word_of), s in zip(owners, surprisal):
            valid = word_of >= 0
            out[d] += np.bincount(word_of[valid], weights=s[valid], minlength=len(out[d]))
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
