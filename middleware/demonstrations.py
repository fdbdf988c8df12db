"""SelectDemonstrations: pick, compress, fit, order and render few-shot demonstrations.

The service composes the methods: a pool (named, per tenant, or inline) and a
strategy from :mod:`retrievers.demos`, long demonstrations shrunk by any registered
compressor (through the same :class:`~middleware.pipeline.Pipeline` as Compress),
then :func:`retrievers.demos.packing.pack` fits them under the budget in the target
model's tokenizer. The library, the servicer, Generate and the CLI all call
:meth:`DemonstrationSelector.select`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from middleware.errors import InvalidArgument
from middleware.models import ModelRegistry
from middleware.types import (
    DEFAULT_MODEL, Budget, CompressRequest, ContextFormat, Demonstration, Document, Stage, _frozen,
)

if TYPE_CHECKING:
    from middleware.pipeline import Pipeline
    from retrievers.demos.packing import Shrink
    from retrievers.demos.pool import Pool
    from retrievers.demos.pools import DemoPools, PoolIndexResult
    from middleware.tokens import ModelTokenizer

DEFAULT_STRATEGY = "similar"
DEFAULT_MAX_DEMONSTRATIONS = 4
# Above this many demonstrations a request is more likely a mistake than a prompt.
MAX_DEMONSTRATIONS = 256


@dataclass(frozen=True)
class SelectRequest:
    """One selection. Give ``pool`` (inline demonstrations) or ``pool_name`` (a stored pool)."""

    query: str
    pool: tuple[Demonstration, ...] = ()
    pool_name: str = ""
    model: str = DEFAULT_MODEL
    budget: Budget | None = None
    max_demonstrations: int = DEFAULT_MAX_DEMONSTRATIONS
    method: str = DEFAULT_STRATEGY
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    core_ids: tuple[str, ...] = ()
    order: str = "nearest_last"
    compression: tuple[Stage, ...] = ()
    compress_above_tokens: int = 0
    template: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidArgument("query is required: the input the demonstrations are for")
        object.__setattr__(self, "pool", tuple(self.pool))
        object.__setattr__(self, "core_ids", tuple(self.core_ids))
        object.__setattr__(self, "compression", tuple(self.compression))
        object.__setattr__(self, "options", _frozen(self.options))
        if self.pool and self.pool_name:
            raise InvalidArgument("give either pool (inline demonstrations) or pool_name, not both")
        if not self.pool and not self.pool_name:
            raise InvalidArgument("the pool is empty: pass demonstrations in pool, or name a stored pool in pool_name")
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidArgument("model must be a non-empty string")
        k = self.max_demonstrations
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_DEMONSTRATIONS:
            raise InvalidArgument(f"max_demonstrations must be in 1..{MAX_DEMONSTRATIONS}, got {k!r}")
        if len(set(self.core_ids)) != len(self.core_ids):
            raise InvalidArgument("core_ids lists an id twice")
        if len(self.core_ids) > k:
            raise InvalidArgument(f"{len(self.core_ids)} core_ids exceed max_demonstrations ({k})")
        if self.compression and self.compress_above_tokens < 1:
            raise InvalidArgument("compression needs compress_above_tokens: the length above which an input is "
                                  "compressed, and its target")
        if self.compress_above_tokens and not self.compression:
            raise InvalidArgument("compress_above_tokens needs a compression pipeline (e.g. method 'extractive')")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidArgument(f"seed must be an integer >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class SelectResult:
    """The chosen demonstrations in prompt order and their rendered block (``prompt``)."""

    demonstrations: tuple[Demonstration, ...]
    scores: tuple[float, ...]
    prompt: str
    original_tokens: int
    selected_tokens: int
    budget_tokens: int  # 0: no ceiling
    stable_prefix_tokens: int
    core_count: int
    method: str
    model: str
    tokenizer: str
    tokenizer_fallback: bool
    compressed_ids: tuple[str, ...]
    details: Mapping[str, Any]
    latency_ms: float
    request_id: str
    # The uncompressed fixed-k block the savings are counted against (not on the wire).
    original_prompt: str = ""

    @property
    def method_label(self) -> str:
        """The usage ledger's method: the strategy, then the compression stages."""
        stages = self.details.get("compression") or []
        return "+".join([self.method, *stages])


