"""Abstractive compression against extractive at the same budgets, in one run (one command).

    nice -n 10 .venv/bin/python bench/abstractive.py                        # dev100 and NQ dev, 100/150/300
    nice -n 10 .venv/bin/python bench/abstractive.py --data hotpotqa/hotpot_distractor_dev100.jsonl --limit 5

For every data file (HotpotQA row format: question, answer or answers, context,
supporting_facts; a relative path is read under $RAGPRESS_DATA, default
../shared/data beside the repository) and every budget it runs, question by question:

- ``extractive`` at the budget;
- the pipeline ``extractive`` to ``--read-tokens`` (300) then ``abstractive`` at the budget
  (the local summariser unless ``--summarizer`` names a litellm model).

and reports: answer kept (any accepted answer, normalised; yes/no answers skipped),
supporting-document coverage (share of the gold supporting documents the output
keeps or, for a summary, names in its attribution, by id: comparable between a
summary and a selection), verbatim
supporting-fact recall (selection only means something there), tokens and outputs
over budget, the guard's outcomes (passed / repaired / replaced by extractive /
empty) and fallbacks, an independent re-check of every returned sentence against
the documents (unsupported numbers, dates, names: the target is 0), latency per
question (the whole request and the summariser's stage, p50/p95), and the
summariser's own cost (its tokens; dollars from litellm's map, or its compute time
at ``compute_usd_per_hour`` for the local model). Finally it repeats ``--repeat``
requests to time the summary cache. Load average is recorded beside the latencies.

Writes bench/results/abstractive.json; a run with --limit or other budgets writes
bench/results/abstractive_<tag>.json and never overwrites the full results.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hotpot_to_batch import convert  # noqa: E402
from metrics import normalise, percentile, supporting_recall  # noqa: E402

DEFAULT_DATA = ["hotpotqa/hotpot_distractor_dev100.jsonl", "nq/nq_hybrid_dev.jsonl"]
DEFAULT_BUDGETS = [100, 150, 300]


def data_root() -> Path:
    root = Path(os.environ.get("RAGPRESS_DATA", HERE.parent.parent / "shared" / "data"))
    if not root.is_dir():
        raise SystemExit(f"data folder {root} not found: set RAGPRESS_DATA to the folder holding hotpotqa/ and nq/")
    return root


def load(path: str, limit: int | None) -> list[tuple[dict, dict]]:
    file = Path(path) if Path(path).is_absolute() or Path(path).is_file() else data_root() / path
    if not file.is_file():
        raise SystemExit(f"no data file {file} (relative paths are read under RAGPRESS_DATA)")
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for row in rows[:limit] if limit else rows:
        line, gold = convert(row, None)
        gold["answers"] = [a for a in (row.get("answers") or [row.get("answer", "")]) if a]
        out.append((line, gold))
    return out


def answer_kept(gold: dict, text: str) -> bool | None:
    answers = [normalise(a) for a in gold["answers"]]
    answers = [a for a in answers if a and a not in ("yes", "no")]
    if not answers:
        return None
    ctx = f" {normalise(text)} "
    return any(f" {a} " in ctx for a in answers)


def doc_coverage(gold: dict, line: dict, kept_ids: set[str]) -> float | None:
    titles = {t for t, _ in gold["supporting_facts"]}
    ids = {d["id"] for d in line["documents"] if d["title"] in titles}
    return len(ids & kept_ids) / len(ids) if ids else None


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def recheck(result, line) -> list[dict]:
    """Facts in the returned context that the input documents do not state (the target is none)."""
    from compressors import faithfulness, units

    source = faithfulness.index(f"{d['title']}\n{d['text']}" for d in line["documents"])
    bad = []
    for doc in result.documents:
        for span in units.split(doc.text):
            verdict = faithfulness.check(doc.text[span.start:span.end], source)
            bad += [{"kind": f.kind, "text": f.text} for f in verdict.unsupported]
    return bad


def run_one(engine, pipeline, budget, line):
    from middleware.errors import RagpressError

    started = time.perf_counter()
    try:
        result = engine.compress(line["query"], line["documents"], budget, pipeline=pipeline)
        error = None
    except RagpressError as exc:
        result, error = None, f"{type(exc).__name__}: {exc}"
    return result, (time.perf_counter() - started) * 1000.0, error


def evaluate(engine, name, pipeline, budget, pairs, compute_per_hour, progress):
    rows = []
    for k, (line, gold) in enumerate(pairs):
        result, ms, error = run_one(engine, pipeline, budget, line)
        ctx = result.context if result else ""
        kept = {d.id for d in result.documents} if result else set()
        # A summary keeps the identity of every document its sentences name (attribution).
        for item in (result.stages[-1].details.get("attribution", []) if result else []):
            kept.update(item["documents"])
        row = {"id": line["id"], "answer": answer_kept(gold, ctx), "coverage": doc_coverage(gold, line, kept),
               "sf_recall": supporting_recall(gold, ctx) if gold["supporting_facts"] else None,
               "tokens": result.compressed_tokens if result else 0, "original": result.original_tokens if result else 0,
               "over_budget": bool(result and result.compressed_tokens > budget), "latency_ms": ms, "error": error}
        stage = result.stages[-1] if result else None
        if stage is not None and stage.method == "abstractive":
            d = stage.details
            row.update(stage_ms=stage.latency_ms, outcome=d.get("outcome") or ("empty" if not d.get("relevant")
                                                                                 else "?"),
                       unsupported_dropped=len(d.get("guard", {}).get("unsupported", [])),
                       fell_back=bool(d.get("fell_back")), cache=d.get("cache"),
                       summarizer_prompt=stage.usage.prompt_tokens if stage.usage else 0,
                       summarizer_completion=stage.usage.completion_tokens if stage.usage else 0,
                       summarizer_usd=(stage.usage.cost_usd if stage.usage else 0.0)
                       + stage.latency_ms / 3_600_000.0 * compute_per_hour,
                       returned_unsupported=recheck(result, line))
        rows.append(row)
        if progress:
            print(f"  {name} @{budget} {k + 1}/{len(pairs)} {ms:,.0f} ms answer {row['answer']} "
                  f"{row.get('outcome', '')}", file=sys.stderr, flush=True)
    return rows


def summarise(rows):
    out = {
        "questions": len(rows),
        "answer_kept": mean(r["answer"] for r in rows),
        "answer_questions": sum(r["answer"] is not None for r in rows),
        "doc_coverage": mean(r["coverage"] for r in rows),
        "sf_recall_verbatim": mean(r["sf_recall"] for r in rows),
        "mean_tokens": mean(r["tokens"] for r in rows),
        "over_budget": sum(r["over_budget"] for r in rows),
        "errors": sum(bool(r["error"]) for r in rows),
        "p50_ms": percentile([r["latency_ms"] for r in rows], 0.5),
        "p95_ms": percentile([r["latency_ms"] for r in rows], 0.95),
    }
    stages = [r for r in rows if "outcome" in r]
    if stages:
        outcomes = {}
        for r in stages:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
        out.update(
            outcomes=outcomes, fallbacks=sum(r["fell_back"] for r in stages),
            unsupported_facts_dropped=sum(r["unsupported_dropped"] for r in stages),
            returned_unsupported_facts=sum(len(r["returned_unsupported"]) for r in stages),
            returned_unsupported_examples=[u for r in stages for u in r["returned_unsupported"]][:10],
            stage_p50_ms=percentile([r["stage_ms"] for r in stages], 0.5),
            stage_p95_ms=percentile([r["stage_ms"] for r in stages], 0.95),
            summarizer_prompt_tokens=mean(r["summarizer_prompt"] for r in stages),
            summarizer_completion_tokens=mean(r["summarizer_completion"] for r in stages),
            summarizer_usd_per_question=mean(r["summarizer_usd"] for r in stages))
    return out


def time_cache(engine, pipeline, budget, pairs, repeat):
    """Requests already answered once, asked again: the summary cache answers them."""
    stage_ms, total_ms, hits = [], [], 0
    for line, _ in pairs[:repeat]:
        result, ms, _ = run_one(engine, pipeline, budget, line)
        if result is None:
            continue
        stage = result.stages[-1]
        hits += stage.details.get("cache") == "hit"
        stage_ms.append(stage.latency_ms)
        total_ms.append(ms)
    return {"requests": len(stage_ms), "hits": hits, "stage_p50_ms": percentile(stage_ms, 0.5),
            "stage_p95_ms": percentile(stage_ms, 0.95), "request_p50_ms": percentile(total_ms, 0.5),
            "request_p95_ms": percentile(total_ms, 0.95)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="a data file (repeatable); default: dev100 and NQ dev")
    ap.add_argument("--budgets", type=int, nargs="+", default=DEFAULT_BUDGETS)
    ap.add_argument("--limit", type=int, default=None, help="first N questions of each file (a quick check)")
    ap.add_argument("--read-tokens", type=int, default=300, help="budget of the extractive stage before the summary")
    ap.add_argument("--summarizer", default="", help="litellm model name; default: the local model")
    ap.add_argument("--options", default="{}", help="more abstractive options, JSON")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the local model (shared machine: 1)")
    ap.add_argument("--repeat", type=int, default=20, help="repeated requests that time the summary cache")
    ap.add_argument("--model", default="gpt-4o", help="target model (its tokenizer counts the budget)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    from middleware.library import Ragpress
    from middleware.settings import Settings
    from middleware.types import Budget, Stage

    settings = Settings(local_threads=args.threads, local_device="auto")
    engine = Ragpress(settings)
    engine.warm_up()
    options = {"summarizer": args.summarizer, **json.loads(args.options)}
    data = args.data or DEFAULT_DATA
    load_start = os.getloadavg()
    report = {"host": platform.node(), "python": platform.python_version(), "threads": args.threads,
              "model": args.model, "read_tokens": args.read_tokens, "options": options, "limit": args.limit,
              "budgets": args.budgets, "compute_usd_per_hour": settings.compute_usd_per_hour,
              "loadavg_start": load_start, "data": {}}
    started = time.time()
    tag = None
    if args.limit or args.budgets != DEFAULT_BUDGETS or args.data or args.summarizer or args.options != "{}":
        tag = f"limit{args.limit}" if args.limit else "custom"
    out = Path(args.out) if args.out else HERE / "results" / (f"abstractive_{tag}.json" if tag else "abstractive.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.json")
    for path in data:
        pairs = load(path, args.limit)
        per_file = {"questions": len(pairs), "budgets": {}}
        for budget in args.budgets:
            extractive = [Stage("extractive")]
            abstractive = [Stage("extractive", budget=Budget(max_tokens=args.read_tokens)),
                           Stage("abstractive", options)]
            ext = evaluate(engine, "extractive", extractive, budget, pairs, settings.compute_usd_per_hour,
                           not args.quiet)
            abs_rows = evaluate(engine, "abstractive", abstractive, budget, pairs, settings.compute_usd_per_hour,
                                not args.quiet)
            per_file["budgets"][str(budget)] = {
                "extractive": summarise(ext), f"extractive({args.read_tokens})+abstractive": summarise(abs_rows),
                "loadavg": os.getloadavg(),
                "rows": {"extractive": ext, "abstractive": abs_rows}}
            print_table(path, budget, per_file["budgets"][str(budget)])
            # A long run keeps what it has measured so far (removed when the run completes).
            report["data"][path] = per_file
            partial.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
        per_file["cache"] = time_cache(engine, abstractive, args.budgets[-1], pairs, args.repeat)
        print(f"{path}: summary cache, {per_file['cache']}")
        report["data"][path] = per_file
    report["seconds"] = time.time() - started
    report["loadavg_end"] = os.getloadavg()
    out.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    partial.unlink(missing_ok=True)
    print(f"wrote {out}")


def print_table(path, budget, block):
    print(f"\n{path} @ {budget} tokens (load average {block['loadavg'][0]:.1f})")
    print(f"{'method':34} {'answer':>7} {'doc cov':>8} {'tokens':>7} {'over':>5} {'p50 ms':>9} {'outcomes'}")
    for name, s in block.items():
        if name in ("rows", "loadavg"):
            continue
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:34} {fmt(s['answer_kept']):>7} {fmt(s['doc_coverage']):>8} {s['mean_tokens']:7.1f} "
              f"{s['over_budget']:5d} {s['p50_ms']:9,.0f} {s.get('outcomes', '')} "
              f"{'unsupported returned: ' + str(s['returned_unsupported_facts']) if 'outcomes' in s else ''}")


if __name__ == "__main__":
    main()
