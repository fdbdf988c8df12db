"""Retrieval modes by name: dense (FAISS), lexical (BM25), hybrid (rank fusion).

Each mode maps (collection, query text, n, allowed chunk ids or None) to
(chunk id, score) pairs, best first. Adding a mode is one registered function.
"""

from __future__ import annotations

from typing import Callable

from middleware.errors import UnknownName
from retrievers.base import Searchable

ModeFn = Callable[[Searchable, str, int, "set[int] | None"], list[tuple[int, float]]]
_MODES: dict[str, ModeFn] = {}
# Each list fed to the fusion is this many times deeper than the answer.
HYBRID_DEPTH = 4
HYBRID_MIN_DEPTH = 50


def register(name: str) -> Callable[[ModeFn], ModeFn]:
    def deco(fn: ModeFn) -> ModeFn:
        _MODES[name] = fn
        return fn
    return deco


def get(name: str) -> ModeFn:
    try:
        return _MODES[name]
    except KeyError:
        raise UnknownName("retrieval mode", name, _MODES) from None


def names() -> list[str]:
    return sorted(_MODES)


@register("dense")
def dense(collection: Searchable, text: str, n: int, allowed: "set[int] | None") -> list[tuple[int, float]]:
    return collection.dense_search(text, n, allowed)


@register("lexical")
def lexical(collection: Searchable, text: str, n: int, allowed: "set[int] | None") -> list[tuple[int, float]]:
    return collection.lexical_search(text, n, allowed)


@register("hybrid")
def hybrid(collection: Searchable, text: str, n: int, allowed: "set[int] | None") -> list[tuple[int, float]]:
    from retrievers.lexical import reciprocal_rank_fusion

    depth = max(HYBRID_MIN_DEPTH, HYBRID_DEPTH * n)
    rankings = [[cid for cid, _ in collection.dense_search(text, depth, allowed)],
                [cid for cid, _ in collection.lexical_search(text, depth, allowed)]]
    return reciprocal_rank_fusion(rankings)[:n]
