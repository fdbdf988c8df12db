"""Chooses the extractive method's default min_probability on the training data's validation split.

    .venv/bin/python bench/train_extractive_head.py --holdout --out /tmp/holdout_head.json
    .venv/bin/python bench/tune_extractive_thresholds.py /tmp/holdout_head.json

Runs the method with heads fitted WITHOUT the validation split (fold 0 of the
training files: hotpot_retrieved_500.jsonl and nq_hybrid_train.jsonl under
RAGPRESS_DATA) over that split's questions, at 150/300/600 tokens
and several thresholds, and prints supporting-fact recall, answer kept and
tokens used. The default is the knee: the largest threshold whose recall at 600
tokens is within 0.005 of the best. The dev files are not read.
(bench/crossval_extractive.py --grid min_probability=... does the same over all
five folds.)
Writes bench/results/extractive_thresholds.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
THRESHOLDS = (0.02, 0.01, 0.005, 0.002, 0.001, 0.0)


def main() -> None:
    from compressors import head
    from hotpot_to_batch import convert, fold, read_rows, resolve
    from train_extractive_head import TRAINING_FILES, training_files
    from metrics import Tally
    from middleware.library import Ragpress
    from middleware.types import Stage

    held = head.load(Path(sys.argv[1]))
    head.load = lambda *a, **k: held  # the method's factory reads the heads through load()
    engine = Ragpress()
    rows = [r for f in training_files(TRAINING_FILES) for r in read_rows(f)]
    pairs = [convert(r, None) for r in rows if r.get("context") and fold(r["id"]) == 0]
    results = {}
    print(f"{len(pairs)} validation questions")
    print("| min_probability | budget | SF recall | answer kept | tokens |")
    print("|---|---|---|---|---|")
    for threshold in THRESHOLDS:
        for budget in (150, 300, 600):
            tally = Tally()
            for line, gold in pairs:
                res = engine.compress(line["query"], line["documents"], budget,
                                      pipeline=[Stage("extractive", {"min_probability": threshold})])
                tally.add(gold, res.context, res.compressed_tokens)
            row = tally.summary()
            results.setdefault(str(threshold), {})[str(budget)] = row
            print(f"| {threshold} | {budget} | {row['sf_recall']:.3f} | {row['answer_kept']:.3f} | {row['tokens']:.0f} |")
    best = max(r["600"]["sf_recall"] for r in results.values())
    knee = max(t for t in THRESHOLDS if results[str(t)]["600"]["sf_recall"] >= best - 0.005)
    print(f"\nknee: min_probability = {knee}")
    out = HERE / "results" / "extractive_thresholds.json"
    out.write_text(json.dumps({"validation_questions": len(pairs), "knee": knee, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
