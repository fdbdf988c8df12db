"""Limits that protect a small box: sizes checked before any model runs, and a gate
on calls in flight (all tenants and per tenant) with load shedding under memory
pressure.

Refusals name the setting and its value. A request that is too large is
INVALID_ARGUMENT (sending it again will not help); a busy service is
RESOURCE_EXHAUSTED (retry later, or on another replica).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from middleware.errors import InvalidArgument, ResourceExhausted
from middleware.settings import Settings
from middleware.types import CompressRequest, Demonstration, Document

if TYPE_CHECKING:
    from middleware.demonstrations import SelectRequest
    from middleware.generation.generate import GenerateRequest
    from retrievers.base import IndexRequest, Query


def _size(text: str) -> int:
    # UTF-8 bytes without encoding: ASCII is the common case, and len() is O(1).
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Limits:
    """Size limits of one request (see the ``max_*`` settings)."""

    request_bytes: int
    documents: int
    document_bytes: int
    query_bytes: int
    target_tokens: int
    separator_bytes: int
    prompt_bytes: int
    pool_size: int

    @classmethod
    def from_settings(cls, s: Settings) -> "Limits":
        return cls(s.max_request_bytes, s.max_documents, s.max_document_bytes, s.max_query_bytes,
                   s.max_target_tokens, s.max_separator_bytes, s.max_prompt_bytes, s.max_pool_size)

    def check_request_size(self, rpc: str, nbytes: int) -> None:
        if nbytes > self.request_bytes:
            raise InvalidArgument(f"{rpc} request is {nbytes} bytes; the limit is {self.request_bytes} "
                                  f"(max_request_bytes)")

    def check_query(self, text: str, field: str = "query") -> None:
        if _size(text) > self.query_bytes:
            raise InvalidArgument(f"{field} is {_size(text)} bytes; the limit is {self.query_bytes} (max_query_bytes)")

    def check_documents(self, documents: tuple[Document, ...], field: str = "documents") -> None:
        if len(documents) > self.documents:
            raise InvalidArgument(f"{field} has {len(documents)} entries; the limit is {self.documents} "
                                  f"(max_documents)")
        for i, doc in enumerate(documents):
            size = _size(doc.text) + _size(doc.title)
            if size > self.document_bytes:
                raise InvalidArgument(f"{field}[{i}] (id {doc.id[:64]!r}) is {size} bytes; the limit is "
                                      f"{self.document_bytes} (max_document_bytes)")

    def check_compress(self, request: CompressRequest) -> None:
        self.check_query(request.query)
        self.check_documents(request.documents)
        if request.budget.max_tokens is not None and request.budget.max_tokens > self.target_tokens:
            raise InvalidArgument(f"budget.max_tokens is {request.budget.max_tokens}; the limit is "
                                  f"{self.target_tokens} (max_target_tokens)")
        separator = _size(request.context_format.separator)
        if separator > self.separator_bytes:
            raise InvalidArgument(f"context_format.separator is {separator} bytes; the limit is "
                                  f"{self.separator_bytes} (max_separator_bytes)")

    def check_generate(self, request: "GenerateRequest") -> None:
        self.check_compress(request.compress)
        demos = request.demonstrations
        if len(demos) > self.pool_size:
            raise InvalidArgument(f"demonstrations has {len(demos)} entries; the limit is {self.pool_size} "
                                  f"(max_pool_size)")
        prompt = _size(request.template) + _size(request.system_prompt) + sum(
            _size(d.input) + _size(d.output) for d in demos)
        if prompt > self.prompt_bytes:
            raise InvalidArgument(f"template, system_prompt and demonstrations are {prompt} bytes together; the "
                                  f"limit is {self.prompt_bytes} (max_prompt_bytes)")
        if request.select is not None:
            self.check_select(request.select)
        max_tokens = request.options.max_tokens
        if max_tokens is not None and max_tokens > self.target_tokens:
            raise InvalidArgument(f"generation.max_tokens is {max_tokens}; the limit is {self.target_tokens} "
                                  f"(max_target_tokens)")

    def check_index(self, request: "IndexRequest") -> None:
        self.check_documents(request.documents)
        if len(request.delete_ids) > self.documents:
            raise InvalidArgument(f"delete_ids has {len(request.delete_ids)} entries; the limit is "
                                  f"{self.documents} (max_documents)")

    def check_retrieve(self, query: "Query") -> None:
        self.check_query(query.text)

    def check_pool(self, size: int) -> None:
        """For demonstration pools (SelectDemonstrations)."""
        if size > self.pool_size:
            raise InvalidArgument(f"pool has {size} entries; the limit is {self.pool_size} (max_pool_size)")

    def check_demonstrations(self, demonstrations: Sequence[Demonstration], field: str = "pool") -> None:
        """An inline pool, or a batch added to a stored one: count and size of each entry."""
        self.check_pool(len(demonstrations))
        for i, demo in enumerate(demonstrations):
            size = _size(demo.input) + _size(demo.output) + _size(demo.label)
            if size > self.document_bytes:
                raise InvalidArgument(f"{field}[{i}] (id {demo.id[:64]!r}) is {size} bytes; the limit is "
                                      f"{self.document_bytes} (max_document_bytes)")

    def check_select(self, request: "SelectRequest") -> None:
        self.check_query(request.query)
        self.check_demonstrations(request.pool)
        if request.template and _size(request.template) > self.prompt_bytes:
            raise InvalidArgument(f"template is {_size(request.template)} bytes; the limit is {self.prompt_bytes} "
                                  f"(max_prompt_bytes)")


def resident_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Gate:
    """Admits calls while fewer than ``total`` (and ``per_tenant`` of the caller's tenant)
    are in flight and resident memory is under ``max_rss`` (0: unchecked).

    A call waiting for a worker thread counts as in flight, so the executor's queue is
    bounded by ``total``. Refusal is immediate: a refused call costs a counter check.
    """

    # Reading /proc costs ~10 us: once per interval is enough to notice pressure.
    RSS_INTERVAL = 0.25

    def __init__(self, total: int, per_tenant: int, max_rss: int = 0) -> None:
        self.total = total
        self.per_tenant = per_tenant
        self.max_rss = max_rss
        self._lock = threading.Lock()
        self._in_flight = 0
        self._by_tenant: dict[str, int] = {}
        self._rss = 0
        self._rss_at = 0.0
        self.refused = 0

    @classmethod
    def from_settings(cls, s: Settings) -> "Gate":
        return cls(s.max_concurrent_requests, s.max_concurrent_per_tenant, s.max_rss_bytes)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def rss(self) -> int:
        now = time.monotonic()
        if now - self._rss_at >= self.RSS_INTERVAL:
            self._rss, self._rss_at = resident_bytes(), now
        return self._rss

    def pressure(self) -> str:
        """Why the service should not take more work now ('' when it can)."""
        if self._in_flight >= self.total:
            return f"{self._in_flight} calls in flight (max_concurrent_requests {self.total})"
        if self.max_rss and self.rss() > self.max_rss:
            return f"resident memory {self.rss() // 2**20} MiB is over max_rss_bytes ({self.max_rss // 2**20} MiB)"
        return ""

    @contextlib.contextmanager
    def admit(self, tenant: str) -> Iterator[None]:
        with self._lock:
            reason = self.pressure()
            mine = self._by_tenant.get(tenant, 0)
            if not reason and mine >= self.per_tenant:
                reason = f"tenant {tenant!r} has {mine} calls in flight (max_concurrent_per_tenant {self.per_tenant})"
            if reason:
                self.refused += 1
                raise ResourceExhausted(f"server busy: {reason}; retry later")
            self._in_flight += 1
            self._by_tenant[tenant] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                left = self._by_tenant[tenant] - 1
                if left:
                    self._by_tenant[tenant] = left
                else:
                    del self._by_tenant[tenant]
