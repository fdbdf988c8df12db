"""Batched, off-the-event-loop writes to the ledger.

``submit`` only appends to an in-memory list under a lock (microseconds; safe
from the event loop and from worker threads). One background thread prices the
records (litellm is slow to import and to call) and writes them in batches
every ``flush_seconds`` or as soon as ``batch_size`` records wait. ``close``
writes everything still waiting before it returns: that is the SIGTERM path.

Invariant: a record leaves the pending list only after the batch holding it was
committed; a failed write keeps it pending and is retried with back-off. When
the ledger still refuses writes at shutdown (a database that is down), the
pending records go to a JSON-lines spill file instead, which the next start
writes to the ledger (:func:`recover`): a SIGTERM never drops a record.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from middleware.accounting.ledger import Ledger
from middleware.accounting.records import UsageRecord

log = logging.getLogger("ragpress.accounting")

Pending = Callable[[], UsageRecord]  # a record, priced when called (on the writer thread)
SPILL_GLOB = "ledger-unwritten-*.jsonl"
# Attempts at shutdown before the pending records are spilled to a file.
CLOSE_ATTEMPTS = 3


class BatchWriter:
    """Owns the writer thread of one ledger."""

    def __init__(self, ledger: Ledger, *, flush_seconds: float = 0.5, batch_size: int = 500,
                 on_written: Callable[[Sequence[UsageRecord]], None] | None = None,
                 spill_dir: Path | None = None) -> None:
        self.ledger = ledger
        self.spill_dir = spill_dir
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.on_written = on_written
        self.written = 0
        self.failures = 0
        self._pending: list[Pending] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ragpress-ledger", daemon=True)
        self._thread.start()

    def submit(self, make: Pending) -> None:
        """Queue one record; ``make`` builds (and prices) it on the writer thread."""
        with self._cond:
            self._pending.append(make)
            if len(self._pending) >= self.batch_size:
                self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is written (tests, shutdown). True when it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self.written + len(self._pending)
            self._cond.notify()
            while self.written < target and time.monotonic() < deadline:
                self._cond.wait(0.05)
                self._cond.notify()
            return self.written >= target

    def close(self, timeout: float = 60.0) -> None:
        """Write everything pending, then stop the thread and close the ledger."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        with self._cond:
            left, self._pending = self._pending, []
        if left:
            self._spill(left)
        self.ledger.close()

    def _spill(self, left: list[Pending]) -> None:
        if self.spill_dir is None:
            log.error("ledger: %d usage record(s) could not be written before shutdown and are lost", len(left))
            return
        path = Path(self.spill_dir) / f"ledger-unwritten-{time.time_ns()}-{os.getpid()}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for make in left:
                out.write(json.dumps(asdict(make())) + "\n")
            out.flush()
            os.fsync(out.fileno())
        log.error("ledger: %d usage record(s) could not be written before shutdown; kept in %s "
                  "(written to the ledger at the next start)", len(left), path)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(self.flush_seconds)
                if len(self._pending) < self.batch_size and not self._closing:
                    # Let a batch build up, unless someone waits for it.
                    self._cond.wait(self.flush_seconds)
                batch = self._pending[:self.batch_size]
                closing = self._closing
            if batch:
                self._write(batch, closing)
            elif closing:
                return
            if closing and self.failures >= CLOSE_ATTEMPTS:
                return  # close() spills what is left

    def _write(self, batch: list[Pending], closing: bool) -> None:
        records = []
        for make in batch:
            try:
                records.append(make())
            except Exception:  # noqa: BLE001 - a record that cannot be built is a bug; retrying cannot help
                log.exception("ledger: dropping a usage record that could not be built")
        try:
            self.ledger.write(records)
        except Exception:  # noqa: BLE001 - the ledger must outlive a database hiccup
            self.failures += 1
            log.exception("ledger: writing %d usage record(s) failed (attempt %d); retrying",
                          len(batch), self.failures)
            time.sleep(min(5.0, 0.1 * 2 ** min(self.failures, 6)))
            return
        with self._cond:
            del self._pending[:len(batch)]
            self.written += len(batch)
            self.failures = 0
            self._cond.notify_all()
        if self.on_written is not None:
            try:
                self.on_written(records)
            except Exception:  # noqa: BLE001 - metrics must not stop the ledger
                log.exception("ledger: post-write hook failed")


def recover(ledger: Ledger, spill_dir: Path) -> int:
    """Write the records of earlier spill files to ``ledger``; returns how many.

    A file is claimed by renaming it first, so replicas sharing a folder never
    import it twice; on failure it is renamed back for the next start.
    """
    count = 0
    for path in sorted(Path(spill_dir).glob(SPILL_GLOB)):
        claimed = path.with_suffix(".importing")
        try:
            path.rename(claimed)
        except OSError:
            continue  # another process claimed it
        try:
            lines = claimed.read_text(encoding="utf-8").splitlines()
            records = [UsageRecord(**json.loads(line)) for line in lines if line.strip()]
            ledger.write(records)
        except Exception:  # noqa: BLE001 - keep the file for the next start
            log.exception("ledger: could not recover %s; keeping it", path)
            claimed.rename(path)
            continue
        claimed.unlink()
        count += len(records)
        log.info("ledger: recovered %d usage record(s) from %s", len(records), path.name)
    return count
