"""Paired comparison of two `extractive` configurations, question by question.

    .venv/bin/python bench/paired_extractive.py [--data PATH ...] [--a NAME=VALUE ...] [--b NAME=VALUE ...]

Two configurations that keep the answer equally often in total may still disagree on
many questions, and a one-question difference on a small file says little. For each
file and budget this counts the questions only A keeps the answer for, and only B,
and gives the exact two-sided sign-test p-value of that split (the questions both
or neither keep say nothing about which is better). By default A is the default
heads and B the `fast` heads, on both dev files. Writes
bench/results/paired_extractive.json (or --out; a run with --limit never writes the
default file).

    .venv/bin/python bench/paired_extractive.py --crossval A.json B.json --out PATH

pairs two cross-validation runs of the training files instead (each written by
``bench/crossval_extractive.py --per-question``: every question judged by heads that
never saw it), file by file and budget by budget, over the questions both judged.
"""

from __future__ import annotations

import argparse
import json
import sys
from math import comb
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BUDGETS = (150, 300, 600)
DEV_FILES = ("hotpotqa/hotpot_distractor_dev100.jsonl", "nq/nq_hybrid_dev.jsonl")


def sign_test(a_only: int, b_only: int) -> float:
    """Exact two-sided binomial p-value of ``a_only`` against ``b_only`` under p = 1/2."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


SPLIT = {(True, True): "both", (True, False): "a_only", (False, True): "b_only", (False, False): "neither"}


def paired_counts(a: dict, b: dict) -> dict:
    """Counts and sign-test p of two {question id: answer kept} maps, over the ids in both."""
    counts = {"both": 0, "a_only": 0, "b_only": 0, "neither": 0}
    for qid in sorted(a.keys() & b.keys()):
        counts[SPLIT[(bool(a[qid]), bool(b[qid]))]] += 1
    counts["p"] = round(sign_test(counts["a_only"], counts["b_only"]), 4)
    return counts


def print_row(name: str, budget, counts: dict) -> None:
    print(f"| {name} | {budget} | {counts['both']} | {counts['a_only']} | {counts['b_only']} | "
          f"{counts['neither']} | {counts['p']} |")


def crossval_main(a_path: str, b_path: str, out: str | None) -> None:
    runs = [json.loads(Path(p).read_text())["runs"][0] for p in (a_path, b_path)]
    if not all("kept" in r for r in runs):
        sys.exit("both files must come from bench/crossval_extractive.py --per-question")
    print(f"A: {a_path}   B: {b_path}")
    print("| file | budget | both keep | A only | B only | neither | sign-test p |")
    print("|---|---|---|---|---|---|---|")
    results: dict = {}
    for source in sorted(runs[0]["kept"].keys() & runs[1]["kept"].keys()):
        for budget in sorted(runs[0]["kept"][source], key=int):
            counts = paired_counts(runs[0]["kept"][source][budget], runs[1]["kept"][source].get(budget, {}))
            results.setdefault(source, {})[budget] = counts
            print_row(source, budget, counts)
    target = Path(out) if out else HERE / "results" / "paired_extractive_crossval.json"
    target.write_text(json.dumps({"a": a_path, "b": b_path, "results": results}, indent=1))
    print(f"wrote {target}")


def main() -> None:
    from datapaths import resolve, results_path
    from extractive import load
    from metrics import answer_kept, answers
    from middleware.cli.compress import _options as options  # the CLI's KEY=VALUE reading (JSON, else text)
    from middleware.library import Ragpress
    from middleware.types import Stage

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None, help="a file of question rows (repeatable)")
    ap.add_argument("--a", action="append", default=[], help="an option of A, KEY=VALUE (default: none)")
    ap.add_argument("--b", action="append", default=None, help='an option of B, KEY=VALUE (default: heads=fast)')
    ap.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--crossval", nargs=2, metavar=("A", "B"), default=None,
                    help="pair two crossval_extractive.py --per-question results instead of compressing")
    args = ap.parse_args()
    if args.crossval:
        return crossval_main(*args.crossval, args.out)
    a_opts, b_opts = options(args.a), options(args.b if args.b is not None else ["heads=fast"])
    engine = Ragpress()
    results: dict = {}
    print(f"A: {a_opts or 'default'}   B: {b_opts}")
    print("| file | budget | both keep | A only | B only | neither | sign-test p |")
    print("|---|---|---|---|---|---|---|")
    for name in args.data or DEV_FILES:
        path = resolve(name)
        pairs = load(path, args.limit)
        for budget in args.budgets:
            kept_a, kept_b = {}, {}
            for k, (line, gold) in enumerate(pairs):
                accepted = answers(gold)
                kept = [answer_kept(accepted, engine.compress(line["query"], line["documents"], budget,
                                                              pipeline=[Stage("extractive", opts)]).context)
                        for opts in (a_opts, b_opts)]
                if kept[0] is None:  # yes/no answers are not counted
                    continue
                kept_a[k], kept_b[k] = kept
            counts = paired_counts(kept_a, kept_b)
            results.setdefault(path.name, {})[budget] = counts
            print_row(path.name, budget, counts)
    out = results_path("paired_extractive", bool(args.limit), args.out)
    out.write_text(json.dumps({"a": a_opts, "b": b_opts, "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
