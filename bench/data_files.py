"""Where benchmarks find the shared evaluation data: one setting, ``RAGPRESS_DATA``.

It defaults to ``../shared/data`` beside the repository root (worktrees see the
shared folder there); a missing folder is a clear error naming the variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    path = Path(os.environ.get("RAGPRESS_DATA") or ROOT.parent / "shared" / "data")
    if not path.is_dir():
        raise SystemExit(f"no evaluation data at {path}: set RAGPRESS_DATA to the folder that holds "
                         f"hotpotqa/ and nq/ (see the shared data README)")
    return path


def resolve(name_or_path: str) -> Path:
    """A path as given if it exists, else relative to the data folder."""
    path = Path(name_or_path)
    if path.exists():
        return path
    path = data_dir() / name_or_path
    if not path.exists():
        raise SystemExit(f"no data file {name_or_path!r} (looked in {data_dir()}; RAGPRESS_DATA sets the folder)")
    return path


def read_rows(path: Path, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows
