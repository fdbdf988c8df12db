"""Soft tokens (method ``soft``) against text contexts, on SmolLM2-135M-Instruct (CPU).

    .venv/bin/python bench/soft_tokens.py                          # HotpotQA dev100 and the NQ dev file
    .venv/bin/python bench/soft_tokens.py --data PATH [--limit N] [--ttft-questions 20] [--threads 1]

For every question of a file in the HotpotQA row format that has gold passages (the
context entries its supporting facts name), the question is asked with:

- ``none``: no context;
- ``full``: the gold passages in full (titles, blank lines: the uncompressed context);
- ``soft``: the gold passages' soft tokens (k per chunk of a passage, through the shipped projector);
- ``shuffled``: the next question's soft tokens (a control: what the projector gives
  without the right document, i.e. what a learned prompt alone is worth);
- ``extractive@n``: the ``extractive`` method over the gold passages, cut to n = the
  number of soft tokens (SmolLM2 tokens);
- ``lead@n``: each gold passage's first tokens, as many as its soft tokens: text of the same size.

Measures: teacher-forced NLL of the gold answer's tokens (per token over all questions),
gap closed = (NLL_none - NLL_x) / (NLL_none - NLL_full), exact match and answer
containment of a greedy answer (at most 12 new tokens; for the ``--em`` conditions), prompt tokens, and time to first
token with a cold cache (soft: encoding the passages with MiniLM + projecting + prefill;
``soft (stored vectors)``: as when the passages come from a collection, which stores one
vector per document: only the chunks of longer documents are encoded). Time to first
token is also measured with *all* of a question's passages (10 in HotpotQA, 20 in NQ)
in full against all of them as soft tokens, on the first ``--ttft-questions`` questions.

The data folder is ``$RAGPRESS_DATA`` (default ``../shared/data`` beside the repository).
Prints a table and writes ``bench/results/soft_tokens.json`` (``soft_tokens_limit<N>.json``
with ``--limit``, so a subset never overwrites the full results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from metrics import normalise, percentile  # noqa: E402

DEFAULT_FILES = ("hotpotqa/hotpot_distractor_dev100.jsonl", "nq/nq_hybrid_dev.jsonl")
LOCAL = "local/smollm2"
TEXT = ("none", "full", "extractive", "lead")
SOFT = ("soft", "shuffled")


def data_root() -> Path:
    """``$RAGPRESS_DATA`` or ``../shared/data`` beside the repository (as ``ragpress train-projector``)."""
    from middleware.cli.train_projector import data_root as root
    from middleware.errors import InvalidArgument

    try:
        return root()
    except InvalidArgument as exc:
        sys.exit(str(exc))


def matches(prediction: str, answers: tuple[str, ...]) -> tuple[bool, bool]:
    pred = normalise(prediction)
    golds = [normalise(a) for a in answers if normalise(a)]
    return pred in golds, any(f" {g} " in f" {pred} " for g in golds)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        from compressors import registry
        from compressors.soft_forcing import Forcer
        from middleware.generation import prompt as prompts
        from middleware.library import Ragpress
        from middleware.settings import Settings

        torch.set_num_threads(args.threads)
        self.args = args
        self.engine = Ragpress(Settings(local_device="cpu", local_threads=args.threads, warm_up=False,
                                        soft_projector=args.projector or "", ledger_url="none"))
        self.models = self.engine.models
        self.runtime = self.models.local_runtime(LOCAL)
        self.soft = registry.create("soft", {}, self.models)
        self.render = prompts.default_messages
        self.forcer = Forcer(self.runtime.model, self.render, max_answer_tokens=24)

    # -- contexts -------------------------------------------------------------------------
    def documents(self, passages):
        from middleware.types import Document

        return [Document(id=f"g{i}", title=p.title, text=p.text) for i, p in enumerate(passages)]

    def encode(self, question, docs, cold: bool = True):
        if cold:
            self.models.clear_caches()
        started = time.perf_counter()
        ctx = self.soft.encode(question, docs, 10 ** 9)
        return ctx, time.perf_counter() - started

    def encode_stored(self, question, docs):
        """As a collection-backed request: each document's stored vector is known beforehand (one
        vector per document, as collections store it); the method still encodes the chunks of a
        document that is more than one chunk, and that is timed."""
        from compressors.projector import document_text

        self.models.clear_caches()
        vectors = self.models.embedder().embed([document_text(d.title, d.text) for d in docs])
        known = {d.id: v for d, v in zip(docs, vectors)}
        started = time.perf_counter()
        ctx = self.soft.encode(question, docs, 10 ** 9, known=known)
        return ctx, time.perf_counter() - started

    def extractive(self, question, docs, n: int) -> str:
        from middleware.types import Budget, CompressRequest, Stage

        req = CompressRequest(query=question, documents=tuple(docs), budget=Budget(max_tokens=max(1, n)), model=LOCAL,
                              pipeline=(Stage("extractive"),))
        return self.engine.pipeline.compress(req).context

    def lead(self, docs, counts) -> str:
        """Each document's first ``counts[i]`` tokens (as many as its soft tokens)."""
        from compressors.projector import document_text

        tok = self.runtime.model.tokenizer
        heads = [tok.decode(tok(document_text(d.title, d.text), add_special_tokens=False)["input_ids"][:k])
                 for d, k in zip(docs, counts)]
        return " ".join(h.strip() for h in heads)

    # -- measures ---------------------------------------------------------------------------
    def nll(self, examples, texts: dict[str, list[str]], softs: dict[str, list]) -> dict[str, list[float]]:
        """Summed answer NLL per question for every condition (batched, no gradients)."""
        import numpy as np
        import torch

        from compressors.soft_forcing import Forced

        out: dict[str, list[float]] = {}
        with torch.no_grad():
            for name, contexts in texts.items():
                seqs = [Forced(tuple(self.forcer.text_prompt(e.question, c)), (), (),
                               self.forcer.answer_ids(e.answer, end=False)) for e, c in zip(examples, contexts)]
                out[name] = self._batched(seqs, None)
            for name, ctxs in softs.items():
                seqs, rows = [], []
                for e, ctx in zip(examples, ctxs):
                    ids, positions = self.forcer.soft_prompt(e.question, [len(v) for v in ctx.vectors])
                    first = len(rows)
                    rows.extend(np.concatenate(ctx.vectors) if ctx.vectors else [])
                    seqs.append(Forced(tuple(ids), tuple(positions), tuple(range(first, len(rows))),
                                       self.forcer.answer_ids(e.answer, end=False)))
                out[name] = self._batched(seqs, torch.from_numpy(np.stack(rows)).float() if rows else None)
        return out

    def _batched(self, seqs, vectors, batch: int = 8) -> list[float]:
        from compressors.soft_forcing import Forced

        out = []
        for start in range(0, len(seqs), batch):
            chunk = seqs[start:start + batch]
            used = sorted({r for s in chunk for r in s.rows})
            remap = {r: i for i, r in enumerate(used)}
            local = [Forced(s.ids, s.positions, tuple(remap[r] for r in s.rows), s.target) for s in chunk]
            vec = vectors[used] if used else None
            out.extend(float(x) for x in self.forcer.nll(local, vec))
        return out

    def answer(self, question: str, context: str | None = None, soft_ctx=None, max_new: int = 12):
        """Greedy answer, cold cache: (text, prompt tokens, seconds to the first token)."""
        from middleware.generation.soft import context_markers
        from middleware.llm.runtime import SamplingParams

        params = SamplingParams(max_new_tokens=max_new, stop=("\n",))
        if soft_ctx is not None:
            sp = self.runtime.soft_prompt(self.render(question, context_markers(soft_ctx)), soft_ctx.vectors)
            gen = self.runtime.generate(list(sp.ids), params, use_cache=False, soft=sp)
        else:
            gen = self.runtime.generate(self.runtime.encode_chat(self.render(question, context)), params,
                                        use_cache=False)
        return gen.text.strip(), gen.prompt_tokens, gen.ttft_seconds