class DemonstrationSelector:
    """Selects demonstrations with the registered strategies and the injected models."""

    def __init__(self, models: ModelRegistry, pipeline: "Pipeline", pools: "DemoPools") -> None:
        self.models = models
        self.pipeline = pipeline
        self.pools = pools

    def index(self, pool: str, tenant: str, demonstrations=(), delete_ids=()) -> "PoolIndexResult":
        """Upsert and delete demonstrations of a named pool (created on the first upsert)."""
        return self.pools.index(pool, tenant, tuple(demonstrations), tuple(delete_ids))

    def select(self, request: SelectRequest, tenant: str = "default", request_id: str = "") -> SelectResult:
        from retrievers.demos import packing, registry
        from retrievers.demos.base import SelectionJob

        started = time.perf_counter()
        template = packing.check_template(request.template)
        tok = self.models.tokenizers.get(request.model)
        # A bad strategy name or option fails before any pool is read.
        strategy = registry.create(request.method, request.options)
        pool = self.pools.get(request.pool_name, tenant) if request.pool_name else self.pools.inline(request.pool)
        if not len(pool):
            raise InvalidArgument(f"demonstration pool {pool.name!r} is empty")
        core = _core(pool, request.core_ids)
        vector = pool.embed(request.query)
        k = request.max_demonstrations - len(core)
        job = SelectionJob(request.query, vector, pool, k, request.seed, frozenset(request.core_ids))
        selection = strategy.select(job)
        ranked_demos = pool.get([c.id for c in selection.ranked])
        ranked = [packing.Candidate(d, c.score) for d, c in zip(ranked_demos, selection.ranked)]
        core_scores = pool.similarities(vector, [d.id for d in core])
        core_cands = [packing.Candidate(d, s) for d, s in zip(core, core_scores)]
        # What a fixed-k selection without budget or compression would send: the savings' baseline.
        baseline = [c.demonstration for c in sorted(core_cands, key=lambda c: c.demonstration.id)]
        baseline += [c.demonstration for c in ranked[:k]]
        original_prompt = packing.render(baseline, template)
        original = tok.count(original_prompt)
        ceiling = request.budget.ceiling(original) if request.budget is not None else None
        packed = packing.pack(core_cands, ranked, min(selection.limit, k), ceiling, tok, template, request.order,
                              self._shrinker(request, tok))
        details = dict(selection.details)
        details["candidates"] = len(ranked)
        details["skipped_for_budget"] = packed.skipped_for_budget
        if request.compression:
            details["compression"] = [s.method for s in request.compression]
        return SelectResult(
            demonstrations=packed.demonstrations, scores=packed.scores, prompt=packed.text,
            original_tokens=original, selected_tokens=packed.tokens, budget_tokens=ceiling or 0,
            stable_prefix_tokens=packed.stable_prefix_tokens, core_count=packed.core_count, method=request.method,
            model=request.model, tokenizer=tok.name, tokenizer_fallback=tok.fallback,
            compressed_ids=packed.compressed_ids, details=details,
            latency_ms=(time.perf_counter() - started) * 1000.0, request_id=request_id or uuid.uuid4().hex,
            original_prompt=original_prompt)

    def _shrinker(self, request: SelectRequest, tok: "ModelTokenizer") -> "Shrink | None":
        """Compresses an input longer than ``compress_above_tokens`` to that many tokens, query-aware.

        A compressor that keeps nothing of an input leaves the demonstration whole: an
        empty example teaches the model nothing, and the budget still decides if it fits.
        """
        if not request.compression:
            return None
        above = request.compress_above_tokens
        fmt = ContextFormat(include_titles=False)

        def shrink(demo: Demonstration) -> Demonstration:
            if tok.count(demo.input) <= above:
                return demo
            job = CompressRequest(query=request.query, documents=(Document(id=demo.id, text=demo.input),),
                                  budget=Budget(max_tokens=above), model=request.model,
                                  pipeline=request.compression, context_format=fmt)
            text = self.pipeline.compress(job).context
            return demo.with_input(text) if text.strip() else demo

        return shrink


def _core(pool: "Pool", core_ids: tuple[str, ...]) -> list[Demonstration]:
    if not core_ids:
        return []
    known = set(pool.ids())
    missing = [i for i in core_ids if i not in known]
    if missing:
        raise InvalidArgument(f"core_ids {missing[:5]} are not in pool {pool.name!r}")
    return pool.get(list(core_ids))
