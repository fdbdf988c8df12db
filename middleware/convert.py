"""The one boundary between wire types (protobuf) and domain types.

Nothing past this module sees a protobuf object.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from google.protobuf import json_format, struct_pb2

from middleware.errors import InvalidArgument
from middleware.settings import Settings
from middleware.types import (
    DEFAULT_SEPARATOR, Budget, CompressorUsage, CompressRequest, CompressResult, ContextFormat, Document, Stage,
)
from middleware.types import Demonstration
from ragpress.v1 import ragpress_pb2 as pb

if TYPE_CHECKING:
    from retrievers.base import Hit, IndexRequest, IndexResult, Query

_MAX_SAFE_INT = 2**53


def struct_to_dict(value: struct_pb2.Struct, where: str = "a Struct field") -> dict[str, Any]:
    """Struct -> dict; integral numbers come back as ints (Struct only has doubles).

    A Struct may carry NaN or Infinity on the wire, which JSON (and so the ledger,
    the collections' files and every client) cannot: that is the caller's bad input.
    """
    try:
        plain = json_format.MessageToDict(value)
    except ValueError as exc:
        raise InvalidArgument(f"{where} must be JSON-like: numbers must be finite (no NaN or Infinity)") from exc
    return _restore_ints(plain)


def _restore_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: _restore_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_ints(v) for v in value]
    return value


def dict_to_struct(value: Mapping[str, Any] | None, where: str = "metadata") -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        try:
            out.update(_plain(value))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"{where} must be JSON-like: {exc}") from exc
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def document_from_pb(msg: pb.Document, index: int) -> Document:
    return Document(id=msg.id or str(index), text=msg.text, title=msg.title,
                    metadata=struct_to_dict(msg.metadata, f"documents[{index}].metadata"))


def document_to_pb(doc: Document) -> pb.Document:
    return pb.Document(id=doc.id, title=doc.title, text=doc.text,
                       metadata=dict_to_struct(doc.metadata, f"document {doc.id!r} metadata"))


def budget_from_pb(msg: pb.Budget, has_budget: bool) -> Budget:
    which = msg.WhichOneof("limit") if has_budget else None
    if which is None:
        raise InvalidArgument("budget is required: set budget.max_tokens or budget.keep_ratio")
    if which == "max_tokens":
        return Budget(max_tokens=msg.max_tokens)
    return Budget(keep_ratio=msg.keep_ratio)


def pipeline_from_pb(method: str, stages: list[pb.CompressionStage], settings: Settings) -> tuple[Stage, ...]:
    if method and stages:
        raise InvalidArgument("give either method or pipeline, not both")
    if stages:
        return tuple(Stage(s.method, struct_to_dict(s.options, f"pipeline[{i}].options"),
                           budget_from_pb(s.budget, True) if s.HasField("budget") else None)
                     for i, s in enumerate(stages))
    return (Stage(method or settings.default_method),)


def compress_request_from_pb(msg: pb.CompressRequest, settings: Settings) -> CompressRequest:
    """The request; with ``collection`` set its documents are empty until retrieved
    (see :func:`compress_source_from_pb`)."""
    if msg.collection and msg.documents:
        raise InvalidArgument("give either documents or collection, not both")
    if msg.retrieve_top_k and not msg.collection:
        raise InvalidArgument("retrieve_top_k needs a collection")
    fmt = ContextFormat(separator=msg.context_format.separator or DEFAULT_SEPARATOR,
                        include_titles=not msg.context_format.omit_titles)
    return CompressRequest(
        query=msg.query,
        documents=tuple(document_from_pb(d, i) for i, d in enumerate(msg.documents)),
        budget=budget_from_pb(msg.budget, msg.HasField("budget")),
        model=msg.model or settings.default_model,
        pipeline=pipeline_from_pb(msg.method, list(msg.pipeline), settings),
        context_format=fmt,
    )


def compress_result_to_pb(result: CompressResult) -> pb.CompressResponse:
    return pb.CompressResponse(
        documents=[document_to_pb(d) for d in result.documents],
        dropped_ids=list(result.dropped_ids),
        context=result.context,
        original_tokens=result.original_tokens,
        compressed_tokens=result.compressed_tokens,
        stages=[pb.StageStats(method=s.method, input_tokens=s.input_tokens, output_tokens=s.output_tokens,
                              latency_ms=s.latency_ms, details=dict_to_struct(s.details, "details"),
                              usage=_usage_to_pb(s.usage))
                for s in result.stages],
        model=result.model,
        tokenizer=result.tokenizer,
        tokenizer_fallback=result.tokenizer_fallback,
        request_id=result.request_id,
        budget_tokens=result.budget_tokens,
        cached=result.cached,
    )


def compress_result_from_pb(msg: pb.CompressResponse) -> CompressResult:
    from middleware.types import StageStats

    return CompressResult(
        documents=tuple(document_from_pb(d, i) for i, d in enumerate(msg.documents)),
        dropped_ids=tuple(msg.dropped_ids),
        context=msg.context,
        original_tokens=msg.original_tokens,
        compressed_tokens=msg.compressed_tokens,
        budget_tokens=msg.budget_tokens,
        stages=tuple(StageStats(s.method, s.input_tokens, s.output_tokens, s.latency_ms,
                                struct_to_dict(s.details), _usage_from_pb(s)) for s in msg.stages),
        model=msg.model,
        tokenizer=msg.tokenizer,
        tokenizer_fallback=msg.tokenizer_fallback,
        request_id=msg.request_id,
        cached=msg.cached,
    )


def _usage_to_pb(usage: CompressorUsage | None) -> pb.CompressorUsage | None:
    if usage is None:
        return None
    return pb.CompressorUsage(model=usage.model, prompt_tokens=usage.prompt_tokens,
                              completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd, cached=usage.cached)


def _usage_from_pb(stage: pb.StageStats) -> CompressorUsage | None:
    if not stage.HasField("usage"):
        return None
    u = stage.usage
    return CompressorUsage(u.model, u.prompt_tokens, u.completion_tokens, u.cost_usd, u.cached)


def compress_request_to_pb(req: CompressRequest) -> pb.CompressRequest:
    msg = pb.CompressRequest(
        query=req.query,
        documents=[document_to_pb(d) for d in req.documents],
        model=req.model,
        pipeline=[pb.CompressionStage(method=s.method, options=dict_to_struct(s.options, "options"),
                                      budget=budget_to_pb(s.budget) if s.budget is not None else None)
                  for s in req.pipeline],
        context_format=pb.ContextFormat(
            separator=req.context_format.separator if req.context_format.separator != DEFAULT_SEPARATOR else "",
            omit_titles=not req.context_format.include_titles),
    )
    msg.budget.CopyFrom(budget_to_pb(req.budget))
    return msg


def budget_to_pb(budget: Budget) -> pb.Budget:
    if budget.max_tokens is not None:
        return pb.Budget(max_tokens=budget.max_tokens)
    return pb.Budget(keep_ratio=float(budget.keep_ratio))


# GetUsage. The wire's group-by enum maps to the ledger's keys; an unset time is open-ended.
_GROUP_BY = {pb.USAGE_GROUP_BY_TENANT: "tenant", pb.USAGE_GROUP_BY_MODEL: "model",
             pb.USAGE_GROUP_BY_METHOD: "method", pb.USAGE_GROUP_BY_DAY: "day"}


def usage_query_from_pb(msg: pb.GetUsageRequest):
    from middleware.accounting.records import UsageQuery

    keys = []
    for value in msg.group_by:
        if value not in _GROUP_BY:
            raise InvalidArgument(f"group_by: {pb.UsageGroupBy.Name(value) if value in pb.UsageGroupBy.values() else value}"
                                  f" is not a grouping; use TENANT, MODEL, METHOD or DAY")
        keys.append(_GROUP_BY[value])
    start = _seconds(msg.start_time, "start_time") if msg.HasField("start_time") else 0.0
    end = _seconds(msg.end_time, "end_time") if msg.HasField("end_time") else math.inf
    return UsageQuery(start=start, end=end, group_by=tuple(keys))


# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _seconds(ts, field: str) -> float:
    if not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS or not 0 <= ts.nanos <= 999_999_999:
        raise InvalidArgument(f"{field} is outside the Timestamp range (years 1 to 9999, nanos 0..999999999)")
    return ts.seconds + ts.nanos / 1e9


def usage_rows_to_pb(rows) -> pb.GetUsageResponse:
    return pb.GetUsageResponse(rows=[pb.UsageRow(
        group=dict(r.group), requests=r.requests, original_tokens=r.original_tokens,
        compressed_tokens=r.compressed_tokens, completion_tokens=r.completion_tokens,
        cost_before_usd=r.cost_before_usd, cost_after_usd=r.cost_after_usd, saved_usd=r.saved_usd,
        compressor_latency_ms=r.latency_ms, cached_tokens=r.cached_tokens, compute_usd=r.compute_usd,
        net_saved_usd=r.net_saved_usd) for r in rows])


def usage_rows_from_pb(msg: pb.GetUsageResponse):
    from middleware.accounting.records import UsageRow

    return [UsageRow(group=dict(r.group), requests=r.requests, original_tokens=r.original_tokens,
                     compressed_tokens=r.compressed_tokens, completion_tokens=r.completion_tokens,
                     cached_tokens=r.cached_tokens, cost_before_usd=r.cost_before_usd,
                     cost_after_usd=r.cost_after_usd, compute_usd=r.compute_usd,
                     latency_ms=r.compressor_latency_ms) for r in msg.rows]


def usage_request_to_pb(start: float | None, end: float | None, group_by) -> pb.GetUsageRequest:
    names = {v: k for k, v in _GROUP_BY.items()}
    unknown = [g for g in group_by if g not in names]
    if unknown:
        raise InvalidArgument(f"cannot group usage by {unknown}; known: {sorted(names)}")
    msg = pb.GetUsageRequest(group_by=[names[g] for g in group_by])
    if start is not None:
        msg.start_time.FromNanoseconds(int(start * 1e9))
    if end is not None and math.isfinite(end):
        msg.end_time.FromNanoseconds(int(end * 1e9))
    return msg


# -- retrieval (Index, Retrieve, Compress from a collection) ---------------------
_MODES = {pb.RETRIEVAL_MODE_UNSPECIFIED: "dense", pb.RETRIEVAL_MODE_DENSE: "dense",
          pb.RETRIEVAL_MODE_LEXICAL: "lexical", pb.RETRIEVAL_MODE_HYBRID: "hybrid"}
MAX_TOP_K = 1000


def _top_k(value: int, field: str) -> int:
    from retrievers.base import DEFAULT_TOP_K

    if value > MAX_TOP_K:
        raise InvalidArgument(f"{field} must be at most {MAX_TOP_K}, got {value}")
    return value or DEFAULT_TOP_K


def compress_source_from_pb(msg: pb.CompressRequest) -> tuple[str, "Query"] | None:
    """(collection, query) when the documents are to be retrieved, else None."""
    from retrievers.base import Query

    if not msg.collection:
        return None
    return msg.collection, Query(msg.query, _top_k(msg.retrieve_top_k, "retrieve_top_k"))


def index_request_from_pb(msg: pb.IndexRequest) -> "IndexRequest":
    from retrievers.base import ChunkingParams, IndexRequest

    chunking = None
    if msg.HasField("chunking") and (msg.chunking.max_tokens or msg.chunking.overlap_tokens):
        if not msg.chunking.max_tokens:
            raise InvalidArgument("chunking.max_tokens is required when chunking.overlap_tokens is set")
        chunking = ChunkingParams(msg.chunking.max_tokens, msg.chunking.overlap_tokens)
    for i, d in enumerate(msg.documents):
        if not d.id:
            raise InvalidArgument(f"documents[{i}]: an indexed document needs an id")
    return IndexRequest(collection=msg.collection,
                        documents=tuple(document_from_pb(d, i) for i, d in enumerate(msg.documents)),
                        delete_ids=tuple(msg.delete_ids), chunking=chunking)


def index_result_to_pb(result: "IndexResult") -> pb.IndexResponse:
    return pb.IndexResponse(upserted_documents=result.upserted_documents,
                            deleted_documents=result.deleted_documents, chunks=result.chunks)


def retrieve_request_from_pb(msg: pb.RetrieveRequest) -> tuple[str, "Query"]:
    from retrievers.base import Query

    mode = _MODES.get(msg.mode)
    if mode is None:
        raise InvalidArgument(f"unknown retrieval mode {msg.mode}")
    return msg.collection, Query(msg.query, _top_k(msg.top_k, "top_k"), mode, struct_to_dict(msg.filter, "filter"))


def retrieve_request_to_pb(collection: str, query: "Query") -> pb.RetrieveRequest:
    mode = {v: k for k, v in _MODES.items() if k != pb.RETRIEVAL_MODE_UNSPECIFIED}[query.mode]
    return pb.RetrieveRequest(collection=collection, query=query.text, top_k=query.top_k, mode=mode,
                              filter=dict_to_struct(query.filter, "filter"))


def hits_to_pb(hits: "list[Hit]") -> pb.RetrieveResponse:
    return pb.RetrieveResponse(documents=[pb.ScoredDocument(document=document_to_pb(h.document), score=h.score)
                                          for h in hits])


def scored_from_pb(msg: pb.RetrieveResponse) -> list[tuple[Document, float]]:
    return [(document_from_pb(s.document, i), s.score) for i, s in enumerate(msg.documents)]


def index_request_to_pb(req: "IndexRequest") -> pb.IndexRequest:
    msg = pb.IndexRequest(collection=req.collection, documents=[document_to_pb(d) for d in req.documents],
                          delete_ids=list(req.delete_ids))
    if req.chunking is not None:
        msg.chunking.max_tokens = req.chunking.max_tokens
        msg.chunking.overlap_tokens = req.chunking.overlap_tokens
    return msg


_FALLBACK_FROM_PB = {0: None, 1: "fail", 2: "retry", 3: "local"}


def generate_request_from_pb(msg: pb.GenerateRequest, settings: Settings):
    """GenerateRequest (wire) -> :class:`middleware.generation.generate.GenerateRequest`."""
    from middleware.generation.generate import GenerateRequest, GenerationOptions

    inner = pb.CompressRequest(query=msg.query, documents=msg.documents, model=msg.model, method=msg.method,
                               pipeline=msg.pipeline, collection=msg.collection, retrieve_top_k=msg.retrieve_top_k)
    if msg.HasField("budget"):
        inner.budget.CopyFrom(msg.budget)
    g = msg.generation
    if g.temperature != g.temperature or g.top_p != g.top_p:  # NaN
        raise InvalidArgument("generation.temperature and generation.top_p must be numbers")
    compress = compress_request_from_pb(inner, settings)
    select = None
    if msg.HasField("select_demonstrations"):
        if msg.demonstrations:
            raise InvalidArgument("give either demonstrations or select_demonstrations, not both")
        select = select_request_from_pb(msg.select_demonstrations, settings, query=compress.query,
                                        model=compress.model)
    return GenerateRequest(
        compress=compress,
        system_prompt=msg.system_prompt,
        demonstrations=tuple(demonstration_from_pb(d, i) for i, d in enumerate(msg.demonstrations)),
        options=GenerationOptions(max_tokens=g.max_tokens or None, temperature=g.temperature,
                                  top_p=g.top_p or None, stop=tuple(g.stop)),
        fallback=_FALLBACK_FROM_PB.get(int(msg.fallback)),
        template=msg.template,
        select=select,
    )


def generate_result_to_pb(result) -> pb.GenerateResponse:
    """:class:`middleware.generation.generate.GenerateResult` -> GenerateResponse (wire)."""
    u, c = result.usage, result.cost
    return pb.GenerateResponse(
        text=result.text, model=result.model, fell_back=result.fell_back, fallback_reason=result.fallback_reason,
        usage=pb.Usage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                       original_prompt_tokens=u.original_prompt_tokens, cached_prompt_tokens=u.cached_prompt_tokens,
                       soft_prompt_tokens=u.soft_prompt_tokens),
        cost=pb.Cost(cost_usd=c.cost_usd, original_cost_usd=c.original_cost_usd, saved_usd=c.saved_usd),
        compression=compress_result_to_pb(result.compression),
        request_id=result.request_id,
        demonstrations=select_result_to_pb(result.demonstrations) if result.demonstrations is not None else None,
    )


# -- demonstrations (SelectDemonstrations, IndexDemonstrations, Generate's selection) --
_ORDER_FROM_PB = {pb.DEMONSTRATION_ORDER_UNSPECIFIED: "nearest_last", pb.DEMONSTRATION_ORDER_NEAREST_LAST: "nearest_last",
                  pb.DEMONSTRATION_ORDER_NEAREST_FIRST: "nearest_first", pb.DEMONSTRATION_ORDER_RANKED: "ranked"}
_ORDER_TO_PB = {"nearest_last": pb.DEMONSTRATION_ORDER_NEAREST_LAST,
                "nearest_first": pb.DEMONSTRATION_ORDER_NEAREST_FIRST, "ranked": pb.DEMONSTRATION_ORDER_RANKED}


def demonstration_from_pb(msg: pb.Demonstration, index: int) -> Demonstration:
    return Demonstration(id=msg.id or str(index), input=msg.input, output=msg.output, label=msg.label,
                         metadata=struct_to_dict(msg.metadata))


def demonstration_to_pb(demo: Demonstration) -> pb.Demonstration:
    return pb.Demonstration(id=demo.id, input=demo.input, output=demo.output, label=demo.label,
                            metadata=dict_to_struct(demo.metadata, f"demonstration {demo.id!r} metadata"))


def select_request_from_pb(msg: pb.SelectDemonstrationsRequest, settings: Settings, *, query: str = "",
                           model: str = ""):
    """The wire request -> :class:`middleware.demonstrations.SelectRequest`; ``query`` and
    ``model`` fill empty fields (Generate passes its own)."""
    from middleware.demonstrations import DEFAULT_MAX_DEMONSTRATIONS, DEFAULT_STRATEGY, SelectRequest

    order = _ORDER_FROM_PB.get(msg.order)
    if order is None:
        raise InvalidArgument(f"unknown demonstration order {msg.order}")
    budget = budget_from_pb(msg.budget, True) if msg.HasField("budget") else None
    return SelectRequest(
        query=msg.query or query,
        pool=tuple(demonstration_from_pb(d, i) for i, d in enumerate(msg.pool)),
        pool_name=msg.pool_name,
        model=msg.model or model or settings.default_model,
        budget=budget,
        max_demonstrations=msg.max_demonstrations or DEFAULT_MAX_DEMONSTRATIONS,
        method=msg.method or DEFAULT_STRATEGY,
        options=struct_to_dict(msg.options),
        seed=msg.seed,
        core_ids=tuple(msg.core_ids),
        order=order,
        compression=tuple(Stage(s.method, struct_to_dict(s.options)) for s in msg.compression),
        compress_above_tokens=msg.compress_above_tokens,
        template=msg.template,
    )


def select_request_to_pb(req) -> pb.SelectDemonstrationsRequest:
    msg = pb.SelectDemonstrationsRequest(
        query=req.query, pool=[demonstration_to_pb(d) for d in req.pool], pool_name=req.pool_name,
        model=req.model, max_demonstrations=req.max_demonstrations, method=req.method,
        options=dict_to_struct(req.options, "options"), seed=req.seed, core_ids=list(req.core_ids),
        order=_ORDER_TO_PB[req.order],
        compression=[pb.CompressionStage(method=s.method, options=dict_to_struct(s.options, "options"))
                     for s in req.compression],
        compress_above_tokens=req.compress_above_tokens, template=req.template)
    if req.budget is not None:
        if req.budget.max_tokens is not None:
            msg.budget.max_tokens = req.budget.max_tokens
        else:
            msg.budget.keep_ratio = float(req.budget.keep_ratio)
    return msg


def select_result_to_pb(result) -> pb.SelectDemonstrationsResponse:
    return pb.SelectDemonstrationsResponse(
        demonstrations=[demonstration_to_pb(d) for d in result.demonstrations], prompt=result.prompt,
        original_tokens=result.original_tokens, selected_tokens=result.selected_tokens,
        request_id=result.request_id, stable_prefix_tokens=result.stable_prefix_tokens,
        budget_tokens=result.budget_tokens, method=result.method, model=result.model, tokenizer=result.tokenizer,
        details=dict_to_struct(result.details, "details"), scores=list(result.scores),
        compressed_ids=list(result.compressed_ids), core_count=result.core_count, latency_ms=result.latency_ms,
        tokenizer_fallback=result.tokenizer_fallback)


def select_result_from_pb(msg: pb.SelectDemonstrationsResponse):
    from middleware.demonstrations import SelectResult

    return SelectResult(
        demonstrations=tuple(demonstration_from_pb(d, i) for i, d in enumerate(msg.demonstrations)),
        scores=tuple(msg.scores), prompt=msg.prompt, original_tokens=msg.original_tokens,
        selected_tokens=msg.selected_tokens, budget_tokens=msg.budget_tokens,
        stable_prefix_tokens=msg.stable_prefix_tokens, core_count=msg.core_count, method=msg.method,
        model=msg.model, tokenizer=msg.tokenizer, tokenizer_fallback=msg.tokenizer_fallback,
        compressed_ids=tuple(msg.compressed_ids), details=struct_to_dict(msg.details), latency_ms=msg.latency_ms,
        request_id=msg.request_id)


def index_demonstrations_from_pb(msg: pb.IndexDemonstrationsRequest) -> tuple[str, tuple[Demonstration, ...],
                                                                                tuple[str, ...]]:
    for i, d in enumerate(msg.demonstrations):
        if not d.id:
            raise InvalidArgument(f"demonstrations[{i}]: a pooled demonstration needs an id")
    return (msg.pool, tuple(demonstration_from_pb(d, i) for i, d in enumerate(msg.demonstrations)),
            tuple(msg.delete_ids))


def index_demonstrations_to_pb(pool: str, demonstrations, delete_ids) -> pb.IndexDemonstrationsRequest:
    return pb.IndexDemonstrationsRequest(pool=pool, demonstrations=[demonstration_to_pb(d) for d in demonstrations],
                                         delete_ids=list(delete_ids))


def pool_index_result_to_pb(result) -> pb.IndexDemonstrationsResponse:
    return pb.IndexDemonstrationsResponse(upserted=result.upserted, deleted=result.deleted, size=result.size)


def pool_index_result_from_pb(msg: pb.IndexDemonstrationsResponse):
    from retrievers.demos.pools import PoolIndexResult

    return PoolIndexResult(msg.upserted, msg.deleted, msg.size)
