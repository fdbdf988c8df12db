"""A LangChain example selector backed by ragpress demonstration selection."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from langchain_core.example_selectors import BaseExampleSelector
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from middleware.integrations.backend import Backend, make_backend

_EXAMPLE = "example"


class RagpressExampleSelector(BaseExampleSelector, BaseModel):
    """Selects few-shot examples with a ragpress strategy, within a token budget of the
    target model (LangChain's own selectors count words and know no budget).

    Examples live in a named pool (``pool="faq"``: stored per tenant, shared by every
    selector and server that names it; ``add_example`` upserts into it) or in the
    selector itself (``examples=[...]``, sent inline with each call). Runs in-process
    (``engine=Ragpress(...)``, or a default engine) or against a server
    (``target="host:port"``); the async methods are truly async on a server.

    ``select_examples`` returns the example dicts as they were added. Set ``template``
    to the rendering your ``FewShotPromptTemplate``'s ``example_prompt`` and separator
    produce (fields ``{input}``, ``{output}``, ``{label}``), so the budget counts what
    the prompt will hold::

        selector = RagpressExampleSelector(examples=examples, k=4, budget=120, model="gpt-4o",
                                           template="Input: {input}\\nOutput: {output}\\n\\n")
        prompt = FewShotPromptTemplate(example_selector=selector, example_prompt=example_prompt,
                                       suffix="Input: {input}\\nOutput:", input_variables=["input"])
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pool: str | None = Field(default=None, description="A named demonstration pool of the tenant.")
    examples: list[dict[str, Any]] | None = Field(default=None, description="Inline examples (no named pool).")
    input_key: str = Field(default="input", description="The example key (and input variable) compared.")
    output_key: str = Field(default="output", description="The example key of the answer.")
    label_key: str | None = Field(default=None, description="The example key of a class label (balanced).")
    id_key: str | None = Field(default=None, description="The example key of a stable id; default: a hash.")
    k: int = Field(default=4, description="At most this many examples (max_demonstrations).")
    budget: int | float | None = Field(default=None, description="Token ceiling (int) or share (float).")
    model: str | None = Field(default=None, description="Target model whose tokenizer counts the budget.")
    method: str = Field(default="similar", description="random, similar, mmr, balanced or dynamic.")
    options: dict[str, Any] = Field(default_factory=dict, description="Strategy options.")
    seed: int = 0
    core_ids: list[str] = Field(default_factory=list, description="Ids placed first on every prompt.")
    order: str = "nearest_last"
    template: str = Field(default="", description="One example's rendering, for counting the budget.")
    engine: Any = Field(default=None, description="A middleware.library.Ragpress engine (in-process).")
    target: str | None = Field(default=None, description="Address of a ragpress server, e.g. 127.0.0.1:50051.")
    tenant: str | None = None
    timeout: float | None = 30.0
    api_key: SecretStr | None = Field(default=None, description="API key of the server (it fixes the tenant).")
    credentials: Any = Field(default=None, exclude=True, description="grpc.ChannelCredentials, for TLS.")
    _backend: Backend = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _connect(self) -> "RagpressExampleSelector":
        from middleware.errors import InvalidArgument

        if self.pool and self.examples is not None:
            raise InvalidArgument("give either pool (a named pool) or examples (inline), not both; "
                                  "add examples to a pool with add_example")
        if not self.pool and self.examples is None:
            self.examples = []
        self._backend = make_backend(self.engine, self.target, self.tenant, self.timeout,
                                     api_key=self.api_key.get_secret_value() if self.api_key else None,
                                     credentials=self.credentials)
        return self

    # -- adding ------------------------------------------------------------------------
    def add_example(self, example: dict[str, Any]) -> str:
        """Add an example (to the named pool, or to the inline list); returns its id."""
        demo = self._demonstration(example)
        if self.pool:
            self._backend.index_demonstrations(self.pool, [demo])
        else:
            with self._lock:
                self.examples = [e for e in self.examples if self._id(e) != demo["id"]] + [dict(example)]
        return demo["id"]

    async def aadd_example(self, example: dict[str, Any]) -> str:
        demo = self._demonstration(example)
        if not self.pool:
            return self.add_example(example)
        await self._backend.aindex_demonstrations(self.pool, [demo])
        return demo["id"]

    # -- selecting ---------------------------------------------------------------------
    def select_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        return self._examples(self.select_result(input_variables))

    async def aselect_examples(self, input_variables: dict[str, Any]) -> list[dict[str, Any]]:
        result = await self._backend.aselect_demonstrations(self._query(input_variables), self._pool(),
                                                            **self._options())
        return self._examples(result)

    def select_result(self, input_variables: dict[str, Any]) -> Any:
        """The whole selection (tokens, scores, why): a :class:`middleware.demonstrations.SelectResult`."""
        return self._backend.select_demonstrations(self._query(input_variables), self._pool(), **self._options())

    # -- helpers -----------------------------------------------------------------------
    def _query(self, input_variables: dict[str, Any]) -> str:
        if self.input_key in input_variables:
            return str(input_variables[self.input_key])
        # As LangChain's vector-store selectors do without input keys: every value, by key.
        return " ".join(str(input_variables[key]) for key in sorted(input_variables))

    def _options(self) -> dict[str, Any]:
        out = {"pool_name": self.pool or "", "budget": self.budget, "max_demonstrations": self.k,
               "method": self.method, "options": self.options, "seed": self.seed, "core_ids": self.core_ids,
               "order": self.order, "template": self.template}
        if self.model is not None:
            out["model"] = self.model
        return out

    def _pool(self) -> list[dict[str, Any]]:
        if self.pool:
            return []
        with self._lock:
            return [self._demonstration(e) for e in self.examples]

    def _id(self, example: dict[str, Any]) -> str:
        if self.id_key and example.get(self.id_key) not in (None, ""):
            return str(example[self.id_key])
        blob = json.dumps(example, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.blake2b(blob.encode("utf-8"), digest_size=8).hexdigest()

    def _demonstration(self, example: dict[str, Any]) -> dict[str, Any]:
        from middleware.errors import InvalidArgument

        if self.input_key not in example:
            raise InvalidArgument(f"example has no {self.input_key!r} key (input_key); keys: {sorted(example)}")
        label = example.get(self.label_key) if self.label_key else None
        return {"id": self._id(example), "input": str(example[self.input_key]),
                "output": str(example.get(self.output_key, "")),
                "label": "" if label is None else str(label),
                "metadata": {_EXAMPLE: json.loads(json.dumps(example, default=str))}}

    def _examples(self, result: Any) -> list[dict[str, Any]]:
        out = []
        for demo in result.demonstrations:
            stored = demo.metadata.get(_EXAMPLE)
            example = dict(stored) if isinstance(stored, dict) else {self.input_key: demo.input,
                                                                     self.output_key: demo.output}
            if demo.input != str(example.get(self.input_key, demo.input)):
                example[self.input_key] = demo.input  # compressed on the way
            out.append(example)
        return out
