"""Crash-safe persistence of one collection to one file.

The whole state (the FAISS index serialised to bytes and a JSON record of
documents and chunks) goes into a single ``.npz`` file written to a temporary
name, flushed to disk, then renamed over the previous file with ``os.replace``.
A rename is atomic on POSIX, so a crash at any moment leaves either the old
file or the new one, never a torn one; stray temporary files are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from middleware.errors import InternalError

FILE_NAME = "collection.npz"
FORMAT_VERSION = 1
_TMP_MARK = ".tmp-"


def save(folder: Path, index_bytes: Any, state: dict[str, Any]) -> Path:
    """Write the state atomically; returns the file path."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FILE_NAME
    tmp = folder / f"{FILE_NAME}{_TMP_MARK}{os.getpid()}"
    record = dict(state, format_version=FORMAT_VERSION)
    payload = np.frombuffer(json.dumps(record, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, index=np.asarray(index_bytes, dtype=np.uint8), state=payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return target


def load(folder: Path) -> tuple[Any, dict[str, Any]] | None:
    """(index bytes, state) of the last complete save, or None when nothing was saved."""
    import numpy as np

    target = folder / FILE_NAME
    if not target.exists():
        return None
    try:
        with np.load(target, allow_pickle=False) as data:
            index_bytes = data["index"].copy()
            state = json.loads(bytes(data["state"]).decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise InternalError(f"collection file {target} is unreadable: {exc}") from exc
    if state.get("format_version") != FORMAT_VERSION:
        raise InternalError(f"collection file {target} has format {state.get('format_version')!r}, "
                            f"expected {FORMAT_VERSION}")
    return index_bytes, state


def saved_names(root: Path) -> list[str]:
    """Folders under ``root`` that hold a complete save."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / FILE_NAME).is_file())


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["FILE_NAME", "load", "save", "saved_names"]
