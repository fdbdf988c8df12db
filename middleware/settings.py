"""One settings object, read once at start-up and passed down.

Sources, later ones winning: the defaults below, a TOML file (``--config`` or
``RAGPRESS_CONFIG``; keys as the field names, optionally under ``[ragpress]``),
then environment variables ``RAGPRESS_<FIELD>`` (upper case).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from middleware.errors import InvalidArgument

ENV_PREFIX = "RAGPRESS_"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    # Largest gRPC message accepted or sent, in bytes.
    max_message_bytes: int = 64 * 1024 * 1024
    # Threads that run CPU-heavy work off the event loop.
    workers: int = 2
    default_model: str = "gpt-4o"
    default_method: str = "extractive"
    # "error": an unknown model name is INVALID_ARGUMENT; "fallback": count with cl100k_base.
    unknown_model: str = "error"
    # Load and warm the models before reporting SERVING.
    warm_up: bool = True
    # Seconds in-flight calls get to finish after SIGTERM.
    drain_seconds: float = 10.0
    # Where persistent state (ledger, indexes, model caches) lives.
    data_dir: str = ".ragpress"
    # Folder of a sentence-transformers model; empty: all-MiniLM-L6-v2 from its package;
    # "hashing": a model-free bag-of-words embedder (tests, minimal set-ups).
    embedding_model: str = ""
    # Where derived model files (the static MiniLM table, local models converted from GGUF)
    # are cached; empty: <venv>/share/ragpress.
    cache_dir: str = ""
    log_level: str = "INFO"
    # Usage ledger: "" = SQLite in data_dir; "sqlite:///path.db"; "postgresql://..."; "none".
    ledger_url: str = ""
    # The ledger's writer thread commits a batch this often (or at ledger_batch_size records).
    ledger_flush_seconds: float = 0.5
    ledger_batch_size: int = 500
    # HTTP port for /metrics and /dashboard: -1 off, 0 a free port (logged), else that port.
    metrics_port: int = -1
    # Distinct values a tenant/model/method Prometheus label may take; later ones become "other".
    metrics_max_label_values: int = 50
    # Price of the compressor's compute time, for the net saving (about one small cloud VM).
    compute_usd_per_hour: float = 0.10
    # Chunks of indexed documents, in tokens of the embedding model (capped at what it reads).
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 32
    # Save collections under data_dir/collections after every change (off: memory only).
    persist_collections: bool = True

    def resolved_cache_dir(self) -> Path:
        import sys

        return Path(self.cache_dir) if self.cache_dir else Path(sys.prefix) / "share" / "ragpress"

    # LLM gateway (Generate): base URL of an OpenAI-compatible server and its key
    # (empty: litellm's provider defaults and environment variables).
    llm_api_base: str = ""
    llm_api_key: str = ""
    # Upstream time-out when the client sets no deadline.
    llm_timeout_seconds: float = 60.0
    # On upstream failure: "fail" (UNAVAILABLE), "retry" (then fail) or "local".
    llm_fallback: str = "fail"
    llm_retries: int = 2
    # Local model used for "local" fallback; "local/<name>" targets run locally.
    local_model: str = "local/smollm2"
    # Extra local models: "name=/path/to/hf-folder,other=/path".
    local_model_dirs: str = ""
    # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
    local_device: str = "auto"
    # torch intra-op threads for local models (0: torch's default). 1 avoids OpenMP
    # barrier stalls when the CPU is shared with other busy processes.
    local_threads: int = 0
    # ONNX Runtime intra-op threads of the int8 MiniLM (demonstration pools, the extractive
    # method's reading of passage leads). 1 suits a service running requests in
    # parallel; 2 read 8 leads in 36 ms instead of 56 alone, but did not lower the extractive
    # request p50 on this shared 2-core machine (README, NQ benchmark).
    onnx_threads: int = 1
    # Default max new tokens for local generation when the request sets none.
    local_max_new_tokens: int = 256
    # KV prefix cache of local models: byte bound (0 turns it off), block size in tokens, codec.
    prefix_cache_bytes: int = 256 * 1024 * 1024
    prefix_cache_block: int = 16
    prefix_cache_codec: str = "fp"
    # Prompt template for Generate: a registered name or template text.
    prompt_template: str = "default"
    # Finished outputs of the abstractive method kept for repeated requests (0 turns the cache off).
    summary_cache_entries: int = 1024
    # The local model that writes abstractive summaries when the request names none (and when a
    # litellm summariser falls back to "local"): SmolLM2 with the shipped summariser adapter.
    summarizer_model: str = "local/smollm2-summarizer"
    # Soft-token projector (method "soft"): a weights file from `ragpress train-projector`;
    # empty: the shipped one (compressors/data/soft_projector.npz, for local/smollm2).
    soft_projector: str = ""

    # --- production (docs/production.md): authentication, TLS, limits, shared state ---
    # API keys, stored hashed: a TOML file (reloaded when it changes) and/or inline entries
    # "<sha256 hex>:<tenant>:<role>" separated by ';' (for an environment variable).
    # With any key configured every call needs one; x-ragpress-tenant is then ignored.
    api_keys_file: str = ""
    api_keys: str = ""
    # Serve without keys on a non-loopback host (refused otherwise).
    insecure: bool = False
    # TLS for the gRPC port (PEM files); a client CA turns on mutual TLS.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # Bind address of the metrics/dashboard port: loopback unless set (with keys on, it
    # also asks for an admin key).
    metrics_host: str = "127.0.0.1"
    # Limits, checked before any model runs. Sizes in bytes of UTF-8 text.
    max_request_bytes: int = 8 * 1024 * 1024
    max_documents: int = 1000
    max_document_bytes: int = 1024 * 1024
    max_query_bytes: int = 32 * 1024
    max_target_tokens: int = 128_000
    max_separator_bytes: int = 256
    # Template, system prompt and demonstrations of Generate, together.
    max_prompt_bytes: int = 256 * 1024
    max_pool_size: int = 1000
    # Calls in flight (running or queued for a worker): all tenants, and one tenant.
    max_concurrent_requests: int = 64
    max_concurrent_per_tenant: int = 32
    # Requests larger than this run one at a time on a worker thread of their own, so large
    # inputs can never occupy every worker and stall small calls.
    heavy_request_bytes: int = 256 * 1024
    # Shed load (RESOURCE_EXHAUSTED, readiness NOT_SERVING) above this resident size; 0: off.
    max_rss_bytes: int = 0
    # Local models: longest prompt accepted, and prefill chunk (bounds attention memory).
    local_max_prompt_tokens: int = 4096
    local_prefill_chunk: int = 512
    # Shared state of replicas: "redis://host:port/0" for the result cache and collections
    # metadata; "" keeps both in this process.
    redis_url: str = ""
    # Compress results cached (per tenant); 0 turns the cache off.
    result_cache_entries: int = 2048
    result_cache_ttl_seconds: int = 3600

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> "Settings":
        env = dict(env or {})
        values: dict[str, Any] = {}
        path = path or env.get(ENV_PREFIX + "CONFIG")
        if path:
            values.update(_read_toml(Path(path)))
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env:
                values[f.name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Settings":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidArgument(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        typed = {name: _coerce(name, known[name].type, value) for name, value in values.items()}
        settings = cls(**typed)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidArgument(f"setting port must be in 0..65535, got {self.port}")
        if self.workers < 1:
            raise InvalidArgument(f"setting workers must be >= 1, got {self.workers}")
        if self.max_message_bytes < 1024:
            raise InvalidArgument("setting max_message_bytes must be >= 1024")
        if not -1 <= self.metrics_port <= 65535:
            raise InvalidArgument(f"setting metrics_port must be -1 (off) or in 0..65535, got {self.metrics_port}")
        if not self.ledger_flush_seconds > 0 or self.ledger_batch_size < 1:
            raise InvalidArgument("settings ledger_flush_seconds must be > 0 and ledger_batch_size >= 1")
        if self.metrics_max_label_values < 1 or not self.compute_usd_per_hour >= 0:
            raise InvalidArgument("settings metrics_max_label_values must be >= 1 and compute_usd_per_hour >= 0")
        if self.chunk_tokens < 8:
            raise InvalidArgument(f"setting chunk_tokens must be >= 8, got {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens // 2 + 1:
            raise InvalidArgument("setting chunk_overlap_tokens must be in 0..chunk_tokens/2")
        if self.unknown_model not in ("error", "fallback"):
            raise InvalidArgument(f"setting unknown_model must be 'error' or 'fallback', got {self.unknown_model!r}")
        if self.llm_fallback not in ("fail", "retry", "local"):
            raise InvalidArgument(f"setting llm_fallback must be 'fail', 'retry' or 'local', got {self.llm_fallback!r}")
        if self.llm_timeout_seconds <= 0 or self.llm_retries < 0 or self.local_max_new_tokens < 1:
            raise InvalidArgument("settings llm_timeout_seconds must be > 0, llm_retries >= 0, local_max_new_tokens >= 1")
        if not self.local_model.startswith("local/") or self.local_model == "local/":
            raise InvalidArgument(f"setting local_model must look like 'local/<name>', got {self.local_model!r}")
        if not self.summarizer_model.startswith("local/") or self.summarizer_model == "local/":
            raise InvalidArgument(f"setting summarizer_model must look like 'local/<name>', "
                                  f"got {self.summarizer_model!r}")
        if self.local_threads < 0:
            raise InvalidArgument(f"setting local_threads must be >= 0, got {self.local_threads}")
        if self.onnx_threads < 1:
            raise InvalidArgument(f"setting onnx_threads must be >= 1, got {self.onnx_threads}")
        if self.prefix_cache_bytes < 0 or self.prefix_cache_block < 1:
            raise InvalidArgument("settings prefix_cache_bytes must be >= 0 and prefix_cache_block >= 1")
        limits = ("max_request_bytes", "max_documents", "max_document_bytes", "max_query_bytes", "max_target_tokens",
                  "max_separator_bytes", "max_prompt_bytes", "max_pool_size", "max_concurrent_requests",
                  "max_concurrent_per_tenant", "local_max_prompt_tokens", "local_prefill_chunk", "heavy_request_bytes")
        for name in limits:
            if getattr(self, name) < 1:
                raise InvalidArgument(f"setting {name} must be >= 1, got {getattr(self, name)}")
        if self.max_rss_bytes < 0 or self.result_cache_entries < 0 or self.result_cache_ttl_seconds < 1:
            raise InvalidArgument("settings max_rss_bytes and result_cache_entries must be >= 0, "
                                  "result_cache_ttl_seconds >= 1")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise InvalidArgument("settings tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise InvalidArgument("setting tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidArgument(f"setting redis_url must start with redis://, rediss:// or unix://, "
                                  f"got {self.redis_url!r}")
        if self.summary_cache_entries < 0:
            raise InvalidArgument(f"setting summary_cache_entries must be >= 0, got {self.summary_cache_entries}")
        if self.prefix_cache_codec not in ("fp", "int8"):
            raise InvalidArgument(f"setting prefix_cache_codec must be 'fp' or 'int8', got {self.prefix_cache_codec!r}")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidArgument(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"config file {path} is not valid TOML: {exc}") from exc
    return dict(data.get("ragpress", data))


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    kind = {"int": int, "float": float, "bool": bool, "str": str}[str(annotation)]
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(text)
            return kind(text)
        except ValueError as exc:
            raise InvalidArgument(f"setting {name}: cannot read {value!r} as {kind.__name__}") from exc
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise InvalidArgument(f"setting {name}: expected {kind.__name__}, got {type(value).__name__}")
