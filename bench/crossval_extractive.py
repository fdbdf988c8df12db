"""End-to-end cross-validation of the extractive method on its training data.

    .venv/bin/python bench/crossval_extractive.py [--data FILE ...] [--option NAME=VALUE ...]

The questions of the training files (``--data``, repeatable; by default those of
bench/train_extractive_head.py: hotpot_retrieved_500 and nq_hybrid_train) fall
into 5 folds by the SHA-1 of their id. For each fold, the heads are fitted
without it (its questions are not seen at all, not even to choose a head's
kind), then that fold's questions are compressed at 150/300/600 tokens. Every
question is thus judged by heads that never saw it: the yardstick for choosing
options and features without touching the dev files. Prints, per file,
supporting-fact recall (for NQ: the gold passage kept whole), answer kept (also
over the questions whose full context holds an answer at all) and tokens, and
writes bench/results/crossval_extractive.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BUDGETS = (150, 300, 600)


def parse_option(text: str):
    name, _, value = text.partition("=")
    return name, json.loads(value)


def crossvalidate(items, engine, variants: list[dict], fit, log=print, dense=None,
                  cheap_sources: set[str] | None = None, lead_words: int | None = None, reading=None,
                  kept: list[dict] | None = None) -> list[dict]:
    """For each option set in ``variants``: per source file and budget, the figures of the questions of
    ``items`` judged by heads fitted without their fold (with a rerank head when ``dense``, the real
    embedder, is given, reading the documents ``reading`` chooses, or exactly the first variant's
    ``rerank_documents`` where it names them). The heads are fitted once per fold and shared by the variants.
    With ``kept`` (a list with one dict per variant), also whether each question kept its answer:
    source -> budget -> question id -> bool (yes/no answers left out), for paired comparisons."""
    from compressors import head, rerank
    from metrics import Tally
    from middleware.types import Stage

    tallies: list[dict] = [{} for _ in variants]
    real_load = head.load
    if variants[0].get("rerank_documents") is not None:
        reading = rerank.Reading(variants[0]["rerank_documents"])
    for held_out in sorted({it.fold for it in items}):
        spec = fit([it for it in items if it.fold != held_out], log=lambda *a: None, dense=dense,
                   reading=reading, cheap_sources=cheap_sources,
                   lead_words=lead_words)
        heads = head.from_spec(spec)
        head.load = lambda *a, **k: heads  # the method's factory reads the heads through load()
        try:
            for it in items:
                if it.fold != held_out:
                    continue
                docs, gold = it.request
                full = "\n".join(d["text"] for d in docs)
                for v, (options, per) in enumerate(zip(variants, tallies)):
                    for budget in BUDGETS:
                        res = engine.compress(it.ctx.job.query, docs, budget,
                                              pipeline=[Stage("extractive", options)])
                        answer = per.setdefault(it.source, {}).setdefault(budget, Tally()).add(
                            gold, res.context, res.compressed_tokens, full)
                        if kept is not None and answer is not None:
                            kept[v].setdefault(it.source, {}).setdefault(str(budget), {})[str(gold["id"])] = answer
        finally:
            head.load = real_load
        log(f"fold {held_out} done")
    return [{src: {str(b): t.summary() for b, t in by_budget.items()} for src, by_budget in per.items()}
            for per in tallies]


def parse_grid(text: str):
    name, _, values = text.partition("=")
    return name, [json.loads(v) for v in values.split(",")]


def main() -> None:
    from hotpot_to_batch import resolve
    from middleware.library import Ragpress
    import train_extractive_head
    from train_extractive_head import (TRAINING_FILES, add_bags_argument, add_reading_arguments, build_items, fit,
                                       reading_of, training_files)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None, help="a training file (repeatable)")
    ap.add_argument("--option", action="append", default=[], type=parse_option)
    ap.add_argument("--grid", type=parse_grid, default=None,
                    help="NAME=V1,V2,...: one run per value of one option, on the same fitted heads")
    ap.add_argument("--out", default=str(HERE / "results" / "crossval_extractive.json"))
    ap.add_argument("--no-rerank", action="store_true", help="the cheap heads alone (no transformer pass)")
    ap.add_argument("--lead-words", type=int, default=None,
                    help="words of each candidate document the transformer reads (default: compressors/rerank.py)")
    ap.add_argument("--cheap-data", action="append", default=None,
                    help="fit the cheap heads on this training file only (repeatable; the rerank head on all)")
    add_reading_arguments(ap)
    add_bags_argument(ap)
    ap.add_argument("--per-question", action="store_true",
                    help="also write whether each question kept its answer (for bench/paired_extractive.py --crossval)")
    args = ap.parse_args()
    train_extractive_head.BAGS = args.bags

    engine = Ragpress()
    files = training_files(args.data or TRAINING_FILES)
    items = build_items(files, engine, log=lambda m: print(m, file=sys.stderr))
    options = dict(args.option)
    if args.no_rerank:
        options["rerank_documents"] = 0
    variants = [dict(options, **{args.grid[0]: v}) for v in args.grid[1]] if args.grid else [options]
    dense = None if args.no_rerank else engine.models.onnx_embedder().embed
    cheap = {resolve(d).name for d in args.cheap_data} if args.cheap_data else None
    reading = reading_of(args)
    kept = [{} for _ in variants] if args.per_question else None
    summaries = crossvalidate(items, engine, variants, fit, log=lambda m: print(m, file=sys.stderr), dense=dense,
                              cheap_sources=cheap, lead_words=args.lead_words, reading=reading, kept=kept)
    print(f"trained on {[f.name for f in files]}")
    print("| options | file | budget | SF recall | answer kept | answer kept where the context has it | tokens |")
    print("|---|---|---|---|---|---|---|")
    for opts, summary in zip(variants, summaries):
        for src, per in summary.items():
            for b, s in per.items():
                print(f"| {opts or 'default'} | {src} | {b} | {s['sf_recall']:.3f} | "
                      f"{s['answer_kept']:.3f} ({s['answer_questions']}) | "
                      f"{s['answer_kept_reachable']:.3f} ({s['reachable_questions']}) | {s['tokens']:.0f} |")
    Path(args.out).write_text(json.dumps({"trained_on": [f.name for f in files], "cheap_heads_on": sorted(cheap or []),
                                          "rerank": dense is not None, "lead_words": args.lead_words, "bags": args.bags,
                                          "reading": vars(reading), "runs": [
        {"options": o, "results": r, **({"kept": kept[i]} if kept else {})}
        for i, (o, r) in enumerate(zip(variants, summaries))]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
