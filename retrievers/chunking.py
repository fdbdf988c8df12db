"""Chunking by tokens of the embedding model, with overlap.

Invariant: a document that fits in one chunk is kept verbatim (its text is not
re-joined from tokens), so short documents come back exactly as indexed.
"""

from __future__ import annotations

from typing import Callable

from retrievers.base import ChunkingParams

Spans = Callable[[str], list[tuple[int, int]]]


def chunk_text(text: str, spans: Spans, params: ChunkingParams) -> list[str]:
    """Split ``text`` into windows of at most ``params.max_tokens`` tokens.

    Consecutive windows share ``params.overlap_tokens`` tokens. Each chunk is the
    original text from its first token's start to its last token's end.
    """
    tokens = spans(text)
    size = params.max_tokens
    if len(tokens) <= size:
        return [text]
    stride = size - params.overlap_tokens
    chunks = []
    start = 0
    while True:
        window = tokens[start:start + size]
        chunks.append(text[window[0][0]:window[-1][1]])
        if start + size >= len(tokens):
            return chunks
        start += stride
