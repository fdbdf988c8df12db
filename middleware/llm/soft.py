"""Soft tokens: prompts whose marked positions carry vectors instead of token ids.

A :class:`SoftPrompt` is the token ids of a prompt plus, at some positions, vectors
in the model's input-embedding space (one vector per position). The ids at those
positions are placeholders (the model never sees them: their input embeddings are
replaced before the first layer), and for the KV prefix cache each placeholder is
replaced by a key derived from its vector's bytes (:meth:`SoftPrompt.cache_keys`), so
two prompts share a cached prefix only when their vectors are bit-identical too.

Chat prompts are rendered by the model's own chat template with a :data:`MARKER`
string where vectors go; the rendered text is cut at the markers and each piece is
tokenised on its own (the markers sit between natural breaks, so this matches the
tokenisation of the whole text, which ``tests/test_soft_runtime.py`` checks).

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from middleware.errors import InvalidArgument

# Private-use characters: no tokenizer merges them with their neighbours, and no
# real question or title carries them (a text that does is refused, not misplaced).
MARKER = "\ue000soft\ue001"


@dataclass(frozen=True, eq=False)
class SoftPrompt:
    """Prompt ids with ``vectors[i]`` spliced in at ``positions[i]`` (ascending)."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    vectors: np.ndarray  # (len(positions), hidden), float32

    def __post_init__(self) -> None:
        if len(self.positions) != len(self.vectors):
            raise InvalidArgument(f"{len(self.positions)} soft positions but {len(self.vectors)} vectors")
        if any(b <= a for a, b in zip(self.positions, self.positions[1:])):
            raise InvalidArgument("soft positions must be strictly ascending")
        if self.positions and not 0 <= self.positions[0] <= self.positions[-1] < len(self.ids):
            raise InvalidArgument("soft positions must fall inside the prompt")

    @property
    def soft_tokens(self) -> int:
        return len(self.positions)

    def cache_keys(self) -> list[int]:
        """The ids with each soft position replaced by a key of its vector.

        Keys are negative, so they never equal a real token id; they are 63-bit digests
        of the vector's float32 bytes, so equal keys mean equal vectors (up to collisions
        of blake2b, which the cache already relies on for its block hashes).
        """
        keys = list(self.ids)
        vecs = np.ascontiguousarray(self.vectors, dtype=np.float32)
        for pos, vec in zip(self.positions, vecs):
            digest = hashlib.blake2b(vec.tobytes(), digest_size=8).digest()
            keys[pos] = -1 - (int.from_bytes(digest, "big") >> 1)
        return keys


def tokenize_with_markers(tokenizer: Any, text: str, counts: Sequence[int],
                          placeholder: int) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` with the i-th :data:`MARKER` expanded to ``counts[i]`` placeholders.

    Returns ``(ids, positions)``; the text around the markers is tokenised piece by
    piece without adding special tokens (the chat template already wrote them).
    """
    pieces = text.split(MARKER)
    if len(pieces) - 1 != len(counts):
        raise InvalidArgument(f"the prompt holds {len(pieces) - 1} soft-token markers, expected {len(counts)} "
                              "(a question, title or system prompt must not contain the marker character "
                              "U+E000)")
    ids: list[int] = []
    positions: list[int] = []
    for i, piece in enumerate(pieces):
        if piece:
            ids.extend(int(t) for t in tokenizer(piece, add_special_tokens=False)["input_ids"])
        if i < len(counts):
            positions.extend(range(len(ids), len(ids) + counts[i]))
            ids.extend([placeholder] * counts[i])
    return ids, positions


def chat_text(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The chat template rendered as text, with the assistant turn opened."""
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)


def soft_chat_prompt(tokenizer: Any, messages: Sequence[dict[str, str]], vectors: Sequence[np.ndarray],
                     placeholder: int) -> SoftPrompt:
    """A :class:`SoftPrompt` from chat messages whose text holds one :data:`MARKER` per group of vectors.

    ``vectors[i]`` (shape ``(k_i, hidden)``) replaces the i-th marker, in order.
    """
    groups = [np.asarray(v, dtype=np.float32).reshape(-1, np.shape(v)[-1]) for v in vectors]
    ids, positions = tokenize_with_markers(tokenizer, chat_text(tokenizer, messages), [len(g) for g in groups],
                                           placeholder)
    hidden = groups[0].shape[1] if groups else 0
    stacked = np.concatenate(groups, axis=0) if groups else np.zeros((0, hidden), dtype=np.float32)
    return SoftPrompt(tuple(ids), tuple(positions), stacked)


def input_embeddings(model: Any, ids: Any, positions: Sequence[int], vectors: Any) -> Any:
    """The model's input embeddings of ``ids`` (shape ``[1, n]``) with rows ``positions`` replaced.

    ``vectors`` is a tensor ``(len(positions), hidden)`` already on the model's device and dtype.
    """
    embeds = model.get_input_embeddings()(ids)
    if len(positions):
        import torch

        embeds = embeds.clone()
        embeds[0, torch.as_tensor(list(positions), device=embeds.device)] = vectors
    return embeds
