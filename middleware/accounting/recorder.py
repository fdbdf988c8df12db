"""The one place that turns a finished call into metrics and a ledger record.

Handlers call :meth:`Recorder.record_compress` (Compress) or
:meth:`Recorder.record_usage` (Generate, SelectDemonstrations, anything else
that spends tokens). Both return at once: token counters move immediately, the
record is priced and written by the ledger's writer thread, and the dollar
counters move when it is written (a flush interval later).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

from middleware.accounting import prices
from middleware.accounting.backends import open_ledger
from middleware.accounting.ledger import Ledger
from middleware.accounting.metrics import Metrics
from middleware.accounting.records import RPCS, UsageQuery, UsageRecord, UsageRow
from middleware.accounting.writer import BatchWriter, recover
from middleware.errors import InvalidArgument
from middleware.interceptors import CALL, DEFAULT_TENANT
from middleware.settings import Settings
from middleware.types import CompressResult, StageStats


class Recorder:
    """Ledger + batch writer + metrics of one service process."""

    def __init__(self, settings: Settings, ledger: Ledger | None = None, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.ledger = ledger if ledger is not None else open_ledger(settings)
        self.metrics = metrics or Metrics(settings.metrics_max_label_values, rpcs=service_rpcs())
        spill = Path(settings.data_dir)
        if spill.is_dir():
            recover(self.ledger, spill)
        self.writer = BatchWriter(self.ledger, flush_seconds=settings.ledger_flush_seconds,
                                  batch_size=settings.ledger_batch_size, on_written=self._written,
                                  spill_dir=spill)
        self.metrics.ledger_pending.set_function(lambda: self.writer.pending)

    # --- recording -----------------------------------------------------------------------------
    def record_compress(self, result: CompressResult) -> None:
        """Record one Compress; tenant and request id come from the call context."""
        for stage in result.stages:
            method = self.metrics.method(stage.method)
            self.metrics.stage_tokens.labels(method, "in").inc(stage.input_tokens)
            self.metrics.stage_tokens.labels(method, "out").inc(stage.output_tokens)
            self.metrics.stage_latency.labels(method).observe(stage.latency_ms / 1000.0)
        self.record_usage(
            "Compress", model=result.model, method=pipeline_label(s.method for s in result.stages),
            original_tokens=result.original_tokens, compressed_tokens=result.compressed_tokens,
            compressor_latency_ms=sum(s.latency_ms for s in result.stages), request_id=result.request_id,
            compressor_usd=self.compressor_usd(result.stages))

    def compressor_usd(self, stages: Sequence[StageStats]) -> float:
        """Dollars the stages paid their own models (the abstractive summariser), counting
        their tokens in the metrics; record_usage adds them to the compressor's cost."""
        usd = 0.0
        for stage in stages:
            if stage.usage is None:
                continue
            labels = (self.metrics.method(stage.method), self.metrics.model(stage.usage.model))
            self.metrics.compressor_model_tokens.labels(*labels, "prompt").inc(stage.usage.prompt_tokens)
            self.metrics.compressor_model_tokens.labels(*labels, "completion").inc(stage.usage.completion_tokens)
            usd += stage.usage.cost_usd
        return usd

    def record_usage(self, rpc: str, *, model: str, method: str, original_tokens: int, compressed_tokens: int,
                     completion_tokens: int = 0, cached_tokens: int = 0, cache_query_tokens: int = 0,
                     compressor_latency_ms: float = 0.0, tenant: str | None = None,
                     request_id: str | None = None, compressor_usd: float = 0.0) -> None:
        """Record any token-spending call (Generate, SelectDemonstrations, ...).

        ``original_tokens``/``compressed_tokens`` are the prompt without and with
        compression; ``cached_tokens`` of the compressed prompt came from a prefix
        cache that was asked about ``cache_query_tokens`` tokens. The compressor's cost
        is its latency priced at ``compute_usd_per_hour`` plus ``compressor_usd`` (what
        it paid its own model). Tenant and request id default to the current call's
        (:data:`middleware.interceptors.CALL`).
        """
        if rpc not in RPCS:
            raise InvalidArgument(f"usage record: rpc must be one of {list(RPCS)}, got {rpc!r}")
        counts = {"original_tokens": original_tokens, "compressed_tokens": compressed_tokens,
                  "completion_tokens": completion_tokens, "cached_tokens": cached_tokens,
                  "cache_query_tokens": cache_query_tokens}
        for name, value in counts.items():
            # Checked here, not on the writer thread, so the caller sees its mistake.
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(f"usage record: {name} must be an integer >= 0, got {value!r}")
        call = CALL.get(None)
        tenant = tenant or (call.tenant if call else DEFAULT_TENANT)
        request_id = request_id or (call.request_id if call else "")
        labels = (rpc, self.metrics.tenant(tenant), self.metrics.model(model), self.metrics.method(method))
        m = self.metrics
        m.original_tokens.labels(*labels).inc(original_tokens)
        m.compressed_tokens.labels(*labels).inc(compressed_tokens)
        m.saved_tokens.labels(*labels).inc(max(0, original_tokens - compressed_tokens))
        if completion_tokens:
            m.completion_tokens.labels(*labels).inc(completion_tokens)
        if cache_query_tokens:
            m.cache_query.labels(labels[2]).inc(cache_query_tokens)
            m.cache_hit.labels(labels[2]).inc(cached_tokens)
        if not compressor_usd >= 0:
            raise InvalidArgument(f"usage record: compressor_usd must be >= 0, got {compressor_usd!r}")
        compute = compressor_latency_ms / 3_600_000.0 * self.settings.compute_usd_per_hour + compressor_usd
        self.writer.submit(functools.partial(
            priced_record, tenant=tenant, rpc=rpc, model=model, method=method, original_tokens=original_tokens,
            compressed_tokens=compressed_tokens, completion_tokens=completion_tokens, cached_tokens=cached_tokens,
            compute_usd=compute, latency_ms=compressor_latency_ms, request_id=request_id,
            ts=_now()))

    def _written(self, records: Sequence[UsageRecord]) -> None:
        m = self.metrics
        m.ledger_written.inc(len(records))
        for r in records:
            labels = (r.rpc, m.tenant(r.tenant), m.model(r.model), m.method(r.method))
            m.cost_before.labels(*labels).inc(r.cost_before_usd)
            m.cost_after.labels(*labels).inc(r.cost_after_usd)
            m.saved.labels(*labels).inc(max(0.0, r.saved_usd))
            m.compute.labels(*labels).inc(r.compute_usd)

    # --- reading and lifecycle -----------------------------------------------------------------
    def query(self, query: UsageQuery) -> list[UsageRow]:
        """Aggregates from the ledger (blocking: call it off the event loop)."""
        return self.ledger.query(query)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.writer.flush(timeout)

    def close(self) -> None:
        """Write every pending record, then release the ledger (the SIGTERM path)."""
        self.writer.close()


def pipeline_label(methods) -> str:
    """A pipeline's method label: its stages joined by '+', e.g. ``lexical+extractive``."""
    return "+".join(methods)


def priced_record(*, model: str, original_tokens: int, compressed_tokens: int, completion_tokens: int,
                  cached_tokens: int, **fields) -> UsageRecord:
    """A UsageRecord with its prices from litellm's map (runs on the writer thread)."""
    cost = prices.cost(model, original_tokens, compressed_tokens, completion_tokens, cached_tokens)
    return UsageRecord(model=model, original_tokens=original_tokens, compressed_tokens=compressed_tokens,
                       completion_tokens=completion_tokens, cached_tokens=cached_tokens,
                       cost_before_usd=cost.before_usd, cost_after_usd=cost.after_usd, **fields)


def _now() -> float:
    import time

    return time.time()


def service_rpcs() -> list[str]:
    """Every RPC of ragpress.v1.RagpressService, from its descriptor (new RPCs are included)."""
    from ragpress.v1 import ragpress_pb2 as pb

    return [m.name for m in pb.DESCRIPTOR.services_by_name["RagpressService"].methods]
