"""SQLite ledger (the embedded default): one file in WAL mode.

WAL lets ``ragpress usage`` read while the service writes; ``synchronous=NORMAL``
in WAL mode survives a crash of the process (a committed batch is in the WAL
file) though not a power cut within the last checkpoint, which is the usual
trade for a local ledger. PostgreSQL is the choice when that matters.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from middleware.accounting.ledger import SqlLedger, register_backend
from middleware.errors import InvalidArgument
from middleware.settings import Settings

DEFAULT_FILE = "ledger.sqlite3"


class SqliteLedger(SqlLedger):
    placeholder = "?"
    id_column = "id INTEGER PRIMARY KEY"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise InvalidArgument(f"cannot open the SQLite ledger {path}: {exc}") from exc
        super().__init__(conn)

    def bucket_expr(self, seconds: int) -> str:
        # ts is positive, so truncation is the floor. ``seconds`` is an int we control.
        return f"CAST(ts / {int(seconds)} AS INTEGER) * {int(seconds)}"


def sqlite_path(url: str, settings: Settings) -> Path:
    """``""`` -> data_dir/ledger.sqlite3; ``sqlite:///abs.db`` -> /abs.db; ``sqlite:rel.db`` -> ./rel.db."""
    if not url:
        return Path(settings.data_dir) / DEFAULT_FILE
    rest = url.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise InvalidArgument(f"ledger_url {url!r} names no file")
    return Path(rest)


@register_backend("sqlite")
def _open(url: str, settings: Settings) -> SqliteLedger:
    return SqliteLedger(sqlite_path(url, settings))
