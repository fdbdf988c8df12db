"""A bounded, thread-safe LRU cache of finished abstractive outputs.

Keys are content hashes (:func:`key`) of everything the output depends on: the
documents (ids, titles, texts, metadata), the query, the summariser, the
options, the budget and the target tokenizer. A hit returns the stored output
as it was, so a repeated request costs a hash and a lookup; the entries are
immutable (frozen dataclasses), so sharing them between requests is safe.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

V = TypeVar("V")


def key(*parts: Any) -> str:
    """A stable digest of JSON-like ``parts`` (order-sensitive)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


class SummaryCache(Generic[V]):
    """At most ``entries`` values; the least recently used one goes first. 0 entries: off."""

    def __init__(self, entries: int) -> None:
        if entries < 0:
            raise ValueError(f"a cache holds >= 0 entries, got {entries}")
        self.entries = entries
        self._data: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, k: str) -> V | None:
        with self._lock:
            value = self._data.get(k)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(k)
            self.hits += 1
            return value

    def put(self, k: str, value: V) -> None:
        if not self.entries:
            return
        with self._lock:
            self._data[k] = value
            self._data.move_to_end(k)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
