import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DemonstrationOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEMONSTRATION_ORDER_UNSPECIFIED: _ClassVar[DemonstrationOrder]
    DEMONSTRATION_ORDER_NEAREST_LAST: _ClassVar[DemonstrationOrder]
    DEMONSTRATION_ORDER_NEAREST_FIRST: _ClassVar[DemonstrationOrder]
    DEMONSTRATION_ORDER_RANKED: _ClassVar[DemonstrationOrder]

class FallbackPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FALLBACK_POLICY_UNSPECIFIED: _ClassVar[FallbackPolicy]
    FALLBACK_POLICY_FAIL: _ClassVar[FallbackPolicy]
    FALLBACK_POLICY_RETRY: _ClassVar[FallbackPolicy]
    FALLBACK_POLICY_LOCAL: _ClassVar[FallbackPolicy]

class RetrievalMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETRIEVAL_MODE_UNSPECIFIED: _ClassVar[RetrievalMode]
    RETRIEVAL_MODE_DENSE: _ClassVar[RetrievalMode]
    RETRIEVAL_MODE_LEXICAL: _ClassVar[RetrievalMode]
    RETRIEVAL_MODE_HYBRID: _ClassVar[RetrievalMode]

class UsageGroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_GROUP_BY_UNSPECIFIED: _ClassVar[UsageGroupBy]
    USAGE_GROUP_BY_TENANT: _ClassVar[UsageGroupBy]
    USAGE_GROUP_BY_MODEL: _ClassVar[UsageGroupBy]
    USAGE_GROUP_BY_METHOD: _ClassVar[UsageGroupBy]
    USAGE_GROUP_BY_DAY: _ClassVar[UsageGroupBy]
DEMONSTRATION_ORDER_UNSPECIFIED: DemonstrationOrder
DEMONSTRATION_ORDER_NEAREST_LAST: DemonstrationOrder
DEMONSTRATION_ORDER_NEAREST_FIRST: DemonstrationOrder
DEMONSTRATION_ORDER_RANKED: DemonstrationOrder
FALLBACK_POLICY_UNSPECIFIED: FallbackPolicy
FALLBACK_POLICY_FAIL: FallbackPolicy
FALLBACK_POLICY_RETRY: FallbackPolicy
FALLBACK_POLICY_LOCAL: FallbackPolicy
RETRIEVAL_MODE_UNSPECIFIED: RetrievalMode
RETRIEVAL_MODE_DENSE: RetrievalMode
RETRIEVAL_MODE_LEXICAL: RetrievalMode
RETRIEVAL_MODE_HYBRID: RetrievalMode
USAGE_GROUP_BY_UNSPECIFIED: UsageGroupBy
USAGE_GROUP_BY_TENANT: UsageGroupBy
USAGE_GROUP_BY_MODEL: UsageGroupBy
USAGE_GROUP_BY_METHOD: UsageGroupBy
USAGE_GROUP_BY_DAY: UsageGroupBy

