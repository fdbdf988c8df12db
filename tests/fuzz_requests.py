"""Hypothesis strategies for every ragpress RPC's request: valid, odd and hostile
values mixed (NaN and Infinity in Structs, out-of-range enums and timestamps,
format-spec templates, unknown names, empty and oversized strings).

Shared by the property test (tests/test_bad_input.py) and the reliability
suite (bench/reliability.py). The invariant both check: no request gets
INTERNAL or UNKNOWN, and the server keeps serving.
"""

from __future__ import annotations

from google.protobuf import struct_pb2
from hypothesis import strategies as st

from ragpress.v1 import ragpress_pb2 as pb

# Codes a request may legitimately end with; INTERNAL and UNKNOWN mean a bug.
BUG_CODES = ("INTERNAL", "UNKNOWN")

texts = st.one_of(
    st.sampled_from(["Paris has 2,102,650 inhabitants. Bread is baked.", "What is the capital of France?"]),
    st.text(max_size=120),
    st.sampled_from(["", " ", "\x00", "Paris has 2,102,650 inhabitants. Bread is baked.", "{context}",
                     "\ud7ff\ue000", "x" * 5000, "é" * 300]),
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**60, 2**60))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
dicts = st.one_of(st.just({}), st.dictionaries(st.text(max_size=10), json_values, max_size=4))
models = st.sampled_from(["gpt-4o", "gpt-4o-mini", "openai/gpt-4o-mini", "gpt-3.5-turbo", "gpt-4o-zzz",
                          "", "local/nope", "no-such-model", "openai/", "gpt-4o" + "x" * 200])
methods = st.sampled_from(["", "extractive", "bm25", "first", "random", "no-such-method", "EXTRACTIVE"])
collections = st.sampled_from(["fz", "fz2", "", "../etc", "a" * 80, ".hidden", "ok-name"])
templates = st.sampled_from(["", "", "default", "context-only", "nope", "{context:d}\n{question}",
                             "{context!r} {question}", "{context:>9999999} {question}", "{context} {question}",
                             "{question} {context}", "{x} {context} {question}", "{", "}", "{context}{{question}}",
                             "{demonstrations}{context}\n{question}", "{context.real} {question}"])


def struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


@st.composite
def documents(draw, max_size: int = 4) -> list[pb.Document]:
    docs = []
    for i in range(draw(st.integers(0, max_size))):
        docs.append(pb.Document(id=draw(st.sampled_from([str(i), str(i), "", "dup"])), title=draw(texts),
                                text=draw(texts), metadata=struct(draw(dicts))))
    return docs


@st.composite
def budget_into(draw, msg) -> None:
    kind = draw(st.sampled_from(["tokens", "tokens", "tokens", "ratio", "none"]))
    if kind == "tokens":
        msg.budget.max_tokens = draw(st.one_of(st.integers(1, 500), st.integers(0, 2**32 - 1)))
    elif kind == "ratio":
        msg.budget.keep_ratio = draw(st.one_of(st.floats(0.01, 1.0), st.floats(allow_nan=True, allow_infinity=True)))


@st.composite
def stages(draw) -> list[pb.CompressionStage]:
    return [pb.CompressionStage(method=draw(methods), options=struct(draw(dicts)))
            for _ in range(draw(st.sampled_from([0, 0, 1, 2])))]


@st.composite
def compress_requests(draw) -> pb.CompressRequest:
    shape = draw(st.sampled_from(["method", "method", "pipeline", "both"]))
    msg = pb.CompressRequest(query=draw(texts), model=draw(models),
                             method=draw(methods) if shape != "pipeline" else "",
                             pipeline=draw(stages()) if shape != "method" else [],
                             context_format=pb.ContextFormat(separator=draw(st.one_of(st.just(""), texts)),
                                                             omit_titles=draw(st.booleans())))
    if draw(st.sampled_from([True, True, False])):
        msg.documents.extend(draw(documents()))
    else:
        msg.collection = draw(collections)
        msg.retrieve_top_k = draw(st.one_of(st.integers(0, 20), st.integers(0, 5000)))
    draw(budget_into(msg))
    return msg


