"""Builds the corpus statistics of ``tokens-lite``: word counts of the TRAINING files only.

    .venv/bin/python bench/build_word_stats.py          # writes compressors/data/word_counts.tsv.gz

Words are the lower-cased cores of ``compressors.words`` units (edge punctuation
stripped) over every paragraph of hotpotqa/hotpot_retrieved_500.jsonl and
nq/nq_hybrid_train.jsonl (Wikipedia text; the dev files are never read). Words seen
fewer than ``--min-count`` times are left out (``tokens-lite`` treats them as rare).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from datapaths import read_rows, resolve  # noqa: E402

TRAIN = ["hotpotqa/hotpot_retrieved_500.jsonl", "nq/nq_hybrid_train.jsonl"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--out", default=str(HERE.parent / "compressors" / "data" / "word_counts.tsv.gz"))
    args = ap.parse_args()
    from compressors.keep import word_key
    from compressors.words import spans

    counts: collections.Counter[str] = collections.Counter()
    seen: set[tuple[str, str]] = set()
    for name in TRAIN:
        for row in read_rows(resolve(name)):
            for title, sents in row.get("context", []):
                text = " ".join(s.strip() for s in sents)
                if (title, text) in seen:  # paragraphs repeat across questions: count each once
                    continue
                seen.add((title, text))
                counts.update(k for k in (word_key(text[a:b]) for a, b in spans(text)) if k)
    total = sum(counts.values())
    kept = sorted(((w, c) for w, c in counts.items() if c >= args.min_count), key=lambda x: (-x[1], x[0]))
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(f"#total\t{total}\n")
        f.writelines(f"{w}\t{c}\n" for w, c in kept)
    print(f"{len(seen)} paragraphs, {total} words, {len(counts)} distinct; wrote {len(kept)} to {args.out}")


if __name__ == "__main__":
    main()
