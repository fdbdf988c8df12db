"""Converts question rows (the HotpotQA row format of shared/data) to the ragpress batch format.

    python bench/hotpot_to_batch.py IN.jsonl OUT.jsonl [--limit N] [--target-tokens 300]

Each paragraph becomes a document (id "p<k>", title, sentences joined by spaces);
the answer(s) and supporting facts go to a side file OUT.gold.jsonl for scoring.
Rows of other data sets in the same format (shared/data/nq: one unsplit passage
per "sentence", every accepted answer in ``answers``) convert the same way.

Benchmarks find the data through one setting (``bench/datapaths.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

# One convention for every benchmark's data (RAGPRESS_DATA): bench/datapaths.py.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from datapaths import data_file, existing, read_rows, resolve  # noqa: E402,F401  (re-exported for the benches)


def data_path(*parts: str) -> Path:
    """A file under the data folder (``RAGPRESS_DATA``, default ``../shared/data``); exits clearly if absent."""
    return existing(data_file(*parts))


def fold(question_id: str, folds: int = 5) -> int:
    """The fixed fold of a question (SHA-1 of its id): the heads' training and validation splits."""
    return int(hashlib.sha1(question_id.encode()).hexdigest(), 16) % folds


def convert(row: dict, target_tokens: int | None) -> tuple[dict, dict]:
    docs = [{"id": f"p{k}", "title": title, "text": " ".join(s.strip() for s in sents),
             "metadata": {"source": "hotpotqa", "paragraph": k}}
            for k, (title, sents) in enumerate(row.get("context", []))]
    line = {"id": row["id"], "query": row["question"], "documents": docs}
    if target_tokens:
        line["target_tokens"] = target_tokens
    gold = {"id": row["id"], "answer": row.get("answer", ""), "answers": row.get("answers") or [row.get("answer", "")],
            "type": row.get("type", ""),
            "supporting_facts": row.get("supporting_facts", []),
            "sentences": {title: [s.strip() for s in sents] for title, sents in row.get("context", [])}}
    return line, gold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--target-tokens", type=int, default=None)
    args = ap.parse_args()
    rows = read_rows(Path(args.input))
    rows = rows[: args.limit] if args.limit else rows
    out, gold = Path(args.output), Path(args.output).with_suffix(".gold.jsonl")
    with out.open("w", encoding="utf-8") as fo, gold.open("w", encoding="utf-8") as fg:
        for row in rows:
            line, g = convert(row, args.target_tokens)
            fo.write(json.dumps(line, ensure_ascii=False) + "\n")
            fg.write(json.dumps(g, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} lines to {out} and gold answers to {gold}")


if __name__ == "__main__":
    main()
