"""Where benchmarks find their data and write their results (one convention for all).

Data: the folder named by the environment variable ``RAGPRESS_DATA``, by default
``../shared/data`` beside the repository root. A benchmark takes any file in the
documented row format with ``--data PATH``; the defaults are files of that folder.

Results: ``bench/results/<name>.json`` for a full run; a run on a subset (``--limit``,
``--questions`` below the default, another ``--data`` file...) writes
``bench/results/<name>.subset.json`` instead, so it never overwrites the figures the
README quotes. ``--out`` chooses the file explicitly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "RAGPRESS_DATA"
RESULTS = ROOT / "bench" / "results"


def data_dir() -> Path:
    """The data folder: ``$RAGPRESS_DATA``, else ``../shared/data`` beside the repository."""
    value = os.environ.get(ENV)
    return Path(value).expanduser() if value else ROOT.parent / "shared" / "data"


def data_file(*parts: str) -> Path:
    """A file under the data folder, by its path inside it (e.g. ``"hotpotqa", "x.jsonl"``)."""
    return data_dir().joinpath(*parts)


def existing(path: str | Path) -> Path:
    """``path`` if it exists, else exit with a message that names the data variable."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"benchmark data not found: {path}\n"
                         f"Set {ENV} to the folder that holds hotpotqa/, nq/ and icl/ "
                         f"(now {data_dir()}), or give the file with --data PATH.")
    return path


def resolve(name_or_path: str | Path) -> Path:
    """A path as given when it exists, else the same path inside the data folder
    (``"nq/nq_hybrid_dev.jsonl"``); a missing file exits with a message naming the variable."""
    path = Path(name_or_path)
    return path if path.exists() else existing(data_dir() / path)


def read_rows(path: str | Path, limit: int | None = None) -> list[dict]:
    """The JSON rows of a JSONL file (the first ``limit`` when given)."""
    rows = [json.loads(line) for line in existing(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def results_path(name: str, subset: bool, out: str | None = None) -> Path:
    """Where a run writes its JSON: ``out`` when given, else the full or the subset file."""
    if out:
        return Path(out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / (f"{name}.subset.json" if subset else f"{name}.json")
