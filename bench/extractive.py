"""Extractive compression benchmark (one command), on any file of question rows.

    .venv/bin/python bench/extractive.py                       # all methods, budgets 150/300/600
    .venv/bin/python bench/extractive.py --methods extractive bm25 --limit 20
    .venv/bin/python bench/extractive.py --data nq/nq_hybrid_dev.jsonl --data my_rows.jsonl

For each data file (``--data``, repeatable: a path, or a path under RAGPRESS_DATA,
default ../shared/data; by default hotpotqa/hotpot_distractor_dev100.jsonl and
nq/nq_hybrid_dev.jsonl), each registered method (and `extractive-fast`: `extractive`
with its `fast` heads, no MiniLM pass) and budget: supporting-fact
recall (for one-passage rows such as NQ's: the gold passage kept whole), answer
kept (any accepted answer, normalised), compression ratio, latency p50/p95
(in-process, warm) and outputs over budget (o200k tokens, gpt-4o). Rows are in
the HotpotQA row format (shared/data/README.md). LongLLMLingua figures are read from bench/results/longllmlingua_<budget>.jsonl
(made by bench/baselines/run_longllmlingua.py on a fixed 30-question subset) and
scored the same way (on the HotpotQA dev file). Also runs the extractive method
through a real gRPC server (--no-grpc skips it), over hotpot_retrieved_500.jsonl
(robustness, answer kept; --no-retrieved) and on requests of 10 to 200 documents
(latency; --no-scaling). Prints a table per file and writes
bench/results/extractive.json (with --limit: extractive_limit<N>.json, unless --out;
while it runs, what it has measured so far is in the same name with .partial.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DEFAULT_DATA = ["hotpotqa/hotpot_distractor_dev100.jsonl", "nq/nq_hybrid_dev.jsonl"]
DEFAULT_METHODS = ["extractive", "extractive-fast", "random", "first", "bm25", "cosine", "embeddings-filter"]
# Benchmark names for a method with options: ``extractive`` with its ``fast`` heads (no MiniLM pass).
VARIANTS = {"extractive-fast": ("extractive", {"heads": "fast"})}
LLMLINGUA_DATA = "hotpot_distractor_dev100.jsonl"  # the file LongLLMLingua's outputs were made from

from hotpot_to_batch import convert, data_path, read_rows, resolve  # noqa: E402
from metrics import answer_kept, answers, percentile, supporting_recall  # noqa: E402


def load(path: Path, limit: int | None):
    rows = read_rows(path)
    return [convert(r, None) for r in (rows[:limit] if limit else rows)]


def pct(values, q):
    return percentile(values, q, empty=float("nan"))


def summarise(rows):
    recalls = [r["recall"] for r in rows if r["recall"] is not None]
    answers = [r["answer"] for r in rows if r["answer"] is not None]
    ratios = [r["original"] / r["compressed"] for r in rows if r["compressed"]]
    lat = [r["latency_ms"] for r in rows]
    return {
        "questions": len(rows),
        "sf_recall": statistics.fmean(recalls) if recalls else None,
        "answer_kept": statistics.fmean(answers) if answers else None,
        "answer_questions": len(answers),
        "ratio": sum(r["original"] for r in rows) / max(1, sum(r["compressed"] for r in rows)),
        "mean_ratio": statistics.fmean(ratios) if ratios else None,
        "mean_tokens": statistics.fmean(r["compressed"] for r in rows) if rows else 0,
        "p50_ms": pct(lat, 0.5),
        "p95_ms": pct(lat, 0.95),
        "over_budget": sum(r["compressed"] > r["budget"] for r in rows),
        "errors": sum(bool(r.get("error")) for r in rows),
    }


def run_method(engine, method, budget, pairs):
    from middleware.errors import RagpressError

    from middleware.types import Stage

    engine.clear_caches()  # every run sees its texts for the first time
    rows = []
    for line, gold in pairs:
        if method in VARIANTS:
            name, options = VARIANTS[method]
            req = engine.request(line["query"], line["documents"], budget, pipeline=[Stage(name, options)])
        else:
            req = engine.request(line["query"], line["documents"], budget, method=method)
        started = time.perf_counter()
        try:
            res = engine.pipeline.compress(req)
            error = None
        except RagpressError as exc:
            res, error = None, str(exc)
        ms = (time.perf_counter() - started) * 1000
        ctx = res.context if res else ""
        rows.append({"id": line["id"], "recall": supporting_recall(gold, ctx) if gold["supporting_facts"] else None,
                     "answer": answer_kept(answers(gold), ctx), "original": res.original_tokens if res else 0,
                     "compressed": res.compressed_tokens if res else 0, "budget": budget,
                     "latency_ms": ms, "error": error})
    return rows


def run_grpc(engine, method, budget, pairs):
    """Same requests through a real server on loopback (client-observed latency)."""
    from middleware.client import AsyncRagpressClient
    from middleware.server import start

    async def go():
        settings = engine.settings.replace(port=0, warm_up=False)
        running = await start(settings, engine)
        await running.ready
        lat = []
        async with AsyncRagpressClient(f"127.0.0.1:{running.port}") as client:
            for line, _ in pairs[:3]:
                await client.compress(line["query"], line["documents"], budget, method=method)
            engine.clear_caches()
            for line, _ in pairs:
                started = time.perf_counter()
                await client.compress(line["query"], line["documents"], budget, method=method)
                lat.append((time.perf_counter() - started) * 1000)
        await running.stop(grace=1)
        return lat

    return asyncio.run(go())


def run_scaling(engine, counts=(10, 50, 100, 200), questions=20):
    """Latency of extractive@300 as requests grow: a question's own paragraphs, then others'."""
    rows = [r for r in read_rows(data_path("hotpotqa", "hotpot_retrieved_500.jsonl")) if r.get("context")]
    pool = [{"title": title, "text": " ".join(s.strip() for s in sents)} for r in rows for title, sents in r["context"]]
    out = {}
    for n in counts:
        engine.clear_caches()
        lat = []
        for k, row in enumerate(rows[:questions]):
            own = convert(row, None)[0]["documents"]
            docs = own + pool[(k + 1) * 200:(k + 1) * 200 + max(0, n - len(own))]
            docs = [dict(d, id=f"d{i}") for i, d in enumerate(docs)]
            req = engine.request(row["question"], docs, 300, method="extractive")
            started = time.perf_counter()
            engine.pipeline.compress(req)
            lat.append((time.perf_counter() - started) * 1000)
        out[str(n)] = {"p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95)}
    return out


def score_external(path: Path, golds: dict, budget: int):
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        gold = golds.get(rec["id"])
        if gold is None:  # outside --limit
            continue
        rows.append({"id": rec["id"], "recall": supporting_recall(gold, rec["context"]),
                     "answer": answer_kept(answers(gold), rec["context"]), "original": rec["original_tokens"],
                     "compressed": rec["compressed_tokens"], "budget": budget, "latency_ms": rec["latency_ms"]})
    return rows


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(name: str, methods: dict) -> None:
    print(f"\n{name}")
    print("| method | budget | SF recall | answer kept | ratio | p50 ms | p95 ms | over budget |")
    print("|---|---|---|---|---|---|---|---|")
    for method, per in methods.items():
        for budget, s in per.items():
            print(f"| {method} | {budget} | {fmt(s['sf_recall'], '.3f')} | {fmt(s['answer_kept'], '.3f')} | "
                  f"{s['ratio']:.2f}x | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['over_budget']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None, help="a file of question rows (repeatable)")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    ap.add_argument("--budgets", nargs="+", type=int, default=[150, 300, 600])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-grpc", action="store_true")
    ap.add_argument("--no-retrieved", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--onnx-threads", type=int, default=None,
                    help="ONNX Runtime threads of the int8 MiniLM (setting onnx_threads; default: the setting's)")
    args = ap.parse_args()
    # A subset never overwrites the full results.
    out = Path(args.out) if args.out else HERE / "results" / (
        f"extractive_limit{args.limit}.json" if args.limit else "extractive.json")
    partial = out.with_suffix(".partial.json")

    from middleware.library import Ragpress
    from middleware.settings import Settings

    files = [resolve(d) for d in (args.data or DEFAULT_DATA)]
    engine = Ragpress(Settings(onnx_threads=args.onnx_threads) if args.onnx_threads else Settings())
    engine.warm_up()
    results = {"model": "gpt-4o", "machine": platform.processor() or platform.machine(),
               "onnx_threads": engine.settings.onnx_threads,
               "load_average": list(os.getloadavg()), "files": {}}
    first_pairs = None
    for path in files:
        pairs = load(path, args.limit)
        first_pairs = first_pairs or pairs
        per_file = results["files"].setdefault(path.name, {"questions": len(pairs), "methods": {}, "subset30": {}})
        for method in args.methods:
            run_method(engine, method, 300, pairs[:3])  # warm caches and lazy imports
            for budget in args.budgets:
                rows = run_method(engine, method, budget, pairs)
                per_file["methods"].setdefault(method, {})[str(budget)] = summarise(rows)
                sub = [r for r in rows if r["id"] in {line["id"] for line, _ in pairs[:30]}]
                per_file["subset30"].setdefault(method, {})[str(budget)] = summarise(sub)
                print(f"{path.name} {method:>18} {budget:>4}: {per_file['methods'][method][str(budget)]}",
                      file=sys.stderr)
                # Saved as it goes, beside the results: a run stopped early keeps what it measured
                # without replacing the last complete results.
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps(dict(results, partial=True), indent=2))
        if path.name == LLMLINGUA_DATA:
            golds = {line["id"]: gold for line, gold in pairs}
            for budget in args.budgets:
                ext = HERE / "results" / f"longllmlingua_{budget}.jsonl"
                if ext.exists():
                    per_file.setdefault("longllmlingua", {})[str(budget)] = summarise(
                        score_external(ext, golds, budget))
    if not args.no_grpc and "extractive" in args.methods:
        lat = run_grpc(engine, "extractive", 300, first_pairs)
        results["grpc_extractive_300"] = {"data": files[0].name, "p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95)}
    if not args.no_scaling and "extractive" in args.methods:
        results["scaling_extractive_300"] = run_scaling(engine)
    if not args.no_retrieved and "extractive" in args.methods:
        rpairs = load(data_path("hotpotqa", "hotpot_retrieved_500.jsonl"), None)
        rows = run_method(engine, "extractive", 300, rpairs)
        results["retrieved500_extractive_300"] = summarise(rows)
    results["load_average_end"] = list(os.getloadavg())

    for name, per_file in results["files"].items():
        print_table(f"{name} ({per_file['questions']} questions)", per_file["methods"])
        if per_file.get("longllmlingua"):
            print("\nFirst 30 questions (LongLLMLingua's subset):")
            print("| method | budget | SF recall | answer kept | ratio | p50 ms | over budget |")
            print("|---|---|---|---|---|---|---|")
            rows = [(m, per_file["subset30"].get(m, {})) for m in ("extractive", "bm25")]
            for method, per in rows + [("longllmlingua", per_file["longllmlingua"])]:
                for budget, s in per.items():
                    print(f"| {method} | {budget} | {fmt(s['sf_recall'], '.3f')} | {fmt(s['answer_kept'], '.3f')} | "
                          f"{s['ratio']:.2f}x | {s['p50_ms']:.1f} | {s['over_budget']} |")
    if "grpc_extractive_300" in results:
        g = results["grpc_extractive_300"]
        print(f"\nextractive@300 through gRPC on loopback ({g['data']}): p50 {g['p50_ms']:.1f} ms, "
              f"p95 {g['p95_ms']:.1f} ms")
    if "scaling_extractive_300" in results:
        print("\nextractive@300 by documents per request (p50 / p95 ms): " + ", ".join(
            f"{n}: {v['p50_ms']:.1f} / {v['p95_ms']:.1f}" for n, v in results["scaling_extractive_300"].items()))
    if "retrieved500_extractive_300" in results:
        r = results["retrieved500_extractive_300"]
        print(f"hotpot_retrieved_500, extractive@300: {r['questions']} questions, {r['errors']} errors, "
              f"answer kept {fmt(r['answer_kept'], '.3f')}, over budget {r['over_budget']}")
    print(f"load average (1, 5, 15 min) at start {results['load_average']}, at end {results['load_average_end']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    partial.unlink(missing_ok=True)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
