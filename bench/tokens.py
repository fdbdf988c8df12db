"""Token-level compression benchmark (one command): ``tokens`` and ``tokens-lite`` against
``extractive`` alone at the same token counts, and against LongLLMLingua.

    .venv/bin/python bench/tokens.py                         # HotpotQA dev100 + NQ dev, 1/2, 1/4, 1/8
    .venv/bin/python bench/tokens.py --data nq/nq_hybrid_train.jsonl --limit 50 --options '{"coarse_ratio": 3}'

For every data file (``--data``, paths or names under RAGPRESS_DATA; rows in the
HotpotQA shape, NQ's ``answers`` honoured) and every ratio, each question's budget
is that share of its own original context (o200k tokens, gpt-4o). Per method:
answer kept (normalised answer string in the output; yes/no answers skipped), mean
tokens and fill (output / budget), outputs over budget, outputs with a corrupted
number (a number that is not verbatim in the input) or a word that is not an input
word in order, and latency per question: wall time and CPU time (one torch thread),
medians. Then the first 30 HotpotQA dev questions at 150/300/600 tokens against the
LongLLMLingua outputs recorded by bench/baselines/run_longllmlingua.py
(bench/results/longllmlingua_<budget>.jsonl, same 30 questions, same budgets).
Writes bench/results/tokens.json (a run with --limit, --data, --options or
--methods writes tokens_<tag>.json instead, never the full results).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from datapaths import read_rows, resolve  # noqa: E402
from hotpot_to_batch import convert  # noqa: E402
from metrics import answer_kept  # noqa: E402

DEFAULT_DATA = ["hotpotqa/hotpot_distractor_dev100.jsonl", "nq/nq_hybrid_dev.jsonl"]
DEFAULT_METHODS = ["extractive", "tokens", "tokens-lite"]
LLL_BUDGETS = [150, 300, 600]
NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")


def kept_any(answers: list[str], text: str) -> bool | None:
    votes = [answer_kept(a, text) for a in answers]
    votes = [v for v in votes if v is not None]
    return any(votes) if votes else None


def corrupted_numbers(out: str, source: str) -> int:
    return sum(n not in source for n in NUMBER.findall(out))


def verbatim_words(out_docs, in_docs) -> bool:
    from compressors import words

    src = {d.id: d.text for d in in_docs}
    for d in out_docs:
        pieces = iter(src[d.id][a:b] for a, b in words.spans(src[d.id]))
        if not all(any(p == w for p in pieces) for w in (d.text[a:b] for a, b in words.spans(d.text))):
            return False
    return True


def load(name: str, limit: int | None):
    out = []
    for row in read_rows(resolve(name), limit):
        line, gold = convert(row, None)
        gold["answers"] = row.get("answers") or [row.get("answer", "")]
        out.append((line, gold))
    return out


def run(engine, method, options, budget_of, pairs):
    """One method over the questions; ``budget_of(line, original_tokens)`` gives each budget."""
    from middleware.types import Budget, Stage

    engine.clear_caches()  # every run sees its texts for the first time
    rows = []
    for line, gold in pairs:
        req = engine.request(line["query"], line["documents"], Budget(max_tokens=1), pipeline=[Stage(method, options)])
        tok = engine.models.tokenizers.get(req.model)
        from compressors import context

        source = context.assemble(req.documents, req.context_format)
        original = tok.count(source)
        budget = budget_of(line, original)
        req = engine.request(line["query"], line["documents"], Budget(max_tokens=budget), pipeline=[Stage(method, options)])
        wall, cpu = time.perf_counter(), time.process_time()
        res = engine.pipeline.compress(req)
        wall, cpu = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
        rows.append({"id": line["id"], "answer": kept_any(gold["answers"], res.context), "budget": budget,
                     "original": original, "tokens": res.compressed_tokens,
                     "corrupted": corrupted_numbers(res.context, source),
                     "verbatim": verbatim_words(res.documents, req.documents), "wall_ms": round(wall, 1),
                     "cpu_ms": round(cpu, 1), "word_step": _word_step(res, budget)})
    return rows


def _word_step(res, budget: int) -> bool:
    """Did a word step have more than the budget to prune (so that its fill is its own doing)?"""
    steps = dict(res.stages[0].details).get("stages") or []
    return bool(steps) and steps[-1]["input_tokens"] > budget


def summarise(rows):
    answers = [r["answer"] for r in rows if r["answer"] is not None]
    fills = [r["tokens"] / r["budget"] for r in rows if r["original"] > r["budget"]]
    pruned = sorted(r["tokens"] / r["budget"] for r in rows if r.get("word_step"))
    return {"questions": len(rows), "answer_kept": statistics.fmean(answers) if answers else None,
            "answer_questions": len(answers), "mean_tokens": statistics.fmean(r["tokens"] for r in rows),
            "mean_budget": statistics.fmean(r["budget"] for r in rows),
            "mean_fill": statistics.fmean(fills) if fills else None,
            "fill_p10": sorted(fills)[len(fills) // 10] if fills else None,
            "word_step_outputs": len(pruned), "word_step_min_fill": pruned[0] if pruned else None,
            "over_budget": sum(r["tokens"] > r["budget"] for r in rows),
            "corrupted_numbers": sum(r["corrupted"] > 0 for r in rows),
            "not_verbatim": sum(not r["verbatim"] for r in rows),
            "p50_wall_ms": statistics.median(r["wall_ms"] for r in rows),
            "p50_cpu_ms": statistics.median(r["cpu_ms"] for r in rows)}


def longllmlingua(budget: int, golds: dict, sources: dict):
    path = HERE / "results" / f"longllmlingua_{budget}.jsonl"
    if not path.exists():
        return None
    rows = []
    for rec in read_rows(path):
        if rec["id"] in golds:
            rows.append({"id": rec["id"], "answer": kept_any(golds[rec["id"]]["answers"], rec["context"]),
                         "budget": budget, "original": rec["original_tokens"], "tokens": rec["compressed_tokens"],
                         "corrupted": corrupted_numbers(rec["context"], sources[rec["id"]]), "verbatim": None,
                         "wall_ms": rec["latency_ms"], "cpu_ms": rec["cpu_ms"]})
    return rows


_ENGINE = None


def engine_for(args):
    """One engine per process, warmed on two questions for every method (lazy imports, the LM load)."""
    global _ENGINE
    if _ENGINE is None:
        from middleware.library import Ragpress
        from middleware.settings import Settings

        _ENGINE = Ragpress(Settings(local_device="cpu", local_threads=args.threads))
        _ENGINE.warm_up()
        warm = load(args.data[0], 2)
        for m in args.methods:
            run(_ENGINE, m, method_options(args, m), lambda line, n: max(1, n // 4), warm)
    return _ENGINE


def method_options(args, method):
    return json.loads(args.options) if method.startswith("tokens") else {}


def work(task):
    """One data file at every ratio, or the LongLLMLingua subset at its budgets (a worker's share)."""
    args, options, (kind, name) = task
    engine = engine_for(args)
    if kind == "data":
        pairs = load(name, args.limit)
        per: dict = {}
        for ratio in args.ratios:
            for m in args.methods:
                rows = run(engine, m, method_options(args, m), lambda line, n, r=ratio: max(1, int(n * r)), pairs)
                per.setdefault(m, {})[str(ratio)] = {"summary": summarise(rows), "rows": rows}
                print(f"{name} {m} 1/{1 / ratio:g}: {summarise(rows)}", file=sys.stderr, flush=True)
        return per
    pairs = load(DEFAULT_DATA[0], min(30, args.limit or 30))
    golds = {line["id"]: gold for line, gold in pairs}
    sources = {line["id"]: "\n\n".join(f"{d['title']}\n{d['text']}" for d in line["documents"]) for line, _ in pairs}
    out: dict = {}
    for budget in LLL_BUDGETS:
        lll = longllmlingua(budget, golds, sources)
        if lll is None:
            continue
        entry = out.setdefault(str(budget), {"longllmlingua": summarise(lll)})
        for m in args.methods:
            rows = run(engine, m, method_options(args, m), lambda line, n, b=budget: b, pairs)
            entry[m] = summarise(rows)
            print(f"subset30 {m} {budget}: {entry[m]}", file=sys.stderr, flush=True)
    return out


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(title, results):
    print(f"\n{title}")
    print("| method | budget | answer kept | tokens (budget) | fill | over | corrupted numbers | not verbatim | p50 wall ms | p50 CPU ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (method, budget), s in results:
        print(f"| {method} | {budget} | {fmt(s['answer_kept'], '.3f')} ({s['answer_questions']}) | {s['mean_tokens']:.0f} "
              f"({s['mean_budget']:.0f}) | {fmt(s['mean_fill'], '.3f')} | {s['over_budget']} | {s['corrupted_numbers']} | "
              f"{s['not_verbatim'] if s.get('not_verbatim') is not None else '-'} | {s['p50_wall_ms']:,.0f} | {s['p50_cpu_ms']:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.5, 0.25, 0.125])
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    ap.add_argument("--options", default="{}", help="JSON options for tokens and tokens-lite")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-longllmlingua", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fair against LongLLMLingua's run)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (data files and the LongLLMLingua subset "
                    "are shared out; each worker loads its own models)")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    options = json.loads(args.options)
    default = (args.data == DEFAULT_DATA and not args.limit and not options and args.methods == DEFAULT_METHODS)
    tag = args.tag or ("" if default else "subset")
    out_path = HERE / "results" / (f"tokens_{tag}.json" if tag else "tokens.json")

    results: dict = {"methods": args.methods, "options": options, "ratios": args.ratios, "threads": args.threads,
                     "jobs": args.jobs, "loadavg_start": os.getloadavg(), "data": {}, "longllmlingua": {}}
    tasks = [("data", name) for name in args.data] + ([] if args.no_longllmlingua else [("longllmlingua", "")])
    if args.jobs > 1:
        import concurrent.futures as cf
        import multiprocessing

        with cf.ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(work, [(args, options, t) for t in tasks]))
    else:
        done = [work((args, options, t)) for t in tasks]
    for (kind, name), value in zip(tasks, done):
        if kind == "data":
            results["data"][name] = value
        else:
            results["longllmlingua"] = value
    results["loadavg_end"] = os.getloadavg()

    for name, per in results["data"].items():
        table(f"{name} (budget = share of each question's own context)",
              [((m, f"1/{1 / float(r):g}"), v["summary"]) for r in map(str, args.ratios) for m, by in per.items()
               for rr, v in by.items() if rr == r])
    if results["longllmlingua"]:
        table("First 30 HotpotQA dev questions, against LongLLMLingua's recorded outputs",
              [((m, b), s) for b, entry in results["longllmlingua"].items() for m, s in entry.items()])
        print("\nspeed (LongLLMLingua p50 / ours p50), wall and CPU:")
        for b, entry in results["longllmlingua"].items():
            lll = entry["longllmlingua"]
            for m in args.methods:
                print(f"  {b} {m}: wall {lll['p50_wall_ms'] / entry[m]['p50_wall_ms']:.1f}x, "
                      f"CPU {lll['p50_cpu_ms'] / entry[m]['p50_cpu_ms']:.1f}x")
    print(f"\nload average: start {results['loadavg_start']}, end {results['loadavg_end']}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
