"""Rebuilds HotpotQA's distractor setting from a training file (training data only).

    .venv/bin/python bench/distractor_setting.py [--data hotpotqa/hotpot_retrieved_500.jsonl] [--out PATH]

The dev file (hotpot_distractor_dev100) pairs each question's two gold paragraphs
with 8 distractors that a bigram TF-IDF search over Wikipedia found for the
question; the training file holds paragraphs a retriever found, where a second hop
that shares no words with the question is usually missing. A method tuned on the
retrieved shape only can learn that "close to the question" means "evidence", which
the distractor shape punishes: its distractors are close by construction and its
bridge paragraphs are not. This builds the distractor shape from the training file
alone: every question whose two gold paragraphs were both retrieved keeps them, plus
the 8 paragraphs of the training file's whole pool (other questions' paragraphs
included, gold titles excluded) that are most like the question by bigram TF-IDF,
in a shuffled order (fixed seed). Same row format; the default output is
``.cache/hotpot_train_distractor.jsonl`` (built once; never read from the dev files).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SOURCE = "hotpotqa/hotpot_retrieved_500.jsonl"
OUT = HERE.parent / ".cache" / "hotpot_train_distractor.jsonl"
DISTRACTORS = 8


def build(rows: list[dict], distractors: int = DISTRACTORS, seed: int = 0) -> list[dict]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    pool: dict[str, list[str]] = {}
    for row in rows:
        for title, sentences in row.get("context") or []:
            pool.setdefault(title, sentences)
    titles = list(pool)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    matrix = vectorizer.fit_transform([f"{t} {' '.join(pool[t])}" for t in titles])
    rng = random.Random(seed)
    out = []
    for row in rows:
        gold = {t for t, _ in row.get("supporting_facts") or []}
        own = {t: s for t, s in row.get("context") or []}
        if len(gold) != 2 or not gold <= set(own):
            continue
        scores = (matrix @ vectorizer.transform([row["question"]]).T).toarray().ravel()
        picked = [titles[i] for i in scores.argsort()[::-1] if titles[i] not in gold][:distractors]
        context = [[t, own[t]] for t in sorted(gold)] + [[t, pool[t]] for t in picked]
        rng.shuffle(context)
        # The same id, hence the same fold (train_extractive_head.py): a question and its rebuilt
        # copy are never on both sides of a cross-validation split.
        out.append(dict(row, context=context))
    return out


def ensure(path: Path = OUT, source: str = SOURCE) -> Path:
    """The rebuilt file, built once."""
    from hotpot_to_batch import read_rows, resolve

    if not path.exists():
        rows = build(read_rows(resolve(source)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=SOURCE)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    if "dev" in Path(args.data).name:
        sys.exit("build from training files only: the dev files are for reporting")
    path = ensure(Path(args.out), args.data)
    print(f"{sum(1 for _ in path.open())} questions in {path}")


if __name__ == "__main__":
    main()
