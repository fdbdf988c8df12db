"""State that replicas share: the Compress result cache and collections metadata.

Result cache: a compressed output is a pure function of the tenant, the method
code and its trained files, the tokenizer, the options and the input, so it is
keyed by a SHA-256 over exactly those (see :func:`result_key`). Embedded (one
process) it is an LRU in memory; with ``redis_url`` it lives in Redis, shared by
every replica, with a TTL. Entries of different tenants never share a key, so
one tenant can never be served (or learn the existence of) another's result.
A cache outage never fails a call: errors are logged and count as misses.

Collections metadata (Redis): a generation number per (tenant, collection),
bumped on every change, so a replica notices that another one changed a
collection and reloads it from the shared ``data_dir`` instead of serving its
stale copy (:class:`RedisCollectionsMeta`, injected into
:class:`retrievers.collections.Collections`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

from middleware.errors import Unavailable
from middleware.settings import Settings
from middleware.types import CompressorUsage, CompressRequest, CompressResult, Document, StageStats

log = logging.getLogger("ragpress.cache")

# Bump when the cached encoding or the meaning of a result changes.
CACHE_VERSION = 2
PREFIX = "ragpress:"


class ResultCache(Protocol):
    """Bytes by key, bounded, expiring."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...


class MemoryCache:
    """The embedded default: an LRU of ``entries`` results, each living ``ttl`` seconds."""

    def __init__(self, entries: int, ttl: float) -> None:
        self.entries = entries
        self.ttl = ttl
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return item[1]

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)


class RedisCache:
    """Results in Redis (``SET key value EX ttl``), shared by replicas; Redis's own
    ``maxmemory`` policy bounds it (run it with ``allkeys-lru``)."""

    def __init__(self, client, ttl: int) -> None:
        self.client = client
        self.ttl = ttl

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get(PREFIX + "result:" + key)
        except Exception as exc:  # noqa: BLE001 - redis-py's errors: an outage is a miss, never a failed call
            log.warning("result cache get failed (treated as a miss): %s", exc)
            return None

    def put(self, key: str, value: bytes) -> None:
        try:
            self.client.set(PREFIX + "result:" + key, value, ex=self.ttl)
        except Exception as exc:  # noqa: BLE001
            log.warning("result cache put failed (result not shared): %s", exc)


def redis_client(url: str):
    """A redis-py client with short time-outs (a slow cache must not hold calls)."""
    try:
        import redis
    except ImportError as exc:
        raise Unavailable("redis_url needs redis-py: pip install 'ragpress[redis]'") from exc

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def from_settings(settings: Settings) -> ResultCache | None:
    if settings.result_cache_entries == 0:
        return None
    if settings.redis_url:
        return RedisCache(redis_client(settings.redis_url), settings.result_cache_ttl_seconds)
    return MemoryCache(settings.result_cache_entries, settings.result_cache_ttl_seconds)


@lru_cache(maxsize=1)
def methods_fingerprint() -> str:
    """The method code's version: the package version and the trained files the methods load."""
    from importlib import metadata

    import compressors

    digest = hashlib.sha256()
    try:
        digest.update(metadata.version("ragpress").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"source")
    for path in sorted((Path(compressors.__file__).parent / "data").glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def result_key(tenant: str, request: CompressRequest, tokenizer: str) -> str:
    """SHA-256 over everything a result depends on; the tenant first, so no two tenants share a key."""
    canonical = {
        "v": CACHE_VERSION, "code": methods_fingerprint(), "tenant": tenant, "model": request.model,
        "tokenizer": tokenizer, "budget": [request.budget.max_tokens, request.budget.keep_ratio],
        "pipeline": [[s.method, dict(s.options), [s.budget.max_tokens, s.budget.keep_ratio] if s.budget else None]
                     for s in request.pipeline],
        "format": [request.context_format.separator, request.context_format.include_titles],
        "query": request.query,
        "documents": [[d.id, d.title, d.text, dict(d.metadata)] for d in request.documents],
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def encode(result: CompressResult) -> bytes:
    data = {f.name: getattr(result, f.name) for f in fields(result)}
    data["documents"] = [[d.id, d.title, d.text, dict(d.metadata)] for d in result.documents]
    # A stage's own model (the abstractive summariser) is kept by name only: a hit calls
    # nothing and pays nothing, so it decodes as a cached call.
    data["stages"] = [[s.method, s.input_tokens, s.output_tokens, s.latency_ms, dict(s.details),
                       s.usage.model if s.usage is not None else None] for s in result.stages]
    return json.dumps(data, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")


def decode(value: bytes) -> CompressResult:
    data = json.loads(value.decode("utf-8", "surrogatepass"))
    data["documents"] = tuple(Document(id=i, title=t, text=x, metadata=m) for i, t, x, m in data["documents"])
    data["stages"] = tuple(StageStats(*s[:5], usage=CompressorUsage(s[5], cached=True) if s[5] else None)
                           for s in data["stages"])
    data["dropped_ids"] = tuple(data["dropped_ids"])
    return CompressResult(**data)


def cached_compress(cache: ResultCache | None, tenant: str, request: CompressRequest, tokenizer: str,
                    compute: Callable[[], CompressResult], request_id: str) -> CompressResult:
    """``compute()``'s result, or the cached one for the same key (marked ``cached``).

    A stage whose options say ``cache: false`` (e.g. ``abstractive``, asking for a fresh
    summary) opts the whole request out: a stored result would answer it otherwise."""
    if cache is None or any(stage.options.get("cache") is False for stage in request.pipeline):
        return compute()
    key = result_key(tenant, request, tokenizer)
    hit = cache.get(key)
    if hit is not None:
        try:
            return replace(decode(hit), request_id=request_id, cached=True)
        except (ValueError, TypeError, KeyError) as exc:  # an entry from an incompatible version
            log.warning("dropping an unreadable result cache entry: %s", exc)
    result = compute()
    cache.put(key, encode(result))
    return result


class RedisCollectionsMeta:
    """Generation numbers of collections in Redis (``HINCRBY ragpress:collections:<tenant> <name>``).

    Meets :class:`retrievers.collections.CollectionsMeta`. Unlike the result cache, a
    replica cannot serve collections correctly without it: an outage is UNAVAILABLE.
    """

    def __init__(self, client) -> None:
        self.client = client

    def _key(self, tenant: str) -> str:
        return f"{PREFIX}collections:{tenant}"

    def _run(self, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - redis-py's errors, translated in this one place
            raise Unavailable(f"shared collections metadata (Redis) is unavailable: {exc}") from exc

    def bump(self, tenant: str, name: str) -> int:
        return int(self._run(self.client.hincrby, self._key(tenant), name, 1))

    def generation(self, tenant: str, name: str) -> int | None:
        value = self._run(self.client.hget, self._key(tenant), name)
        return int(value) if value is not None else None

    def names(self, tenant: str) -> list[str]:
        keys = self._run(self.client.hkeys, self._key(tenant))
        return sorted(k.decode() if isinstance(k, bytes) else k for k in keys)

    def forget(self, tenant: str, name: str) -> None:
        self._run(self.client.hdel, self._key(tenant), name)


def collections_meta(settings: Settings) -> RedisCollectionsMeta | None:
    return RedisCollectionsMeta(redis_client(settings.redis_url)) if settings.redis_url else None
