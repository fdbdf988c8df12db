"""A block-granular prefix cache for KV states, in the style of SGLang's ``mem_cache``.

The cache knows nothing about tensors: it stores opaque *block payloads* (the KV
of ``block_size`` consecutive tokens, encoded by :mod:`middleware.llm.kv`) that
report their size in bytes. The interface is ``match_prefix`` / ``insert`` /
``evict`` with typed results.

Invariants:

- A block is addressed by a *chained* hash: ``h_i = H(h_{i-1}, ids of block i)``,
  with ``h_{-1} = H(namespace, tenant)``. The namespace names the model, its
  dtype and its tokenizer, so prompts with the same leading ids but a different
  namespace or tenant are kept disjoint: no hit ever crosses tenants or models.
- A hit is always a run of whole blocks from the start of the prompt (longest
  prefix); a partial trailing block is never stored.
- Payloads are immutable once stored; callers get them back and build their own
  working copy (see :func:`middleware.llm.kv.assemble`).
- Recency: every access touches a chain from its last block back to its first,
  so a parent is always more recent than any of its children and LRU eviction
  removes leaves before the blocks they hang from (a child whose parent is gone
  could never be matched again, so evicting it first keeps the store useful).
- The store never holds more than ``max_bytes`` bytes of payload.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, Sequence

from middleware.errors import InvalidArgument


class Payload(Protocol):
    """What the store holds for one block."""

    @property
    def nbytes(self) -> int: ...


@dataclass(frozen=True)
class PrefixCacheParams:
    """How the store is sized and cut into blocks."""

    block_size: int = 16
    max_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise InvalidArgument(f"prefix cache block_size must be >= 1, got {self.block_size}")
        if self.max_bytes < 0:
            raise InvalidArgument(f"prefix cache max_bytes must be >= 0, got {self.max_bytes}")


class MatchResult(NamedTuple):
    """The longest cached prefix of a prompt: ``tokens`` ids covered by ``payloads`` (in order)."""

    tokens: int
    payloads: tuple[Any, ...]
    hashes: tuple[bytes, ...]


class InsertResult(NamedTuple):
    """Blocks newly stored, blocks already present, blocks refused for lack of room."""

    inserted: int
    present: int
    refused: int


@dataclass
class CacheStats:
    """Plain counters: hit and queried tokens, time to first token on hits and misses."""

    queried_tokens: int = 0
    hit_tokens: int = 0
    lookups: int = 0
    hits: int = 0
    inserted_blocks: int = 0
    evicted_blocks: int = 0
    ttft_hit_seconds: list[float] = field(default_factory=list)
    ttft_miss_seconds: list[float] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        """Share of queried prompt tokens served from the cache."""
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0


@dataclass
class _Block:
    payload: Any
    parent: bytes | None
    nbytes: int


def root_hash(namespace: str, tenant: str) -> bytes:
    """The salt a tenant's chains start from, within one model namespace."""
    return hashlib.blake2b(f"{len(namespace)}:{namespace}|{tenant}".encode(), digest_size=16).digest()


def chain_hashes(namespace: str, tenant: str, ids: Sequence[int], block_size: int) -> list[bytes]:
    """Chained hashes of the whole blocks of ``ids``."""
    out: list[bytes] = []
    prev = root_hash(namespace, tenant)
    for start in range(0, len(ids) - block_size + 1, block_size):
        h = hashlib.blake2b(prev, digest_size=16)
        h.update(b",".join(str(int(i)).encode() for i in ids[start:start + block_size]))
        prev = h.digest()
        out.append(prev)
    return out


