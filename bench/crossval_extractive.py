"""End-to-end cross-validation of the extractive method on its own training data.

    .venv/bin/python bench/crossval_extractive.py [--option NAME=VALUE ...]

For each of the 5 folds of hotpot_retrieved_500.jsonl (by SHA-1 of the question
id, as in bench/train_extractive_head.py), trains the heads without that fold
(--holdout --fold N), then compresses that fold's questions at 150/300/600
tokens (answer kept is also given over the questions whose full context holds
the answer at all). Every question is thus judged by heads that never saw it: a far larger
validation set than fold 0 alone, for choosing options and features without
touching hotpot_distractor_dev100. Prints supporting-fact recall, answer kept and
tokens, and writes bench/results/crossval_extractive.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE.parent.parent / "shared" / "data" / "hotpotqa" / "hotpot_retrieved_500.jsonl"


def parse_option(text: str):
    name, _, value = text.partition("=")
    return name, json.loads(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--option", action="append", default=[], type=parse_option)
    ap.add_argument("--train-args", default="", help="extra arguments for train_extractive_head.py")
    ap.add_argument("--out", default=str(HERE / "results" / "crossval_extractive.json"))
    args = ap.parse_args()

    from compressors import head
    from hotpot_to_batch import convert, fold
    from metrics import Tally
    from middleware.library import Ragpress
    from middleware.types import Stage

    rows = [json.loads(l) for l in DATA.read_text(encoding="utf-8").splitlines() if l.strip()]
    rows = [r for r in rows if r.get("context")]
    options = dict(args.option)
    tallies = {b: Tally() for b in (150, 300, 600)}
    current = {}
    real_load = head.load
    head.load = lambda *a, **k: current["heads"]  # the method's factory reads the heads through load()
    engine = Ragpress()
    with tempfile.TemporaryDirectory() as tmp:
        for held_out in range(5):
            path = Path(tmp) / f"heads_{held_out}.json"
            subprocess.run([sys.executable, str(HERE / "train_extractive_head.py"), "--holdout", "--fold", str(held_out),
                            "--out", str(path), *args.train_args.split()], check=True, capture_output=True)
            current["heads"] = real_load(path)
            engine.clear_caches()
            for row in rows:
                if fold(row["id"]) != held_out:
                    continue
                line, gold = convert(row, None)
                full = "\n".join(d["text"] for d in line["documents"])
                for budget, tally in tallies.items():
                    res = engine.compress(line["query"], line["documents"], budget,
                                          pipeline=[Stage("extractive", options)])
                    tally.add(gold, res.context, res.compressed_tokens, full)
            print(f"fold {held_out} done", file=sys.stderr)
    summary = {str(b): tally.summary() for b, tally in tallies.items()}
    print(f"options {options or 'default'}, train args '{args.train_args}'")
    print("| budget | SF recall | answer kept | answer kept where the context has it | tokens |")
    print("|---|---|---|---|---|")
    for b, s in summary.items():
        print(f"| {b} | {s['sf_recall']:.3f} | {s['answer_kept']:.3f} ({s['answer_questions']}) | "
              f"{s['answer_kept_reachable']:.3f} ({s['reachable_questions']}) | {s['tokens']:.0f} |")
    Path(args.out).write_text(json.dumps({"options": options, "train_args": args.train_args,
                                          "results": summary}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