def run_file(bench: Bench, path: Path, args: argparse.Namespace) -> dict:
    from compressors.soft_data import qa_example, read_rows
    from compressors.soft_recipe import passages_context

    rows = list(read_rows(path))
    rows = rows[: args.limit] if args.limit else rows
    pairs = [(r, e) for r, e in ((r, qa_example(r)) for r in rows) if e is not None]
    examples = [e for _, e in pairs]
    n_ex = len(examples)
    started = time.perf_counter()
    softs, texts = [], {name: [] for name in TEXT}
    sizes = {"full": [], "soft": []}
    for i, e in enumerate(examples):
        docs = bench.documents(e.passages)
        ctx, _ = bench.encode(e.question, docs, cold=False)
        softs.append(ctx)
        texts["none"].append("")
        texts["full"].append(passages_context(e))
        texts["extractive"].append(bench.extractive(e.question, docs, ctx.soft_tokens))
        texts["lead"].append(bench.lead(ctx.documents, [len(v) for v in ctx.vectors]))
        sizes["soft"].append(ctx.soft_tokens)
        sizes["full"].append(len(bench.runtime.model.tokenizer(texts["full"][-1], add_special_tokens=False)["input_ids"]))
    shuffled = [softs[(i + 1) % n_ex] for i in range(n_ex)]
    nll = bench.nll(examples, texts, {"soft": softs, "shuffled": shuffled})
    print(f"  NLL done in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    tokens = [len(bench.forcer.answer_ids(e.answer, end=False)) for e in examples]
    em = {name: [] for name in (*TEXT, *SOFT, "soft (stored vectors)")}
    contains = {name: [] for name in em}
    prompt = {name: [] for name in em}
    ttft = {name: [] for name in em}
    for i, e in enumerate(examples):
        docs = bench.documents(e.passages)
        for name in TEXT:
            if name in args.em:
                text, n, t = bench.answer(e.question, texts[name][i])
                _record(em, contains, prompt, ttft, name, e, text, n, t)
        ctx, encode_s = bench.encode(e.question, docs, cold=True)
        text, n, t = bench.answer(e.question, soft_ctx=ctx)
        _record(em, contains, prompt, ttft, "soft", e, text, n, t + encode_s)
        _, stored_s = bench.encode_stored(e.question, docs)
        _record(em, contains, prompt, ttft, "soft (stored vectors)", e, text, n, t + stored_s)
        if "shuffled" in args.em:
            text, n, t = bench.answer(e.question, soft_ctx=shuffled[i])
            _record(em, contains, prompt, ttft, "shuffled", e, text, n, t)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{n_ex} answered ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    per_token = {name: sum(values) / sum(tokens) for name, values in nll.items()}
    gap = per_token["none"] - per_token["full"]
    conditions = {}
    for name in em:
        key = "soft" if name == "soft (stored vectors)" else name
        answered = bool(em[name])
        conditions[name] = {
            "nll_per_token": round(per_token[key], 4),
            "gap_closed": round((per_token["none"] - per_token[key]) / gap, 4) if gap else None,
            "exact_match": round(statistics.fmean(em[name]), 4) if answered else None,
            "answer_contained": round(statistics.fmean(contains[name]), 4) if answered else None,
            "prompt_tokens": round(statistics.fmean(prompt[name]), 1) if answered else None,
            "ttft_ms_p50": round(percentile(ttft[name], 0.5) * 1000, 1) if answered else None,
            "ttft_ms_p95": round(percentile(ttft[name], 0.95) * 1000, 1) if answered else None}
    all_passages = ttft_all_passages(bench, [r for r, _ in pairs][: args.ttft_questions])
    return {"file": path.name, "questions": n_ex, "answer_tokens": sum(tokens),
            "gold_passage_tokens_mean": round(statistics.fmean(sizes["full"]), 1),
            "soft_tokens_mean": round(statistics.fmean(sizes["soft"]), 2),
            "compression_of_gold_passages": round(sum(sizes["full"]) / max(1, sum(sizes["soft"])), 1),
            "conditions": conditions, "all_passages_ttft": all_passages,
            # Only when both were answered (``--em`` without ``full`` times soft alone).
            "ttft_ratio_full_over_soft": (round(full_ms / conditions["soft"]["ttft_ms_p50"], 2)
                                          if (full_ms := conditions["full"]["ttft_ms_p50"]) is not None else None),
            "seconds": round(time.perf_counter() - started, 1)}


def _record(em, contains, prompt, ttft, name, example, text, n, seconds) -> None:
    exact, inside = matches(text, example.answers)
    em[name].append(exact)
    contains[name].append(inside)
    prompt[name].append(n)
    ttft[name].append(seconds)


def ttft_all_passages(bench: Bench, rows: list[dict]) -> dict:
    """Every passage of the row in full vs as soft tokens: time to the first token, cold."""
    from compressors.soft_data import passages_of
    from middleware.types import ContextFormat, Document
    from compressors import context as ctx_mod

    full, soft, soft_stored, n_full, n_soft = [], [], [], [], []
    for r in rows:
        docs = [Document(id=f"p{i}", title=p.title, text=p.text) for i, p in enumerate(passages_of(r))]
        text = ctx_mod.assemble(docs, ContextFormat())
        _, n, t = bench.answer(r["question"], text, max_new=1)
        full.append(t)
        n_full.append(n)
        ctx, encode_s = bench.encode(r["question"], docs, cold=True)
        _, n, t = bench.answer(r["question"], soft_ctx=ctx, max_new=1)
        soft.append(t + encode_s)
        soft_stored.append(t + bench.encode_stored(r["question"], docs)[1])
        n_soft.append(n)
    if not rows:
        return {}
    med = lambda xs: round(percentile(xs, 0.5) * 1000, 1)  # noqa: E731
    return {"questions": len(rows), "prompt_tokens_full": round(statistics.fmean(n_full), 1),
            "prompt_tokens_soft": round(statistics.fmean(n_soft), 1), "ttft_ms_p50_full": med(full),
            "ttft_ms_p50_soft": med(soft), "ttft_ms_p50_soft_stored_vectors": med(soft_stored),
            "ratio_full_over_soft": round(percentile(full, 0.5) / percentile(soft, 0.5), 2),
            "ratio_full_over_soft_stored_vectors": round(percentile(full, 0.5) / percentile(soft_stored, 0.5), 2)}


def print_table(result: dict) -> None:
    print(f"\n{result['file']}: {result['questions']} questions, gold passages {result['gold_passage_tokens_mean']} "
          f"tokens -> {result['soft_tokens_mean']} soft tokens ({result['compression_of_gold_passages']}x)")
    print("| context | NLL/token | gap closed | EM | answer in output | prompt tokens | TTFT p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, c in result["conditions"].items():
        cells = [f"{c[key]:.3f}" if isinstance(c[key], float) else "-"
                 for key in ("nll_per_token", "gap_closed", "exact_match", "answer_contained")]
        tail = [f"{c[key]:.0f}" if c[key] is not None else "-" for key in ("prompt_tokens", "ttft_ms_p50")]
        print(f"| {name} | " + " | ".join(cells + tail) + " |")
    a = result["all_passages_ttft"]
    if a:
        print(f"all passages ({a['questions']} questions): full {a['prompt_tokens_full']:.0f} tokens, TTFT "
              f"{a['ttft_ms_p50_full']:.0f} ms; soft {a['prompt_tokens_soft']:.0f} tokens, TTFT {a['ttft_ms_p50_soft']:.0f}"
              f" ms ({a['ratio_full_over_soft']}x; stored vectors {a['ratio_full_over_soft_stored_vectors']}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="a file in the HotpotQA row format (repeatable)")
    ap.add_argument("--limit", type=int, default=None, help="first N rows of each file")
    ap.add_argument("--ttft-questions", type=int, default=10)
    ap.add_argument("--em", default="none,full,soft,extractive",
                    help="conditions whose greedy answers are generated (soft always is); all: "
                         "none,full,extractive,lead,soft,shuffled")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--projector", default=None, help="weights file (default: the shipped projector)")
    ap.add_argument("--out", default=None, help="results file (default: bench/results/soft_tokens[_limitN].json)")
    args = ap.parse_args()
    args.em = set(args.em.split(","))
    from middleware.offline import configure_offline

    configure_offline()
    files = [Path(f) for f in args.data] if args.data else [data_root() / f for f in DEFAULT_FILES]
    load0 = os.getloadavg()
    bench = Bench(args)
    results = []
    for f in files:
        print(f"{f.name} ...", file=sys.stderr)
        results.append(run_file(bench, f, args))
        print_table(results[-1])
    from compressors.projector import DEFAULT_PATH, Projector

    meta = bench.soft.projector.config
    out = Path(args.out) if args.out else HERE / "results" / (f"soft_tokens_limit{args.limit}.json" if args.limit
                                                              else "soft_tokens.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "python bench/soft_tokens.py " + " ".join(sys.argv[1:]),
        "answered_conditions": sorted(args.em | {"soft"}),
        "machine": platform.platform(), "cpus": os.cpu_count(), "torch_threads": args.threads,
        "load_average_start": [round(x, 2) for x in load0], "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "projector": {"k": meta.k, "chunk_words": meta.chunk_words, "chunking": meta.chunking,
                      "hidden": meta.hidden, "model": meta.model, "lexical_tokens": meta.lexical_tokens,
                      "encoder": meta.encoder,
                      "trained": {k: v for k, v in Projector.metadata(Path(args.projector or DEFAULT_PATH)).items()
                                  if k in ("config", "held_out_nll_per_token", "cpu_seconds", "wall_seconds")}},
        "results": results}, indent=1))
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
