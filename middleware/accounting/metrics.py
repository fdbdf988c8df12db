"""Prometheus metrics of the service (prometheus-client), on their own registry.

Names follow Prometheus conventions: a ``ragpress_`` prefix, base units
(seconds, tokens, dollars), ``_total`` on counters (prometheus-client appends
it). Labels are bounded:

- ``rpc``: the service's RPC names (a closed set); ``code``: gRPC status names.
- ``method``, ``model``: registered methods and known models in practice, but a
  client chooses the string (a pipeline joins several methods; ``unknown_model =
  "fallback"`` accepts any model name), so each is capped at
  ``Settings.metrics_max_label_values`` distinct values; later values are
  reported as ``"other"``.
- ``tenant``: only on the money and token counters, which are what a tenant is
  billed for, and capped the same way. Latency histograms (many series per label
  value) carry no tenant. Per-tenant detail without a cap lives in the ledger
  (``GetUsage``, ``ragpress usage``, the embedded dashboard).
- No request ids, ever.

Series that a healthy server would otherwise not have (errors before the first
error, each RPC before its first call) are created at zero, so dashboards show 0
rather than "No data". The registry also carries the process (CPU, memory, file
descriptors), Python platform and garbage-collector collectors and
``ragpress_build_info``.
"""

from __future__ import annotations

import threading
from typing import Iterable

OTHER = "other"
# Codes whose error series exist from the start (the ones dashboards watch).
WATCHED_CODES = ("INVALID_ARGUMENT", "NOT_FOUND", "UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                 "DEADLINE_EXCEEDED", "UNAVAILABLE", "INTERNAL")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LabelCap:
    """Admits the first ``limit`` distinct values of a label; the rest become ``"other"``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


class Metrics:
    """Every metric the service exports. One instance per server (own registry)."""

    def __init__(self, max_label_values: int = 50, rpcs: Iterable[str] = ()) -> None:
        from prometheus_client import (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry,
                                       Counter, Gauge, Histogram, Info)

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tenant = LabelCap(max_label_values)
        self.model = LabelCap(max_label_values)
        self.method = LabelCap(max_label_values)
        usage = ("rpc", "tenant", "model", "method")
        self.requests = Counter("ragpress_rpc_requests", "Finished RPCs by status code.", ("rpc", "code"),
                                registry=r)
        self.errors = Counter("ragpress_rpc_errors", "RPCs that ended with a status other than OK.",
                              ("rpc", "code"), registry=r)
        self.latency = Histogram("ragpress_request_latency_seconds", "Wall time of an RPC in the handler.",
                                 ("rpc", "method"), buckets=LATENCY_BUCKETS, registry=r)
        self.original_tokens = Counter("ragpress_original_tokens", "Prompt tokens before compression.", usage,
                                       registry=r)
        self.compressed_tokens = Counter("ragpress_compressed_tokens", "Prompt tokens after compression.", usage,
                                         registry=r)
        self.saved_tokens = Counter("ragpress_saved_tokens", "Prompt tokens removed by compression.", usage,
                                    registry=r)
        self.completion_tokens = Counter("ragpress_completion_tokens", "Completion tokens of Generate calls.",
                                         usage, registry=r)
        self.stage_tokens = Counter("ragpress_stage_tokens", "Tokens into and out of each pipeline stage.",
                                    ("method", "direction"), registry=r)
        self.stage_latency = Histogram("ragpress_stage_latency_seconds", "Compressor time of one pipeline stage.",
                                       ("method",), buckets=LATENCY_BUCKETS, registry=r)
        self.cost_before = Counter("ragpress_cost_before_dollars", "Price of the uncompressed prompts (USD).",
                                   usage, registry=r)
        self.cost_after = Counter("ragpress_cost_after_dollars", "Price of the compressed prompts (USD).", usage,
                                  registry=r)
        self.saved = Counter("ragpress_saved_dollars", "Dollars saved by compression, before compute (USD).",
                             usage, registry=r)
        self.compute = Counter("ragpress_compute_dollars",
                               "Compressor cost in USD: its compute time and its own model calls.", usage,
                               registry=r)
        self.compressor_model_tokens = Counter(
            "ragpress_compressor_model_tokens", "Tokens a compressor spent on its own model (the abstractive "
            "summariser), in that model's tokenizer.", ("method", "model", "kind"), registry=r)
        self.cache_query = Counter("ragpress_prefix_cache_query_tokens", "Prompt tokens looked up in a prefix cache.",
                                   ("model",), registry=r)
        self.cache_hit = Counter("ragpress_prefix_cache_hit_tokens", "Prompt tokens served from a prefix cache.",
                                 ("model",), registry=r)
        self.ledger_pending = Gauge("ragpress_ledger_pending_records", "Usage records waiting to be written.",
                                    registry=r)
        self.ledger_written = Counter("ragpress_ledger_written_records", "Usage records committed to the ledger.",
                                      registry=r)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        self.build = Info("ragpress_build", "Versions of ragpress and its runtime.", registry=r)
        self.build.info(_build_info())
        for rpc in rpcs:
            self.requests.labels(rpc, "OK")
            for code in WATCHED_CODES:
                self.errors.labels(rpc, code)

    def observe_rpc(self, rpc: str, method: str, code: str, seconds: float) -> None:
        """Called by the error interceptor once per finished RPC."""
        self.requests.labels(rpc, code).inc()
        if code != "OK":
            self.errors.labels(rpc, code).inc()
        self.latency.labels(rpc, self.method(method or "none")).observe(seconds)

    def names(self) -> set[str]:
        """Every sample name this registry can export (``_total``, ``_bucket``, ... included)."""
        return set(_sample_names(self.registry.collect()))


def _build_info() -> dict[str, str]:
    import platform
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"version": version("ragpress"), "python": platform.python_version(), "grpcio": version("grpcio"),
            "protobuf": version("protobuf")}


def exposition(registry, accept: str | None) -> tuple[bytes, str]:
    """The registry's samples in the format the scraper asked for (OpenMetrics or Prometheus text)."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def _sample_names(families: Iterable) -> Iterable[str]:
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",), "summary": ("_sum", "_count", "_created"), "info": ("_info",)}
    for family in families:
        for suffix in suffixes.get(family.type, ("",)):
            yield family.name + suffix