class PrefixCache:
    """Thread-safe, byte-bounded, LRU-evicting store of KV blocks keyed by chained hashes."""

    _TTFT_KEEP = 10_000  # bounded history for the metrics exporter

    def __init__(self, params: PrefixCacheParams | None = None) -> None:
        self.params = params or PrefixCacheParams()
        self._blocks: OrderedDict[bytes, _Block] = OrderedDict()  # oldest first
        self._bytes = 0
        self._lock = threading.Lock()
        self._stats = CacheStats()

    @property
    def block_size(self) -> int:
        return self.params.block_size

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._blocks)

    def match_prefix(self, namespace: str, tenant: str, ids: Sequence[int]) -> MatchResult:
        """The longest run of cached whole blocks from the start of ``ids``."""
        hashes = chain_hashes(namespace, tenant, ids, self.block_size)
        with self._lock:
            found: list[bytes] = []
            for h in hashes:
                if h not in self._blocks:
                    break
                found.append(h)
            for h in reversed(found):  # children first: parents end up more recent
                self._blocks.move_to_end(h)
            payloads = tuple(self._blocks[h].payload for h in found)
            tokens = len(found) * self.block_size
            self._stats.lookups += 1
            self._stats.queried_tokens += len(ids)
            self._stats.hit_tokens += tokens
            self._stats.hits += 1 if found else 0
        return MatchResult(tokens, payloads, tuple(found))

    def cached_blocks(self, namespace: str, tenant: str, ids: Sequence[int]) -> int:
        """How many leading whole blocks are stored (no stats, no recency change)."""
        n = 0
        with self._lock:
            for h in chain_hashes(namespace, tenant, ids, self.block_size):
                if h not in self._blocks:
                    break
                n += 1
        return n

    def insert(self, namespace: str, tenant: str, ids: Sequence[int], payloads: Sequence[Any],
               start_block: int = 0) -> InsertResult:
        """Store the blocks of ``ids``; ``payloads[j]`` is block ``start_block + j``.

        Blocks already present are left as they are (entries are immutable).
        Older blocks are evicted to make room; blocks that cannot fit even in an
        empty store are refused, and so is everything after a refused block.
        """
        hashes = chain_hashes(namespace, tenant, ids, self.block_size)
        if start_block + len(payloads) > len(hashes):
            raise InvalidArgument("more payloads than whole blocks in the ids")
        inserted = present = refused = 0
        with self._lock:
            chain: list[bytes] = []
            for j, payload in enumerate(payloads):
                i = start_block + j
                h = hashes[i]
                parent = hashes[i - 1] if i else None
                if parent is not None and parent not in self._blocks:
                    refused = len(payloads) - j  # an orphan could never be matched
                    break
                if h in self._blocks:
                    present += 1
                    chain.append(h)
                    continue
                size = int(payload.nbytes)
                self._evict_locked(self._bytes + size - self.params.max_bytes, protect=set(chain) | {parent})
                if self._bytes + size > self.params.max_bytes:
                    refused = len(payloads) - j
                    break
                self._blocks[h] = _Block(payload, parent, size)
                self._bytes += size
                inserted += 1
                chain.append(h)
            for h in reversed(chain):
                self._blocks.move_to_end(h)
            self._stats.inserted_blocks += inserted
        return InsertResult(inserted, present, refused)

    def evict(self, nbytes: int) -> int:
        """Free at least ``nbytes`` bytes (least recently used first); returns bytes freed."""
        with self._lock:
            return self._evict_locked(nbytes)

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._bytes = 0

    def _evict_locked(self, nbytes: int, protect: set | None = None) -> int:
        freed = 0
        protect = protect or set()
        for h in list(self._blocks):
            if freed >= nbytes:
                break
            if h in protect:
                continue
            block = self._blocks.pop(h)
            self._bytes -= block.nbytes
            freed += block.nbytes
            self._stats.evicted_blocks += 1
        return freed

    def record_ttft(self, seconds: float, hit: bool) -> None:
        with self._lock:
            series = self._stats.ttft_hit_seconds if hit else self._stats.ttft_miss_seconds
            series.append(seconds)
            del series[:-self._TTFT_KEEP]

    def stats(self) -> dict[str, float]:
        """A snapshot for metrics exporters (plain numbers, no references into the cache)."""
        with self._lock:
            s = self._stats
            return {
                "blocks": len(self._blocks),
                "bytes": self._bytes,
                "max_bytes": self.params.max_bytes,
                "lookups": s.lookups,
                "hits": s.hits,
                "queried_tokens": s.queried_tokens,
                "hit_tokens": s.hit_tokens,
                "hit_rate": s.hit_rate,
                "inserted_blocks": s.inserted_blocks,
                "evicted_blocks": s.evicted_blocks,
                "ttft_hit_count": len(s.ttft_hit_seconds),
                "ttft_hit_seconds_sum": sum(s.ttft_hit_seconds),
                "ttft_miss_count": len(s.ttft_miss_seconds),
                "ttft_miss_seconds_sum": sum(s.ttft_miss_seconds),
            }
