"""Staging rows of a large REST or file batch encoded on every core.

Building a staging row is Python (text cleaning, personal IDs hashed and masked, COPY
encoding): about 12 s of one core for a million health visits, most of the file path's time.
The Encoder hands chunks of items to worker processes, which return the chunks as COPY text,
while this process goes on reading the source and sending COPY. Chunks come back in order, so
row ids, the staged rows and the checksum are exactly what one process would produce.

A batch smaller than one chunk, a machine with one core, or a process that may not start
children (a daemonic worker) is encoded here, in process, the same way.
"""
from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Self

from ioc_pipeline.ingest.staging import CopyWriter, encode_line

log = logging.getLogger(__name__)

CHUNK_ROWS = 10_000   # items a worker encodes at a time
IN_FLIGHT = 2         # chunks waiting per worker: bounds memory whatever the batch size

Build = Callable[[int, dict], list]
_build: Build | None = None   # the batch's row builder, in a worker process


def _start_worker(build: Build, parent_pid: int) -> None:
    global _build
    _die_with_parent(parent_pid)
    _build = build


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive the process that forked it. A task killed by a timeout or a
    crash would otherwise leave idle workers holding copies of its database connection's
    socket, and with them its transaction and its locks on staging. Linux: the kernel sends
    SIGKILL when the forking thread ends (prctl PR_SET_PDEATHSIG); the Encoder lives within one
    call of that thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: no parent-death signal to ask for
        pass
    if os.getppid() != parent_pid:   # the parent died before the signal was asked for
        os._exit(1)


def encode_chunk(build: Build, first_row_id: int, items: list[dict]) -> str:
    """Items -> their staging rows as COPY text, row ids from `first_row_id`."""
    return "".join([encode_line(build(first_row_id + i, item)) for i, item in enumerate(items)])


def _encode_in_worker(first_row_id: int, items: list[dict]) -> str:
    return encode_chunk(_build, first_row_id, items)


def worker_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Encoder:
    """Items in, COPY text out to `writer`, in item order. Use as a context manager; call
    finish() after the last item (an exception leaves nothing half-written that matters: the
    caller rolls the staging back)."""

    def __init__(self, build: Build, writer: CopyWriter, *, workers: int | None = None):
        self._build, self._writer = build, writer
        self._workers = worker_count() if workers is None else workers
        self._chunk: list[dict] = []
        self._next_row_id = 1
        self._pool: ProcessPoolExecutor | None = None
        self._in_process = self._workers < 2
        self._pending: collections.deque[tuple[Future, int]] = collections.deque()

    def add(self, item: dict) -> None:
        self._chunk.append(item)
        if len(self._chunk) >= CHUNK_ROWS:
            self._dispatch()

    def finish(self) -> None:
        """Encode what is left and write every chunk, in order."""
        if self._chunk:
            if self._pool is None:  # a small batch: no worker for one chunk
                self._in_process = True
            self._dispatch()
        while self._pending:
            self._write_next()

    def _dispatch(self) -> None:
        items, first = self._chunk, self._next_row_id
        self._chunk = []
        self._next_row_id += len(items)
        if not self._in_process and self._pool is None:
            self._pool = self._start_pool()
        if self._in_process:
            self._writer.write_text(encode_chunk(self._build, first, items), len(items))
            return
        self._pending.append((self._pool.submit(_encode_in_worker, first, items), len(items)))
        # chunks already encoded go to COPY now; wait for the oldest only past the in-flight bound
        while self._pending and (len(self._pending) > IN_FLIGHT * self._workers or self._pending[0][0].done()):
            self._write_next()

    def _start_pool(self) -> ProcessPoolExecutor | None:
        pool = None
        try:
            # fork: the workers inherit the row builder (and its key) without pickling it
            pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_start_worker, initargs=(self._build, os.getpid()))
            pool.submit(os.getpid).result(timeout=30)   # the workers can start here
        except Exception as exc:  # noqa: BLE001 - daemonic process, no fork: encode in process
            log.info("staging rows encoded in this process only (%s: %s)", type(exc).__name__, exc)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            self._in_process = True
            return None
        log.info("staging rows encoded by %d worker processes, %d rows a chunk", self._workers, CHUNK_ROWS)
        return pool

    def _write_next(self) -> None:
        future, rows = self._pending.popleft()
        self._writer.write_text(future.result(), rows)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
