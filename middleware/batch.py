"""The batch JSONL contract.

Input, one object a line::

    {"id": "...", "query": "...", "documents": [{"id", "title", "text", "metadata"}],
     "target_tokens": 300, "model": "gpt-4o", "method": "extractive"}

(``keep_ratio`` may replace ``target_tokens``; ``pipeline`` — a list of
``{"method", "options"}`` — may replace ``method``; missing values come from
the defaults, i.e. the CLI flags.) Output, one object a line, in input order::

    {"id", "method", "model", "original_tokens", "compressed_tokens", "budget_tokens",
     "documents": [...], "dropped_ids": [...], "context", "latency_ms", "tokenizer",
     "tokenizer_fallback", "stages": [...]}

An invalid line gets ``{"id": ..., "line": N, "error": "..."}`` and the batch goes on.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

from middleware.errors import InvalidArgument, RagpressError
from middleware.library import as_budget, as_document
from middleware.types import Budget, CompressRequest, CompressResult, Stage

_FIELDS = {"id", "query", "documents", "target_tokens", "keep_ratio", "model", "method", "pipeline"}


@dataclass(frozen=True)
class BatchDefaults:
    model: str = "gpt-4o"
    method: str = "extractive"
    target_tokens: int | None = None
    keep_ratio: float | None = None


def parse_line(obj: Any, defaults: BatchDefaults) -> CompressRequest:
    if not isinstance(obj, dict):
        raise InvalidArgument("a line must be a JSON object")
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
    query = obj.get("query", "")
    if not isinstance(query, str):
        raise InvalidArgument("query must be a string")
    docs = obj.get("documents", [])
    if not isinstance(docs, list):
        raise InvalidArgument("documents must be a list")
    if "target_tokens" in obj and "keep_ratio" in obj:
        raise InvalidArgument("give target_tokens or keep_ratio, not both")
    if "target_tokens" in obj:
        budget = Budget(max_tokens=obj["target_tokens"])
    elif "keep_ratio" in obj:
        budget = Budget(keep_ratio=obj["keep_ratio"])
    elif defaults.target_tokens is not None:
        budget = Budget(max_tokens=defaults.target_tokens)
    elif defaults.keep_ratio is not None:
        budget = as_budget(float(defaults.keep_ratio))
    else:
        raise InvalidArgument("no budget: give target_tokens (or keep_ratio) on the line or as a flag")
    if "method" in obj and "pipeline" in obj:
        raise InvalidArgument("give method or pipeline, not both")
    if "pipeline" in obj:
        stages = obj["pipeline"]
        if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
            raise InvalidArgument("pipeline must be a list of {\"method\", \"options\"} objects")
        pipeline = tuple(Stage(s.get("method", ""), s.get("options") or {}, _stage_budget(s)) for s in stages)
    else:
        method = obj.get("method", defaults.method)
        if not isinstance(method, str):
            raise InvalidArgument("method must be a string")
        pipeline = (Stage(method),)
    model = obj.get("model", defaults.model)
    if not isinstance(model, str):
        raise InvalidArgument("model must be a string")
    return CompressRequest(query=query, documents=tuple(as_document(d, i) for i, d in enumerate(docs)),
                           budget=budget, model=model, pipeline=pipeline)


def _stage_budget(stage: dict) -> Budget | None:
    """A stage's own ``target_tokens`` (or ``keep_ratio``), if it has one."""
    if "target_tokens" in stage and "keep_ratio" in stage:
        raise InvalidArgument("a pipeline stage gives target_tokens or keep_ratio, not both")
    if "target_tokens" in stage:
        return Budget(max_tokens=stage["target_tokens"])
    if "keep_ratio" in stage:
        return Budget(keep_ratio=stage["keep_ratio"])
    return None


def result_record(line_id: Any, request: CompressRequest, result: CompressResult, latency_ms: float) -> dict:
    return {
        "id": line_id,
        "method": "+".join(s.method for s in request.pipeline),
        "model": result.model,
        "original_tokens": result.original_tokens,
        "compressed_tokens": result.compressed_tokens,
        "budget_tokens": result.budget_tokens,
        "documents": [{"id": d.id, "title": d.title, "text": d.text, "metadata": dict(d.metadata)}
                      for d in result.documents],
        "dropped_ids": list(result.dropped_ids),
        "context": result.context,
        "latency_ms": round(latency_ms, 3),
        "tokenizer": result.tokenizer,
        "tokenizer_fallback": result.tokenizer_fallback,
        "stages": [asdict(s) | {"details": dict(s.details)} for s in result.stages],
    }


@dataclass
class Summary:
    lines: int = 0
    errors: int = 0
    over_budget: int = 0
    ratios: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def add(self, record: dict) -> None:
        self.lines += 1
        if "error" in record:
            self.errors += 1
            return
        if record["compressed_tokens"] > record["budget_tokens"]:
            self.over_budget += 1
        if record["compressed_tokens"]:
            self.ratios.append(record["original_tokens"] / record["compressed_tokens"])
        self.latencies.append(record["latency_ms"])

    def line(self) -> str:
        ratio = statistics.fmean(self.ratios) if self.ratios else 0.0
        lat = statistics.fmean(self.latencies) if self.latencies else 0.0
        p50 = statistics.median(self.latencies) if self.latencies else 0.0
        return (f"{self.lines} lines, {self.errors} errors, {self.over_budget} over budget, "
                f"mean ratio {ratio:.2f}x, mean latency {lat:.1f} ms (p50 {p50:.1f} ms)")


def run(lines: Iterable[str], defaults: BatchDefaults,
        compress: Callable[[CompressRequest], CompressResult]) -> Iterator[dict]:
    """One output record per non-blank input line, in order; errors become records."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        line_id: Any = None
        try:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"not valid JSON: {exc}") from exc
            if isinstance(obj, dict):
                line_id = obj.get("id")
            request = parse_line(obj, defaults)
            started = time.perf_counter()
            result = compress(request)
            latency = (time.perf_counter() - started) * 1000.0
            yield result_record(line_id, request, result, latency)
        except RagpressError as exc:
            yield {"id": line_id, "line": number, "error": str(exc)}
