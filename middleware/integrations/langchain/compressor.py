"""A LangChain document compressor backed by ragpress (in-process or remote)."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor
from langchain_core.documents import Document as LCDocument
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from middleware.types import CompressResult
from middleware.integrations.backend import Backend, make_backend
from middleware.integrations.langchain.convert import to_ragpress


class RagpressCompressor(BaseDocumentCompressor):
    """Compresses retrieved documents to a token budget of the target model.

    Runs in-process (``engine=Ragpress(...)``, or a default engine) or against a
    server (``target="host:port"``); ``acompress_documents`` is truly async on a
    server (grpc.aio) and runs in a worker thread in-process.

    Kept documents keep their order, ``id`` and metadata; their text is the
    compressed text and ``metadata[stats_key]`` (default ``"ragpress"``) holds the
    call's figures. Documents the budget leaves no room for are dropped.

    Callbacks given to a call (or through a chain's config) receive one custom event,
    ``"ragpress_compression"``, with the call's figures (tokens before and after, the
    ceiling, methods, dropped positions, request id), so tracers and cost handlers see
    what compression did.
    """

    EVENT: ClassVar[str] = "ragpress_compression"

    model_config = ConfigDict(arbitrary_types_allowed=True)

    budget: int | float = Field(default=0.5, description="Token ceiling (int) or keep ratio in (0, 1] (float).")
    model: str | None = Field(default=None, description="Target model whose tokenizer counts the budget.")
    method: str | None = Field(default=None, description="Registered compression method; default of the engine.")
    stats_key: str | None = Field(default="ragpress", description="Metadata key for the stats; None: none.")
    engine: Any = Field(default=None, description="A middleware.library.Ragpress engine (in-process).")
    target: str | None = Field(default=None, description="Address of a ragpress server, e.g. 127.0.0.1:50051.")
    tenant: str | None = None
    timeout: float | None = 30.0
    # Remote servers with keys or TLS: the API key (kept out of reprs) and grpc.ChannelCredentials.
    api_key: SecretStr | None = None
    credentials: Any = None
    _backend: Backend = PrivateAttr()

    @model_validator(mode="after")
    def _connect(self) -> "RagpressCompressor":
        self._backend = make_backend(self.engine, self.target, self.tenant, self.timeout, budget=self.budget,
                                     api_key=self.api_key.get_secret_value() if self.api_key else None,
                                     credentials=self.credentials)
        return self

    def compress_documents(self, documents: Sequence[LCDocument], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[LCDocument]:
        if not documents:
            return []
        result = self._backend.compress(query, self._inputs(documents), self.budget, **self._options())
        if callbacks:
            from langchain_core.callbacks import CallbackManager

            CallbackManager.configure(inheritable_callbacks=callbacks).on_custom_event(self.EVENT, _event(result))
        return self._outputs(documents, result)

    async def acompress_documents(self, documents: Sequence[LCDocument], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[LCDocument]:
        if not documents:
            return []
        result = await self._backend.acompress(query, self._inputs(documents), self.budget, **self._options())
        if callbacks:
            from langchain_core.callbacks import AsyncCallbackManager

            await AsyncCallbackManager.configure(inheritable_callbacks=callbacks).on_custom_event(
                self.EVENT, _event(result))
        return self._outputs(documents, result)

    def as_runnable(self, separator: str = "\n\n") -> Runnable[dict[str, Any], dict[str, Any]]:
        """A runnable for chains: ``{"documents": [...], "query": str}`` in,
        ``{"context": str, "question": str, "documents": [...]}`` out, sync and async::

            chain = {"documents": retriever, "query": RunnablePassthrough()} | compressor.as_runnable() | prompt
        """
        from langchain_core.runnables import RunnableLambda

        def shape(query: str, docs: Sequence[LCDocument]) -> dict[str, Any]:
            return {"context": separator.join(d.page_content for d in docs), "question": query,
                    "documents": list(docs)}

        def run(inputs: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            docs = self.compress_documents(inputs["documents"], inputs["query"], callbacks=config.get("callbacks"))
            return shape(inputs["query"], docs)

        async def arun(inputs: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            docs = await self.acompress_documents(inputs["documents"], inputs["query"],
                                                  callbacks=config.get("callbacks"))
            return shape(inputs["query"], docs)

        return RunnableLambda(run, afunc=arun, name="RagpressCompressor")

    def _options(self) -> dict[str, Any]:
        return {"model": self.model, "method": self.method}

    @staticmethod
    def _inputs(documents: Sequence[LCDocument]):
        # LangChain ids may be missing or repeated; positions are unique and map back exactly.
        return [to_ragpress(doc, str(i)) for i, doc in enumerate(documents)]

    def _outputs(self, documents: Sequence[LCDocument], result: CompressResult) -> list[LCDocument]:
        out = []
        for kept in result.documents:
            original = documents[int(kept.id)]
            metadata = dict(original.metadata)
            if self.stats_key:
                metadata[self.stats_key] = {
                    "original_tokens": result.original_tokens,
                    "compressed_tokens": result.compressed_tokens,
                    "budget_tokens": result.budget_tokens,
                    "model": result.model,
                    "tokenizer": result.tokenizer,
                    "methods": [s.method for s in result.stages],
                    "request_id": result.request_id,
                    "original_chars": len(original.page_content),
                    "compressed_chars": len(kept.text),
                }
            out.append(LCDocument(page_content=kept.text, metadata=metadata, id=original.id))
        return out


def _event(result: CompressResult) -> dict[str, Any]:
    return {"original_tokens": result.original_tokens, "compressed_tokens": result.compressed_tokens,
            "budget_tokens": result.budget_tokens, "model": result.model, "tokenizer": result.tokenizer,
            "methods": [s.method for s in result.stages], "dropped_ids": list(result.dropped_ids),
            "request_id": result.request_id}
