"""Per-token log-probabilities of many text segments behind one shared prefix.

``segment_logprobs(model, prefix_ids, segments)`` returns, for every token of every
segment, ``log p(token | prefix, earlier tokens of the segment)``. The prefix (a
question, an instruction) is run once; its KV cache is then shared by every
segment: segments are sorted by length, cut into batches of at most
``batch_tokens`` padded tokens, and each batch runs on a copy of the prefix cache
expanded to the batch. Padding goes on the right, where causal attention never
lets a real token see it, so no attention mask is needed and positions continue
from the prefix for every row (the left-padding bug of shared prefix caches does
not arise). The vocabulary projection runs in slices of positions so that memory
stays bounded (49k logits a position for SmolLM2).

torch is imported inside the functions; forwards take ``lock`` (the runtime's
step lock) so scoring and generation on one model never run at once.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Sequence

import numpy as np

from middleware.errors import InvalidArgument

# Positions projected onto the vocabulary at once (~48k floats each).
_HEAD_SLICE = 256


def segment_logprobs(model: Any, prefix_ids: Sequence[int], segments: Sequence[Sequence[int]], *,
                     batch_tokens: int = 1024, lock: threading.Lock | None = None) -> list[np.ndarray]:
    """``log p`` of each token of each segment given the prefix and the segment before it.

    ``model`` is a :class:`~middleware.llm.local.LocalModel`. The prefix must not be
    empty (the first token of a segment needs something to be predicted from).
    """
    import torch
    from transformers import DynamicCache

    if not prefix_ids:
        raise InvalidArgument("scoring needs a non-empty prefix")
    if batch_tokens < 1:
        raise InvalidArgument(f"batch_tokens must be >= 1, got {batch_tokens}")
    out: list[np.ndarray] = [np.zeros(0, dtype=np.float32) for _ in segments]
    todo = sorted((i for i, s in enumerate(segments) if len(s)), key=lambda i: -len(segments[i]))
    lm = model.model
    device = model.device
    guard = lock if lock is not None else contextlib.nullcontext()
    with torch.inference_mode():
        with guard:
            cache = DynamicCache(config=lm.config)
            body = lm.get_decoder()(input_ids=torch.tensor([list(prefix_ids)], device=device),
                                    past_key_values=cache, use_cache=True)
            first = torch.log_softmax(lm.get_output_embeddings()(body.last_hidden_state[0, -1]).float(), -1)
        prefix_kv = [(layer.keys, layer.values) for layer in cache.layers]
        for batch in _batches(todo, segments, batch_tokens):
            width = len(segments[batch[0]])
            ids = torch.zeros((len(batch), width), dtype=torch.long, device=device)
            for row, i in enumerate(batch):
                ids[row, :len(segments[i])] = torch.tensor(list(segments[i]), dtype=torch.long)
            work = DynamicCache(ddp_cache_data=[(k.expand(len(batch), -1, -1, -1).contiguous(),
                                                 v.expand(len(batch), -1, -1, -1).contiguous()) for k, v in prefix_kv],
                                config=lm.config)
            with guard:
                hidden = lm.get_decoder()(input_ids=ids, past_key_values=work, use_cache=True).last_hidden_state
                scores = _next_token_logprobs(lm, hidden[:, :-1], ids[:, 1:])
            for row, i in enumerate(batch):
                n = len(segments[i])
                lp = np.empty(n, dtype=np.float32)
                lp[0] = float(first[int(ids[row, 0])])
                lp[1:] = scores[row, :n - 1]
                out[i] = lp
    return out


def _batches(todo: list[int], segments: Sequence[Sequence[int]], batch_tokens: int) -> list[list[int]]:
    """Groups of segment indices (longest first) whose padded size stays within ``batch_tokens``."""
    batches: list[list[int]] = []
    for i in todo:
        if batches and len(segments[batches[-1][0]]) * (len(batches[-1]) + 1) <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _next_token_logprobs(lm: Any, hidden: Any, targets: Any) -> np.ndarray:
    """``log_softmax(head(hidden))`` at ``targets``, one slice of positions at a time."""
    import torch

    head = lm.get_output_embeddings()
    rows, width = targets.shape
    out = np.empty((rows, width), dtype=np.float32)
    for lo in range(0, width, _HEAD_SLICE):
        logits = head(hidden[:, lo:lo + _HEAD_SLICE]).float()
        picked = logits.gather(-1, targets[:, lo:lo + _HEAD_SLICE, None])[..., 0]
        out[:, lo:lo + _HEAD_SLICE] = (picked - torch.logsumexp(logits, -1)).cpu().numpy()
    return out
