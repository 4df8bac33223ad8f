"""Staging rows encoded by worker processes (ingest/row_workers.py) are exactly the rows one
process encodes: same COPY text, same order, same row ids, whatever the chunk size; and where
no child process may start (a daemonic Celery worker) the batch is encoded in process."""
import multiprocessing
import os
import signal
import time

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.ingest import row_workers, rows, staging

KEY = b"k" * 64
HOSTILE_VALUES = ["plain", "tab\there", "back\\slash", "new\nline", "cr\rhere", "\\N", "", "   ", "\u3000",
                  "Cafe\u0301", "ID 048090001234", None, "a\\tb", "x" * 300]


def _items(n: int) -> list[dict]:
    fields = catalog.get("health_visits").field_names
    return [{f: HOSTILE_VALUES[(i + j) % len(HOSTILE_VALUES)] for j, f in enumerate(fields)} for i in range(n)]


class TextWriter:
    """What a CopyWriter receives: the text and the row count."""

    def __init__(self):
        self.parts, self.rows = [], 0

    def write_text(self, text: str, rows_: int) -> None:
        self.parts.append(text)
        self.rows += rows_

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _encode(items, *, workers: int) -> TextWriter:
    build = rows.row_builder(catalog.get("health_visits"), KEY, "2026-11-19", "48")
    writer = TextWriter()
    with row_workers.Encoder(build, writer, workers=workers) as encoder:
        for item in items:
            encoder.add(item)
        encoder.finish()
    return writer


def _one_row_at_a_time(items) -> str:
    build = rows.row_builder(catalog.get("health_visits"), KEY, "2026-11-19", "48")
    return "".join("\t".join(map(staging.encode_value, build(i, item))) + "\n" for i, item in enumerate(items, 1))


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_worker_processes_encode_exactly_what_one_process_encodes(monkeypatch, chunk):
    monkeypatch.setattr(row_workers, "CHUNK_ROWS", chunk)
    items = _items(250)
    by_workers = _encode(items, workers=2)
    assert by_workers.rows == 250
    assert by_workers.text == _encode(items, workers=1).text == _one_row_at_a_time(items)
    assert [line.split("\t", 1)[0] for line in by_workers.text.splitlines()] == [str(i) for i in range(1, 251)]


def test_encode_line_escapes_exactly_as_value_by_value():
    values = [*HOSTILE_VALUES, True, False, 0, -5, 1990, 2.5]
    for i in range(len(values)):
        row = values[i:] + values[:i]
        assert staging.encode_line(row) == "\t".join(map(staging.encode_value, row)) + "\n"
        assert staging.encode_line(tuple(row)) == staging.encode_line(iter(row))


def _encode_in_daemon(queue, items):
    row_workers.CHUNK_ROWS = 5   # several chunks: a pool would be started were it allowed
    queue.put(_encode(items, workers=2).text)


def test_a_daemonic_process_that_may_not_fork_workers_encodes_in_process():
    items = _items(40)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_encode_in_daemon, args=(queue, items), daemon=True)
    proc.start()
    text = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert text == _one_row_at_a_time(items)


def _encode_then_hang(pid_file, items):
    """Starts the pool (several chunks), writes its workers' pids, then hangs mid-batch."""
    row_workers.CHUNK_ROWS = 5
    build = rows.row_builder(catalog.get("health_visits"), KEY, "2026-11-19", "48")
    with row_workers.Encoder(build, TextWriter(), workers=2) as encoder:
        for item in items:
            encoder.add(item)
        pid_file.write_text(" ".join(str(p) for p in encoder._pool._processes))
        time.sleep(600)


def test_workers_die_with_a_killed_parent(tmp_path):
    """A task killed mid-batch (timeout, OOM) must not leave workers behind: they hold copies
    of its database socket, which would keep its transaction and locks alive."""
    pid_file = tmp_path / "workers"
    proc = multiprocessing.get_context("fork").Process(target=_encode_then_hang, args=(pid_file, _items(40)))
    proc.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the pool never started"
        time.sleep(0.05)
    workers = [int(p) for p in pid_file.read_text().split()]
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=10)
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline + 10, f"workers outlived their parent: {workers}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"   # a zombie is dead, awaiting its reaper
    except FileNotFoundError:
        return False
