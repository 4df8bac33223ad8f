"""Progress lines in the task log during long steps (staging, validation, publish).

Every EVERY_S seconds a long step logs `<label>: <rows> rows so far (<rate> rows/s, <t> s)`
(a loop that counts rows: `Progress.add`) or `<label>: still running (<t> s, <rows> rows)`
(one statement or one GX run: `heartbeat`, from a timer thread), and at its end one line
with its total rate. `make demo`/`make run` show the latest such line while a DAG runs.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

EVERY_S = 5.0
MARK = "rows so far"   # what the launcher looks for in a task log


class Progress:
    """Rows counted by a loop; logs at most once every `every_s` seconds."""

    def __init__(self, log: logging.Logger, label: str, every_s: float = EVERY_S):
        self.log, self.label, self.every_s = log, label, every_s
        self.rows = 0
        self.started = self._last = time.monotonic()

    def add(self, n: int = 1) -> None:
        self.rows += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            elapsed = now - self.started
            self.log.info("%s: %s %s (%s rows/s, %.0f s)", self.label, f"{self.rows:,}", MARK,
                          f"{self.rows / elapsed:,.0f}", elapsed)

    def done(self) -> float:
        elapsed = time.monotonic() - self.started
        self.log.info("%s: %s rows in %.1f s (%s rows/s)", self.label, f"{self.rows:,}", elapsed,
                      f"{self.rows / elapsed:,.0f}" if elapsed > 0 else "-")
        return elapsed


@contextlib.contextmanager
def heartbeat(log: logging.Logger, label: str, rows: int | None = None, every_s: float = EVERY_S) -> Iterator[None]:
    """Log that `label` is still running every `every_s` seconds, then its duration and rate."""
    stop = threading.Event()
    started = time.monotonic()
    of_rows = f", {rows:,} rows" if rows is not None else ""

    def beat() -> None:
        while not stop.wait(every_s):
            log.info("%s: still running (%.0f s%s)", label, time.monotonic() - started, of_rows)

    thread = threading.Thread(target=beat, name=f"heartbeat {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        elapsed = time.monotonic() - started
        rate = f", {rows / elapsed:,.0f} rows/s" if rows and elapsed > 0 else ""
        log.info("%s: done in %.1f s%s%s", label, elapsed, of_rows, rate)
