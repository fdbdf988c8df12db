"""How the extractive heads carry from one kind of data to another (one command).

    .venv/bin/python bench/generalisation_extractive.py [--no-rerank] [--out PATH]

Fits the heads three times: on HotpotQA's training data only (hotpot_retrieved_500
and its distractor setting rebuilt from it, bench/distractor_setting.py), on NQ's
only (nq_hybrid_train), and on both (the shipped heads' data), each with
the rerank head unless ``--no-rerank``, then compresses both dev files
(hotpot_distractor_dev100, nq_hybrid_dev) at 150/300/600 tokens with each
(``--no-rerank``: the cheap heads alone, the committed heads' configuration; NQ
alone has no question with two gold documents, so its pair head is neutral). The
rows where the training and dev data differ are the leave-one-dataset-out
figures: how the method does on a kind of data it was never trained on. The dev
files are only reported on here, never chosen on. Writes
bench/results/generalisation_extractive.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TRAIN = {"hotpotqa": ("hotpotqa/hotpot_retrieved_500.jsonl", "derived:hotpot_train_distractor"),
         "nq": ("nq/nq_hybrid_train.jsonl",)}
DEV = {"hotpotqa": "hotpotqa/hotpot_distractor_dev100.jsonl", "nq": "nq/nq_hybrid_dev.jsonl"}
SETS = {"HotpotQA only": ("hotpotqa",), "NQ only": ("nq",), "both": ("hotpotqa", "nq")}
BUDGETS = (150, 300, 600)


def evaluate(engine, heads, pairs, budgets=BUDGETS) -> dict:
    """Per budget, the figures of the extractive method with ``heads`` over ``pairs`` (line, gold)."""
    from compressors import head
    from metrics import Tally
    from middleware.types import Stage

    real_load = head.load
    head.load = lambda *a, **k: heads  # the method's factory reads the heads through load()
    try:
        tallies = {b: Tally() for b in budgets}
        for line, gold in pairs:
            for b, tally in tallies.items():
                res = engine.compress(line["query"], line["documents"], b, pipeline=[Stage("extractive", {})])
                tally.add(gold, res.context, res.compressed_tokens)
                assert res.compressed_tokens <= b
    finally:
        head.load = real_load
    return {str(b): t.summary() for b, t in tallies.items()}


def main() -> None:
    from compressors import head
    from hotpot_to_batch import convert, read_rows, resolve
    from middleware.library import Ragpress
    from train_extractive_head import build_items, fit, training_files

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "results" / "generalisation_extractive.json"))
    ap.add_argument("--no-rerank", action="store_true",
                    help="the cheap heads alone (as the committed heads), no transformer rerank head")
    args = ap.parse_args()
    engine = Ragpress()
    dense = None if args.no_rerank else engine.models.onnx_embedder().embed
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    files = {k: training_files(names) for k, names in TRAIN.items()}
    items = build_items([f for k in ("hotpotqa", "nq") for f in files[k]], engine, log=log)
    source = {k: {f.name for f in fs} for k, fs in files.items()}
    dev = {k: [convert(r, None) for r in read_rows(resolve(v))] for k, v in DEV.items()}
    results = {}
    for name, kinds in SETS.items():
        chosen = [it for it in items if any(it.source in source[k] for k in kinds)]
        heads = head.from_spec(fit(chosen, log=lambda *a: None, dense=dense))
        results[name] = {k: evaluate(engine, heads, pairs) for k, pairs in dev.items()}
        log(f"{name} done: " + json.dumps(results[name]))
        # Each set is written as it finishes: a run stopped early keeps what it measured.
        Path(args.out).write_text(json.dumps({"train": TRAIN, "dev": DEV, "rerank": not args.no_rerank,
                                              "results": results}, indent=2))
    print("| heads trained on | dev file | budget | SF recall | answer kept |")
    print("|---|---|---|---|---|")
    for name, per in results.items():
        for k, by_budget in per.items():
            for b, s in by_budget.items():
                print(f"| {name} | {Path(DEV[k]).name} | {b} | {s['sf_recall']:.3f} | {s['answer_kept']:.3f} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
