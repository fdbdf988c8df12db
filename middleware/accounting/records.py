"""Typed records of the usage ledger: what one call cost, and aggregated rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

from middleware.errors import InvalidArgument

# The RPCs that write usage records. A closed set: it is also a Prometheus label.
RPCS = ("Compress", "SelectDemonstrations", "Generate", "GenerateStream")

# Keys a query may group by, in the order they appear in a row's ``group``.
GROUP_KEYS = ("tenant", "model", "method", "rpc", "day")

DAY_SECONDS = 86400


class _Savings:
    """Dollars saved by compression, before and after the compressor's own compute."""

    cost_before_usd: float
    cost_after_usd: float
    compute_usd: float

    @property
    def saved_usd(self) -> float:
        return self.cost_before_usd - self.cost_after_usd

    @property
    def net_saved_usd(self) -> float:
        return self.saved_usd - self.compute_usd


@dataclass(frozen=True)
class UsageRecord(_Savings):
    """One priced call. Token counts are in the target model's tokenizer.

    ``original_tokens`` is the prompt had the documents gone uncompressed,
    ``compressed_tokens`` the prompt actually sent (or returned, for Compress),
    ``cached_tokens`` the part of it served from a prefix cache. ``cost_before_usd``
    prices the original prompt, ``cost_after_usd`` the compressed one (both with
    the completion); ``compute_usd`` is the compressor's own compute time priced
    at ``Settings.compute_usd_per_hour`` plus what it paid its own model (the
    abstractive summariser's tokens at litellm's prices), so the net saving is
    ``cost_before_usd - cost_after_usd - compute_usd``.
    """

    tenant: str
    rpc: str
    model: str
    method: str
    original_tokens: int
    compressed_tokens: int
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_before_usd: float = 0.0
    cost_after_usd: float = 0.0
    compute_usd: float = 0.0
    latency_ms: float = 0.0
    request_id: str = ""
    ts: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.rpc not in RPCS:
            raise InvalidArgument(f"usage record: rpc must be one of {list(RPCS)}, got {self.rpc!r}")
        for name in ("original_tokens", "compressed_tokens", "completion_tokens", "cached_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(f"usage record: {name} must be an integer >= 0, got {value!r}")



@dataclass(frozen=True)
class UsageQuery:
    """Records with ``start <= ts < end`` (epoch seconds), grouped by ``group_by``.

    ``bucket_seconds`` adds a time bucket (its start, epoch seconds) to the
    group, finer than a day; the embedded dashboard uses it for time series.
    """

    start: float = 0.0
    end: float = float("inf")
    group_by: tuple[str, ...] = ()
    bucket_seconds: int = 0
    # Only this tenant's records (None: every tenant's).
    tenant: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_by", tuple(self.group_by))
        unknown = [g for g in self.group_by if g not in GROUP_KEYS]
        if unknown:
            raise InvalidArgument(f"cannot group usage by {unknown}; known: {list(GROUP_KEYS)}")
        if len(set(self.group_by)) != len(self.group_by):
            raise InvalidArgument(f"group_by lists a key twice: {list(self.group_by)}")
        if self.end < self.start:
            raise InvalidArgument(f"usage time range: end ({self.end}) is before start ({self.start})")
        if self.bucket_seconds < 0:
            raise InvalidArgument("bucket_seconds must be >= 0")


@dataclass(frozen=True)
class UsageRow(_Savings):
    """Totals of the records sharing one ``group`` (e.g. ``{"tenant": "acme", "day": "2026-11-22"}``).

    ``latency_ms`` is the mean compressor latency per request; ``bucket`` is the
    start of the time bucket when the query asked for one (else ``None``).
    """

    group: Mapping[str, str]
    requests: int
    original_tokens: int
    compressed_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_before_usd: float
    cost_after_usd: float
    compute_usd: float
    latency_ms: float
    bucket: float | None = None


    @property
    def saved_tokens(self) -> int:
        return self.original_tokens - self.compressed_tokens