@st.composite
def generate_requests(draw) -> pb.GenerateRequest:
    inner = draw(compress_requests())
    msg = pb.GenerateRequest(
        query=inner.query, documents=inner.documents, model=draw(st.sampled_from(["gpt-4o-mini", "openai/gpt-4o-mini",
                                                                                   "gpt-4o-zzz", "", "local/nope"])),
        method=inner.method, pipeline=inner.pipeline, system_prompt=draw(texts),
        demonstrations=[pb.Demonstration(id=draw(st.text(max_size=4)), input=draw(texts), output=draw(texts))
                        for _ in range(draw(st.integers(0, 2)))],
        generation=pb.GenerationOptions(max_tokens=draw(st.integers(0, 64)),
                                        temperature=draw(st.one_of(st.floats(0, 2), st.floats(allow_nan=True))),
                                        top_p=draw(st.one_of(st.floats(0, 1), st.floats(allow_nan=True))),
                                        stop=draw(st.lists(st.text(max_size=5), max_size=2))),
        template=draw(templates), collection=inner.collection, retrieve_top_k=inner.retrieve_top_k)
    # Unknown enum values travel on the wire as plain integers.
    msg.fallback = draw(st.sampled_from([0, 1, 2, 7]))
    if inner.HasField("budget"):
        msg.budget.CopyFrom(inner.budget)
    return msg


@st.composite
def index_requests(draw) -> pb.IndexRequest:
    msg = pb.IndexRequest(collection=draw(collections), documents=draw(documents()),
                          delete_ids=draw(st.lists(st.sampled_from(["a", "0", "", "zz"]), max_size=3)))
    if draw(st.booleans()):
        msg.chunking.max_tokens = draw(st.one_of(st.integers(8, 200), st.integers(0, 10_000)))
        msg.chunking.overlap_tokens = draw(st.one_of(st.integers(0, 4), st.integers(0, 10_000)))
    return msg


@st.composite
def retrieve_requests(draw) -> pb.RetrieveRequest:
    return pb.RetrieveRequest(collection=draw(collections), query=draw(texts),
                              top_k=draw(st.one_of(st.integers(0, 20), st.integers(0, 5000))),
                              filter=struct(draw(dicts)), mode=draw(st.one_of(st.integers(0, 3), st.integers(0, 9))))


@st.composite
def usage_requests(draw) -> pb.GetUsageRequest:
    msg = pb.GetUsageRequest(group_by=draw(st.lists(st.one_of(st.integers(1, 4), st.integers(0, 9)), max_size=4)))
    for field in ("start_time", "end_time"):
        if draw(st.booleans()):
            ts = getattr(msg, field)
            ts.seconds = draw(st.one_of(st.integers(0, 2**32), st.integers(-2**63, 2**63 - 1)))
            ts.nanos = draw(st.one_of(st.integers(0, 999_999_999), st.integers(-2**31, 2**31 - 1)))
    return msg


@st.composite
def select_requests(draw) -> pb.SelectDemonstrationsRequest:
    return pb.SelectDemonstrationsRequest(
        query=draw(texts), model=draw(models), method=draw(methods), max_demonstrations=draw(st.integers(0, 50)),
        pool=[pb.Demonstration(id=draw(st.text(max_size=4)), input=draw(texts), output=draw(texts),
                               metadata=struct(draw(dicts))) for _ in range(draw(st.integers(0, 3)))],
        options=struct(draw(dicts)))


# RPC name -> (request strategy, response type, streaming)
RPCS = {
    "Compress": (compress_requests(), pb.CompressResponse, False),
    "Generate": (generate_requests(), pb.GenerateResponse, False),
    "GenerateStream": (generate_requests().map(lambda r: pb.GenerateStreamRequest(request=r)),
                       pb.GenerateStreamResponse, True),
    "Index": (index_requests(), pb.IndexResponse, False),
    "Retrieve": (retrieve_requests(), pb.RetrieveResponse, False),
    "GetUsage": (usage_requests(), pb.GetUsageResponse, False),
    "SelectDemonstrations": (select_requests(), pb.SelectDemonstrationsResponse, False),
}
raw_bodies = st.one_of(st.binary(max_size=64), st.sampled_from([b"\xff\xff\xff", b"\x0a\xff\x01", b"\x12\x05ab"]))