class Document(_message.Message):
    __slots__ = ("id", "title", "text", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    text: str
    metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("max_tokens", "keep_ratio")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KEEP_RATIO_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    keep_ratio: float
    def __init__(self, max_tokens: _Optional[int] = ..., keep_ratio: _Optional[float] = ...) -> None: ...

class CompressionStage(_message.Message):
    __slots__ = ("method", "options", "budget")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    method: str
    options: _struct_pb2.Struct
    budget: Budget
    def __init__(self, method: _Optional[str] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class ContextFormat(_message.Message):
    __slots__ = ("separator", "omit_titles")
    SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    OMIT_TITLES_FIELD_NUMBER: _ClassVar[int]
    separator: str
    omit_titles: bool
    def __init__(self, separator: _Optional[str] = ..., omit_titles: _Optional[bool] = ...) -> None: ...

class CompressRequest(_message.Message):
    __slots__ = ("query", "documents", "model", "budget", "method", "pipeline", "context_format", "collection", "retrieve_top_k")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_TOP_K_FIELD_NUMBER: _ClassVar[int]
    query: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    model: str
    budget: Budget
    method: str
    pipeline: _containers.RepeatedCompositeFieldContainer[CompressionStage]
    context_format: ContextFormat
    collection: str
    retrieve_top_k: int
    def __init__(self, query: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., model: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., method: _Optional[str] = ..., pipeline: _Optional[_Iterable[_Union[CompressionStage, _Mapping]]] = ..., context_format: _Optional[_Union[ContextFormat, _Mapping]] = ..., collection: _Optional[str] = ..., retrieve_top_k: _Optional[int] = ...) -> None: ...

class StageStats(_message.Message):
    __slots__ = ("method", "input_tokens", "output_tokens", "latency_ms", "details", "usage")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    method: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    details: _struct_pb2.Struct
    usage: CompressorUsage
    def __init__(self, method: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., latency_ms: _Optional[float] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., usage: _Optional[_Union[CompressorUsage, _Mapping]] = ...) -> None: ...

class CompressorUsage(_message.Message):
    __slots__ = ("model", "prompt_tokens", "completion_tokens", "cost_usd", "cached")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool
    def __init__(self, model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cached: _Optional[bool] = ...) -> None: ...

class CompressResponse(_message.Message):
    __slots__ = ("documents", "dropped_ids", "context", "original_tokens", "compressed_tokens", "stages", "model", "tokenizer", "tokenizer_fallback", "request_id", "budget_tokens", "cached")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    dropped_ids: _containers.RepeatedScalarFieldContainer[str]
    context: str
    original_tokens: int
    compressed_tokens: int
    stages: _containers.RepeatedCompositeFieldContainer[StageStats]
    model: str
    tokenizer: str
    tokenizer_fallback: bool
    request_id: str
    budget_tokens: int
    cached: bool
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., dropped_ids: _Optional[_Iterable[str]] = ..., context: _Optional[str] = ..., original_tokens: _Optional[int] = ..., compressed_tokens: _Optional[int] = ..., stages: _Optional[_Iterable[_Union[StageStats, _Mapping]]] = ..., model: _Optional[str] = ..., tokenizer: _Optional[str] = ..., tokenizer_fallback: _Optional[bool] = ..., request_id: _Optional[str] = ..., budget_tokens: _Optional[int] = ..., cached: _Optional[bool] = ...) -> None: ...

class Demonstration(_message.Message):
    __slots__ = ("id", "input", "output", "metadata", "label")
    ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    input: str
    output: str
    metadata: _struct_pb2.Struct
    label: str
    def __init__(self, id: _Optional[str] = ..., input: _Optional[str] = ..., output: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., label: _Optional[str] = ...) -> None: ...

class SelectDemonstrationsRequest(_message.Message):
    __slots__ = ("query", "pool", "model", "budget", "max_demonstrations", "method", "options", "pool_name", "seed", "core_ids", "order", "compression", "compress_above_tokens", "template")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    MAX_DEMONSTRATIONS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    POOL_NAME_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CORE_IDS_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    COMPRESS_ABOVE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    query: str
    pool: _containers.RepeatedCompositeFieldContainer[Demonstration]
    model: str
    budget: Budget
    max_demonstrations: int
    method: str
    options: _struct_pb2.Struct
    pool_name: str
    seed: int
    core_ids: _containers.RepeatedScalarFieldContainer[str]
    order: DemonstrationOrder
    compression: _containers.RepeatedCompositeFieldContainer[CompressionStage]
    compress_above_tokens: int
    template: str
    def __init__(self, query: _Optional[str] = ..., pool: _Optional[_Iterable[_Union[Demonstration, _Mapping]]] = ..., model: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., max_demonstrations: _Optional[int] = ..., method: _Optional[str] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., pool_name: _Optional[str] = ..., seed: _Optional[int] = ..., core_ids: _Optional[_Iterable[str]] = ..., order: _Optional[_Union[DemonstrationOrder, str]] = ..., compression: _Optional[_Iterable[_Union[CompressionStage, _Mapping]]] = ..., compress_above_tokens: _Optional[int] = ..., template: _Optional[str] = ...) -> None: ...

class SelectDemonstrationsResponse(_message.Message):
    __slots__ = ("demonstrations", "prompt", "original_tokens", "selected_tokens", "request_id", "stable_prefix_tokens", "budget_tokens", "method", "model", "tokenizer", "details", "scores", "compressed_ids", "core_count", "latency_ms", "tokenizer_fallback")
    DEMONSTRATIONS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STABLE_PREFIX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_IDS_FIELD_NUMBER: _ClassVar[int]
    CORE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    demonstrations: _containers.RepeatedCompositeFieldContainer[Demonstration]
    prompt: str
    original_tokens: int
    selected_tokens: int
    request_id: str
    stable_prefix_tokens: int
    budget_tokens: int
    method: str
    model: str
    tokenizer: str
    details: _struct_pb2.Struct
    scores: _containers.RepeatedScalarFieldContainer[float]
    compressed_ids: _containers.RepeatedScalarFieldContainer[str]
    core_count: int
    latency_ms: float
    tokenizer_fallback: bool
    def __init__(self, demonstrations: _Optional[_Iterable[_Union[Demonstration, _Mapping]]] = ..., prompt: _Optional[str] = ..., original_tokens: _Optional[int] = ..., selected_tokens: _Optional[int] = ..., request_id: _Optional[str] = ..., stable_prefix_tokens: _Optional[int] = ..., budget_tokens: _Optional[int] = ..., method: _Optional[str] = ..., model: _Optional[str] = ..., tokenizer: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., scores: _Optional[_Iterable[float]] = ..., compressed_ids: _Optional[_Iterable[str]] = ..., core_count: _Optional[int] = ..., latency_ms: _Optional[float] = ..., tokenizer_fallback: _Optional[bool] = ...) -> None: ...

class IndexDemonstrationsRequest(_message.Message):
    __slots__ = ("pool", "demonstrations", "delete_ids")
    POOL_FIELD_NUMBER: _ClassVar[int]
    DEMONSTRATIONS_FIELD_NUMBER: _ClassVar[int]
    DELETE_IDS_FIELD_NUMBER: _ClassVar[int]
    pool: str
    demonstrations: _containers.RepeatedCompositeFieldContainer[Demonstration]
    delete_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pool: _Optional[str] = ..., demonstrations: _Optional[_Iterable[_Union[Demonstration, _Mapping]]] = ..., delete_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class IndexDemonstrationsResponse(_message.Message):
    __slots__ = ("upserted", "deleted", "size")
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    upserted: int
    deleted: int
    size: int
    def __init__(self, upserted: _Optional[int] = ..., deleted: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class GenerationOptions(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "stop")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("query", "documents", "model", "budget", "method", "pipeline", "system_prompt", "demonstrations", "generation", "fallback", "template", "collection", "retrieve_top_k", "select_demonstrations")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    DEMONSTRATIONS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_TOP_K_FIELD_NUMBER: _ClassVar[int]
    SELECT_DEMONSTRATIONS_FIELD_NUMBER: _ClassVar[int]
    query: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    model: str
    budget: Budget
    method: str
    pipeline: _containers.RepeatedCompositeFieldContainer[CompressionStage]
    system_prompt: str
    demonstrations: _containers.RepeatedCompositeFieldContainer[Demonstration]
    generation: GenerationOptions
    fallback: FallbackPolicy
    template: str
    collection: str
    retrieve_top_k: int
    select_demonstrations: SelectDemonstrationsRequest
    def __init__(self, query: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., model: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., method: _Optional[str] = ..., pipeline: _Optional[_Iterable[_Union[CompressionStage, _Mapping]]] = ..., system_prompt: _Optional[str] = ..., demonstrations: _Optional[_Iterable[_Union[Demonstration, _Mapping]]] = ..., generation: _Optional[_Union[GenerationOptions, _Mapping]] = ..., fallback: _Optional[_Union[FallbackPolicy, str]] = ..., template: _Optional[str] = ..., collection: _Optional[str] = ..., retrieve_top_k: _Optional[int] = ..., select_demonstrations: _Optional[_Union[SelectDemonstrationsRequest, _Mapping]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "original_prompt_tokens", "cached_prompt_tokens", "soft_prompt_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SOFT_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    original_prompt_tokens: int
    cached_prompt_tokens: int
    soft_prompt_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., original_prompt_tokens: _Optional[int] = ..., cached_prompt_tokens: _Optional[int] = ..., soft_prompt_tokens: _Optional[int] = ...) -> None: ...

class Cost(_message.Message):
    __slots__ = ("cost_usd", "original_cost_usd", "saved_usd")
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    cost_usd: float
    original_cost_usd: float
    saved_usd: float
    def __init__(self, cost_usd: _Optional[float] = ..., original_cost_usd: _Optional[float] = ..., saved_usd: _Optional[float] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("text", "model", "fell_back", "fallback_reason", "usage", "cost", "compression", "request_id", "demonstrations")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FELL_BACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEMONSTRATIONS_FIELD_NUMBER: _ClassVar[int]
    text: str
    model: str
    fell_back: bool
    fallback_reason: str
    usage: Usage
    cost: Cost
    compression: CompressResponse
    request_id: str
    demonstrations: SelectDemonstrationsResponse
    def __init__(self, text: _Optional[str] = ..., model: _Optional[str] = ..., fell_back: _Optional[bool] = ..., fallback_reason: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., compression: _Optional[_Union[CompressResponse, _Mapping]] = ..., request_id: _Optional[str] = ..., demonstrations: _Optional[_Union[SelectDemonstrationsResponse, _Mapping]] = ...) -> None: ...

class GenerateStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: GenerateRequest
    def __init__(self, request: _Optional[_Union[GenerateRequest, _Mapping]] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("text_delta", "final_response")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    text_delta: str
    final_response: GenerateResponse
    def __init__(self, text_delta: _Optional[str] = ..., final_response: _Optional[_Union[GenerateResponse, _Mapping]] = ...) -> None: ...

class ChunkingOptions(_message.Message):
    __slots__ = ("max_tokens", "overlap_tokens")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    overlap_tokens: int
    def __init__(self, max_tokens: _Optional[int] = ..., overlap_tokens: _Optional[int] = ...) -> None: ...

class IndexRequest(_message.Message):
    __slots__ = ("collection", "documents", "delete_ids", "chunking")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DELETE_IDS_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    collection: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    delete_ids: _containers.RepeatedScalarFieldContainer[str]
    chunking: ChunkingOptions
    def __init__(self, collection: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., delete_ids: _Optional[_Iterable[str]] = ..., chunking: _Optional[_Union[ChunkingOptions, _Mapping]] = ...) -> None: ...

class IndexResponse(_message.Message):
    __slots__ = ("upserted_documents", "deleted_documents", "chunks")
    UPSERTED_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    upserted_documents: int
    deleted_documents: int
    chunks: int
    def __init__(self, upserted_documents: _Optional[int] = ..., deleted_documents: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("collection", "query", "top_k", "filter", "mode")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query: str
    top_k: int
    filter: _struct_pb2.Struct
    mode: RetrievalMode
    def __init__(self, collection: _Optional[str] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mode: _Optional[_Union[RetrievalMode, str]] = ...) -> None: ...

class ScoredDocument(_message.Message):
    __slots__ = ("document", "score")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    document: Document
    score: float
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[ScoredDocument]
    def __init__(self, documents: _Optional[_Iterable[_Union[ScoredDocument, _Mapping]]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "group_by")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: _containers.RepeatedScalarFieldContainer[UsageGroupBy]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Iterable[_Union[UsageGroupBy, str]]] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("group", "requests", "original_tokens", "compressed_tokens", "completion_tokens", "cost_before_usd", "cost_after_usd", "saved_usd", "compressor_latency_ms", "cached_tokens", "compute_usd", "net_saved_usd")
    class GroupEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GROUP_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_BEFORE_USD_FIELD_NUMBER: _ClassVar[int]
    COST_AFTER_USD_FIELD_NUMBER: _ClassVar[int]
    SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    COMPRESSOR_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CACHED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_USD_FIELD_NUMBER: _ClassVar[int]
    NET_SAVED_USD_FIELD_NUMBER: _ClassVar[int]
    group: _containers.ScalarMap[str, str]
    requests: int
    original_tokens: int
    compressed_tokens: int
    completion_tokens: int
    cost_before_usd: float
    cost_after_usd: float
    saved_usd: float
    compressor_latency_ms: float
    cached_tokens: int
    compute_usd: float
    net_saved_usd: float
    def __init__(self, group: _Optional[_Mapping[str, str]] = ..., requests: _Optional[int] = ..., original_tokens: _Optional[int] = ..., compressed_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_before_usd: _Optional[float] = ..., cost_after_usd: _Optional[float] = ..., saved_usd: _Optional[float] = ..., compressor_latency_ms: _Optional[float] = ..., cached_tokens: _Optional[int] = ..., compute_usd: _Optional[float] = ..., net_saved_usd: _Optional[float] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...
