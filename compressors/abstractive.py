"""``abstractive``: a query-focused summary of the documents that states no fact they lack.

Steps, for one request:

1. **Cache**: a finished output is looked up by a content hash of the documents,
   query, summariser, options, budget and tokenizer (:mod:`compressors.summary_cache`).
2. **Selective reading**: ``extractive`` judges relevance and, when the input is
   longer than ``input_tokens`` target tokens, picks what the summariser reads; when
   no sentence is relevant the output is empty and the details say why (never a
   made-up summary).
3. **Length from the budget**: the room left for text in the TARGET tokenizer
   (budget minus titles and separators) is converted into the summariser's tokens
   (measured on the text it reads) and capped by ``max_new_tokens``.
4. **Summary** by the local model (``local/smollm2`` by default) or any litellm model
   (``summarizer``), with Generate's fallback policy and the caller's deadline
   (:mod:`compressors.summarizers`); ``together`` (one summary) or ``each`` document.
5. **Faithfulness guard** (:mod:`compressors.faithfulness`): sentences stating a
   number, date, name or identifier the documents lack are dropped (``repaired``);
   when nothing is left, or with ``on_unfaithful="extractive"``, ``extractive``
   replaces the summary for this input (``replaced``). A summary that says the
   documents hold nothing relevant gives an empty output.
6. **Attribution** (:mod:`compressors.attribution`): each sentence names its
   documents and is placed under the best one, so the response keeps document ids.
7. **Exact fit**: the assembled context is counted in the target tokenizer and the
   last sentences are dropped until it fits; it never exceeds the budget.

The summariser's tokens and dollars are the stage's :class:`CompressorUsage`, which
the usage ledger counts as the compressor's cost.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from compressors import attribution, context, faithfulness, summary_cache, units
from compressors.base import CompressionJob, Compressor, StageOutput, parse_options
from compressors.registry import register
from compressors.summarizers import POLICIES, LocalSummarizer, PolicySummarizer, RemoteSummarizer, Summarizer, Summary
from middleware.errors import InvalidArgument
from middleware.models import ModelRegistry
from middleware.types import CompressorUsage, Document

MODES = ("together", "each")
ON_UNFAITHFUL = ("repair", "extractive")
CACHE_VERSION = "abstractive/1"

SYSTEM = ("You write short summaries that help answer a question. Use only facts stated in the documents. "
          "Copy names, numbers and dates exactly as the documents write them. Never add facts.")
INSTRUCTION = ("Write a summary of at most {words} words of the facts in the documents that answer the question. "
               "If the documents say nothing about the question, write only: NONE")
GENERIC_INSTRUCTION = "Write a summary of at most {words} words of the main facts in the documents."
# A summary sentence that only says the documents hold nothing relevant.
_NOTHING = re.compile(r"^\W*none\W*$|\bno (?:relevant )?information\b|\b(?:do|does|did) not (?:mention|contain|"
                      r"provide|say|state|specify)\b|\bnot (?:mentioned|stated|specified|provided)\b", re.I)
_LABEL = re.compile(r"^\s*(?:[-*•]\s+|(?:summary|answer)\s*:\s*)", re.I | re.M)


@dataclass(frozen=True)
class AbstractiveOptions:
    # "" = the configured local summariser (settings.summarizer_model); "local/<name>" or any litellm model.
    summarizer: str = ""
    # "together": one summary of all documents; "each": one per relevant document.
    mode: str = "together"
    # For a litellm summariser: "fail", "retry" or "local"; None = settings.llm_fallback.
    fallback: str | None = None
    # "repair": drop unsupported sentences (extractive when none is left); "extractive": replace at once.
    on_unfaithful: str = "repair"
    # Target tokens the summariser reads at most (extractive selects them).
    input_tokens: int = 400
    # Cap on the summary length in the summariser's tokens (latency: ~75 ms a token for SmolLM2 on a small CPU).
    max_new_tokens: int = 128
    # Local summariser: logit bonus of the source's own tokens (0 turns it off).
    copy_bias: float = 2.0
    # Reuse finished outputs (bounded by settings.summary_cache_entries).
    cache: bool = True
    # Fill the room the summary leaves under the budget with extractive's verbatim sentences.
    backfill: bool = False

    def __post_init__(self) -> None:
        m = "method 'abstractive'"
        if self.mode not in MODES:
            raise InvalidArgument(f"{m}: mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.fallback is not None and self.fallback not in POLICIES:
            raise InvalidArgument(f"{m}: fallback must be one of {list(POLICIES)}, got {self.fallback!r}")
        if self.on_unfaithful not in ON_UNFAITHFUL:
            raise InvalidArgument(f"{m}: on_unfaithful must be one of {list(ON_UNFAITHFUL)}, "
                                  f"got {self.on_unfaithful!r}")
        if self.input_tokens < 16 or self.max_new_tokens < 4:
            raise InvalidArgument(f"{m}: input_tokens must be >= 16 and max_new_tokens >= 4")
        if not 0.0 <= self.copy_bias <= 10.0:
            raise InvalidArgument(f"{m}: copy_bias must be in [0, 10], got {self.copy_bias}")
        if self.summarizer.strip() != self.summarizer or self.summarizer == "local/":
            raise InvalidArgument(f"{m}: summarizer must be a model name, got {self.summarizer!r}")


class AbstractiveCompressor(Compressor):
    def __init__(self, options: AbstractiveOptions, summarizer: Summarizer, selector: Compressor,
                 cache: summary_cache.SummaryCache[StageOutput] | None) -> None:
        self.options = options
        self.summarizer = summarizer
        self.selector = selector
        self.cache = cache if options.cache else None

    def compress(self, job: CompressionJob) -> StageOutput:
        key = self._key(job) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                model = hit.usage.model if hit.usage else self.summarizer.model
                return dataclasses.replace(hit, details={**hit.details, "cache": "hit"},
                                           usage=CompressorUsage(model, cached=True))
        out = self._compress(job)
        if self.cache is not None:
            self.cache.put(key, out)
        return dataclasses.replace(out, details={**out.details, "cache": "miss" if self.cache is not None else "off"})

    def _key(self, job: CompressionJob) -> str:
        docs = [(d.id, d.title, d.text, dict(d.metadata)) for d in job.documents]
        fmt = job.context_format
        return summary_cache.key(CACHE_VERSION, job.query, docs, self.summarizer.model,
                                 dataclasses.asdict(self.options), job.budget_tokens, job.tokenizer.name,
                                 fmt.separator, fmt.include_titles)

    def _compress(self, job: CompressionJob) -> StageOutput:
        base = {"summarizer": self.summarizer.model, "mode": self.options.mode}
        if not context.visible(job.documents):
            return StageOutput((), {**base, "relevant": False, "reason": "no document has text"})
        # extractive judges relevance, and chooses what to read when the input is longer than input_tokens.
        picked = self.selector.compress(dataclasses.replace(
            job, budget_tokens=max(job.budget_tokens, self.options.input_tokens)))
        if not picked.documents or not picked.details.get("relevant", True):
            why = f"no sentence is relevant to the query (best probability {picked.details.get('max_probability')})"
            return StageOutput((), {**base, "relevant": False, "reason": why})
        whole = tuple(context.visible(job.documents))
        fits = context.count(whole, job.context_format, job.tokenizer) <= self.options.input_tokens
        read = whole if fits else tuple(context.visible(picked.documents))
        base.update(read_tokens=context.count(read, job.context_format, job.tokenizer), read_documents=len(read),
                    preselected=not fits)
        groups = [read] if self.options.mode == "together" else [(d,) for d in read]
        sentences: list[tuple[str, tuple[Document, ...]]] = []
        summaries: list[Summary] = []
        dropped: list[faithfulness.Guarded] = []
        nothing = 0
        for group in groups:
            summary = self._summarise(job, group, len(groups))
            summaries.append(summary)
            said, meta = _sentences(summary.text)
            nothing += meta
            guarded = faithfulness.guard(said, faithfulness.index(_source_texts(group)))
            dropped.append(guarded)
            sentences.extend((s, group) for s in guarded.kept)
        details = {**base, **_usage_details(summaries), "guard": _merge_reports(dropped)}
        usage = _usage(summaries)
        if not sentences and nothing and not any(g.dropped for g in dropped):
            return StageOutput((), {**details, "relevant": False,
                                    "reason": "the summariser found nothing in the documents about the query"},
                                usage)
        if not sentences or (self.options.on_unfaithful == "extractive" and any(g.dropped for g in dropped)):
            return self._replace(job, details, usage, "the summary stated facts the documents lack"
                                 if any(g.dropped for g in dropped) else "the summary was empty")
        docs, attributions, trimmed = _fit(job, sentences)
        if not docs:
            return self._replace(job, details, usage, "no summary sentence fits the budget")
        details.update(relevant=True, sentences=len(attributions), sentences_trimmed=trimmed,
                       attribution=attributions, outcome=details["guard"]["action"])
        if self.options.backfill:
            docs, details["backfilled_tokens"] = self._backfill(job, docs)
        return StageOutput(docs, details, usage)

    def _backfill(self, job: CompressionJob, docs: tuple[Document, ...]) -> tuple[tuple[Document, ...], int]:
        """The summary plus extractive's best verbatim sentences in the room it leaves."""
        fmt, tok = job.context_format, job.tokenizer
        used = context.count(docs, fmt, tok)
        room = job.budget_tokens - used
        while room >= 8:
            extra = self.selector.compress(dataclasses.replace(job, budget_tokens=room)).documents
            merged = _merge(job.documents, docs, extra)
            total = context.count(merged, fmt, tok)
            if total <= job.budget_tokens:
                return merged, total - used
            room -= total - job.budget_tokens
        return docs, 0

    def _summarise(self, job: CompressionJob, group: tuple[Document, ...], parts: int) -> Summary:
        fmt = job.context_format
        text = context.assemble(group, fmt)
        headers = context.count([d.with_text(".") for d in group[:3]], fmt, job.tokenizer)
        room = max(8, job.budget_tokens // parts - headers)
        # Summariser tokens per target token, measured on what it reads.
        ratio = self.summarizer.count(text) / max(1, job.tokenizer.count(text))
        max_new = max(4, min(self.options.max_new_tokens, math.ceil(room * ratio * 1.1) + 4))
        words = max(5, int(room * 0.7))
        template = INSTRUCTION if job.query.strip() else GENERIC_INSTRUCTION
        user = f"Documents:\n{text}\n\n" + (f"Question: {job.query.strip()}\n\n" if job.query.strip() else "") \
            + template.format(words=words)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        return self.summarizer.summarize(messages, max_new, job.deadline, source=text)

    def _replace(self, job: CompressionJob, details: dict, usage: CompressorUsage, why: str) -> StageOutput:
        out = self.selector.compress(job)
        details.update(relevant=bool(out.documents), outcome="replaced", replaced_by="extractive", reason=why,
                       extractive=dict(out.details))
        return StageOutput(out.documents, details, usage)


def _source_texts(group: tuple[Document, ...]) -> list[str]:
    return [f"{d.title}\n{d.text}" if d.title.strip() else d.text for d in group]


def _sentences(text: str) -> tuple[list[str], int]:
    """Summary sentences without list markers and labels, and how many only said "nothing relevant"."""
    text = _LABEL.sub("", text).strip()
    out, nothing = [], 0
    for span in units.split(text):
        sentence = " ".join(text[span.start:span.end].split())
        if _NOTHING.search(sentence):
            nothing += 1
        elif any(c.isalnum() for c in sentence):
            out.append(sentence)
    return out, nothing


def _fit(job: CompressionJob,
         sentences: list[tuple[str, tuple[Document, ...]]]) -> tuple[tuple[Document, ...], list, int]:
    """Documents holding the attributed sentences, within the budget (last sentences dropped first)."""
    order = {d.id: i for i, d in enumerate(job.documents)}
    attributed = []
    for sentence, group in sentences:
        (a,) = attribution.attribute([sentence], _source_texts(group))
        attributed.append((sentence, tuple(group[i] for i in a.documents)))
    trimmed = 0
    while attributed:
        docs = _build(attributed, order)
        if context.count(docs, job.context_format, job.tokenizer) <= job.budget_tokens:
            return docs, [{"text": s, "documents": [d.id for d in ds]} for s, ds in attributed], trimmed
        attributed.pop()
        trimmed += 1
    return (), [], trimmed


def _build(attributed: list[tuple[str, tuple[Document, ...]]], order: dict[str, int]) -> tuple[Document, ...]:
    homes: dict[str, tuple[Document, list[str]]] = {}
    for sentence, docs in attributed:
        homes.setdefault(docs[0].id, (docs[0], []))[1].append(sentence)
    return tuple(doc.with_text(" ".join(said)) for doc, said in sorted(homes.values(), key=lambda h: order[h[0].id]))


def _merge(inputs: tuple[Document, ...], summary: tuple[Document, ...],
           extra: tuple[Document, ...]) -> tuple[Document, ...]:
    """Per document: its summary sentences, then its extracted ones (input order kept)."""
    said = {d.id: d.text for d in summary}
    quoted = {d.id: d.text for d in extra}
    out = []
    for doc in inputs:
        parts = [t for t in (said.get(doc.id), quoted.get(doc.id)) if t]
        if parts:
            out.append(doc.with_text(" ".join(parts)))
    return tuple(out)


def _usage(summaries: list[Summary]) -> CompressorUsage:
    models = sorted({s.model for s in summaries})
    return CompressorUsage(model="+".join(models), prompt_tokens=sum(s.prompt_tokens for s in summaries),
                           completion_tokens=sum(s.completion_tokens for s in summaries),
                           cost_usd=sum(s.cost_usd for s in summaries))


def _usage_details(summaries: list[Summary]) -> dict[str, Any]:
    reasons = [s.fallback_reason for s in summaries if s.fallback_reason]
    return {"summaries": len(summaries), "answered_by": sorted({s.model for s in summaries}),
            "fell_back": bool(reasons), "fallback_reason": reasons[0] if reasons else "",
            "finish_reasons": sorted({s.finish_reason for s in summaries})}


def _merge_reports(reports: list[faithfulness.Guarded]) -> dict[str, Any]:
    merged = [r.report() for r in reports]
    actions = {m["action"] for m in merged}
    action = "failed" if actions == {"failed"} else "repaired" if actions - {"passed"} else "passed"
    return {"action": action, "facts_checked": sum(m["facts_checked"] for m in merged),
            "sentences_dropped": sum(m["sentences_dropped"] for m in merged),
            "unsupported": [u for m in merged for u in m["unsupported"]][:20]}


def build_summarizer(options: AbstractiveOptions, models: ModelRegistry) -> Summarizer:
    """The summariser the options name: local, or remote under the fallback policy."""
    settings = models.settings
    name = options.summarizer or settings.summarizer_model

    def local(model: str = settings.summarizer_model) -> Summarizer:
        return LocalSummarizer(model, models.local_runtime(model), options.copy_bias)

    if name.startswith("local/"):
        return local(name)
    remote = RemoteSummarizer(name, settings, models.tokenizers.get(name).count)
    return PolicySummarizer(remote, options.fallback or settings.llm_fallback, settings.llm_retries, local)


@register("abstractive", "query-focused summary by a local or litellm model, guarded against invented facts, "
                         "attributed to document ids")
def _factory(options: Mapping[str, Any], models: ModelRegistry) -> Compressor:
    from compressors import registry

    opts = parse_options(AbstractiveOptions, options, "abstractive")
    cache = models.shared("abstractive.summary_cache",
                          lambda: summary_cache.SummaryCache(models.settings.summary_cache_entries))
    return AbstractiveCompressor(opts, build_summarizer(opts, models), registry.create("extractive", {}, models),
                                 cache)
