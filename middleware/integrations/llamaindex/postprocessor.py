"""A LlamaIndex node postprocessor backed by ragpress (in-process or remote)."""

from __future__ import annotations

from typing import Any, List, Optional

from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr, model_validator
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from middleware.errors import InvalidArgument
from middleware.integrations.backend import Backend, make_backend
from middleware.integrations.llamaindex.convert import is_text, to_ragpress, with_text
from middleware.types import CompressResult


class RagpressNodePostprocessor(BaseNodePostprocessor):
    """Compresses retrieved nodes to a token budget of the target model.

    Runs in-process (``engine=Ragpress(...)``, or a default engine) or against a server
    (``target="host:port"``); the async path awaits grpc.aio on a server and runs in a
    worker thread in-process.

    Text nodes are compressed together; kept nodes keep their order, id,
    relationships, score and metadata, hold the compressed text, and carry the call's
    figures under ``metadata[stats_key]`` (default ``"ragpress"``). Nodes the budget
    leaves no room for are dropped. Non-text nodes (images) pass through unchanged.
    A query is required: compression is query-aware.

    The budget counts the nodes' own text. LlamaIndex adds each node's metadata to the
    prompt (``excluded_llm_metadata_keys`` controls which keys); the statistics key is
    excluded from the prompt and from embeddings.
    """

    budget: int | float = Field(default=0.5, description="Token ceiling (int) or keep ratio in (0, 1] (float).")
    model: Optional[str] = Field(default=None, description="Target model whose tokenizer counts the budget.")
    method: Optional[str] = Field(default=None, description="Registered compression method; default of the engine.")
    stats_key: Optional[str] = Field(default="ragpress", description="Metadata key for the stats; None: none.")
    engine: Any = Field(default=None, exclude=True, description="A middleware.library.Ragpress engine.")
    target: Optional[str] = Field(default=None, description="Address of a ragpress server, e.g. 127.0.0.1:50051.")
    tenant: Optional[str] = None
    timeout: Optional[float] = 30.0
    api_key: Optional[SecretStr] = Field(default=None, description="API key of the server (it fixes the tenant).")
    credentials: Any = Field(default=None, exclude=True, description="grpc.ChannelCredentials, for TLS.")
    _backend: Backend = PrivateAttr()

    @model_validator(mode="after")
    def _connect(self) -> "RagpressNodePostprocessor":
        self._backend = make_backend(self.engine, self.target, self.tenant, self.timeout, budget=self.budget,
                                     api_key=self.api_key.get_secret_value() if self.api_key else None,
                                     credentials=self.credentials)
        return self

    @classmethod
    def class_name(cls) -> str:
        return "RagpressNodePostprocessor"

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        query, docs = self._inputs(nodes, query_bundle)
        if not docs:
            return list(nodes)
        return self._outputs(nodes, self._backend.compress(query, docs, self.budget, **self._options()))

    async def _apostprocess_nodes(self, nodes: List[NodeWithScore],
                                  query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        query, docs = self._inputs(nodes, query_bundle)
        if not docs:
            return list(nodes)
        return self._outputs(nodes, await self._backend.acompress(query, docs, self.budget, **self._options()))

    def _options(self) -> dict[str, Any]:
        return {"model": self.model, "method": self.method}

    @staticmethod
    def _inputs(nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle]):
        if query_bundle is None:
            raise InvalidArgument("RagpressNodePostprocessor needs the query (query_bundle or query_str)")
        # Positions are unique and map back exactly (node ids may repeat across sources).
        docs = [to_ragpress(n.node, str(i)) for i, n in enumerate(nodes) if is_text(n.node)]
        return query_bundle.query_str, docs

    def _outputs(self, nodes: List[NodeWithScore], result: CompressResult) -> List[NodeWithScore]:
        kept = {d.id: d for d in result.documents}
        out = []
        for i, original in enumerate(nodes):
            if not is_text(original.node):
                out.append(original)
            elif str(i) in kept:
                text = kept[str(i)].text
                stats = {self.stats_key: _stats(result, original, text)} if self.stats_key else None
                out.append(with_text(original, text, stats))
        return out


def _stats(result: CompressResult, original: NodeWithScore, text: str) -> dict[str, Any]:
    return {"original_tokens": result.original_tokens, "compressed_tokens": result.compressed_tokens,
            "budget_tokens": result.budget_tokens, "model": result.model, "tokenizer": result.tokenizer,
            "methods": [s.method for s in result.stages], "request_id": result.request_id,
            "original_chars": len(original.node.get_content()), "compressed_chars": len(text)}
