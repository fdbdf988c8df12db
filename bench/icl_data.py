"""Few-shot classification data in one JSONL row format, and converters for the data
under ``$RAGPRESS_DATA/icl`` (default ``../shared/data`` beside the repository).

Row format (pool and evaluation files alike), one JSON object a line::

    {"input": "Who wrote Hamlet ?", "label": "person"}      # "id" optional (default: the line number)

The label set is read from the pool; a label is also the word the model is scored on,
so converters map codes to plain words (TREC "HUM" -> "person", SST-2 "1" -> "positive").

    python bench/icl_data.py OUT_DIR      # writes {sst2,trec,agnews}_{pool,eval}.jsonl

Splits: SST-2 pool = train (6,920), eval = test (1,821); TREC pool = train (5,452),
eval = test (500); AG News ships one file (test.csv, 7,600): shuffled with seed 13,
the first 600 rows are the evaluation set and the other 7,000 the pool. Evaluation
files are shuffled with seed 13, so their first N rows are a fixed random sample.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from pathlib import Path

SEED = 13
TREC_LABELS = {"ABBR": "abbreviation", "DESC": "description", "ENTY": "entity", "HUM": "person",
               "LOC": "location", "NUM": "number"}
SST2_LABELS = {"0": "negative", "1": "positive"}
AGNEWS_LABELS = {"1": "world", "2": "sports", "3": "business", "4": "technology"}
AGNEWS_EVAL = 600
DATASETS = ("trec", "agnews", "sst2")  # the two with targets first


def data_root() -> Path:
    """``$RAGPRESS_DATA`` or ``../shared/data`` beside the repository root."""
    root = Path(os.environ.get("RAGPRESS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (root / "icl").is_dir():
        raise SystemExit(f"no icl/ folder under {root}: set RAGPRESS_DATA to the folder that holds icl/ "
                         f"(sst2/, trec/, agnews/)")
    return root / "icl"


def _shuffled(rows: list[dict], seed: int = SEED) -> list[dict]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def sst2(root: Path) -> tuple[list[dict], list[dict]]:
    def read(name: str) -> list[dict]:
        rows = []
        for line in _lines(root / "sst2" / name):
            code, _, text = line.partition(" ")
            rows.append({"input": text.strip(), "label": SST2_LABELS[code]})
        return rows

    return read("stsa.binary.train"), _shuffled(read("stsa.binary.test"))


def trec(root: Path) -> tuple[list[dict], list[dict]]:
    def read(name: str) -> list[dict]:
        rows = []
        for line in _lines(root / "trec" / name):
            tag, _, text = line.partition(" ")
            rows.append({"input": text.strip(), "label": TREC_LABELS[tag.split(":")[0]]})
        return rows

    return read("train.txt"), _shuffled(read("test.txt"))


def agnews(root: Path) -> tuple[list[dict], list[dict]]:
    with open(root / "agnews" / "test.csv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)  # header
        rows = [{"input": f"{title.strip()}. {desc.strip()}".replace("\\", " "), "label": AGNEWS_LABELS[code]}
                for code, title, desc in reader]
    rows = _shuffled(rows)
    return rows[AGNEWS_EVAL:], rows[:AGNEWS_EVAL]


CONVERTERS = {"sst2": sst2, "trec": trec, "agnews": agnews}


def read_jsonl(path: Path) -> list[dict]:
    """Rows of the documented format; each gets an "id" (its line number when absent)."""
    rows = []
    for n, line in enumerate(_lines(path), start=1):
        row = json.loads(line)
        if not isinstance(row.get("input"), str) or not isinstance(row.get("label"), str):
            raise SystemExit(f"{path}:{n}: each line needs string fields 'input' and 'label'")
        rows.append({"id": str(row.get("id", n)), "input": row["input"], "label": row["label"]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def convert_all(out: Path) -> dict[str, tuple[Path, Path]]:
    """Write every data set's pool and eval files under ``out``; returns their paths."""
    root = data_root()
    paths = {}
    for name, fn in CONVERTERS.items():
        pool, evaluation = fn(root)
        paths[name] = (out / f"{name}_pool.jsonl", out / f"{name}_eval.jsonl")
        write_jsonl(paths[name][0], pool)
        write_jsonl(paths[name][1], evaluation)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/.data")
    for name, (p, e) in convert_all(target).items():
        print(f"{name}: {p} ({len(_lines(p))} rows), {e} ({len(_lines(e))} rows)")
