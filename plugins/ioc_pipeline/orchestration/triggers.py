"""Event trigger behind the file sources' "on arrival" schedule (operations.md: file sources are
ingested nightly and also when a delivery arrives).

Each file source's ingest DAG is scheduled on its nightly cron OR an Asset `ioc://landing/<code>`
watched by this trigger (Airflow 3 asset watcher, run by the triggerer). The trigger polls the
landing folder and fires when a settled delivery of the source's pattern appears or its content
changes: a file whose size or mtime changed is hashed (SHA-256, only then), and a copy of the same
bytes over a delivery it already saw starts nothing. What it saw when it started is its baseline
and does not fire: the nightly run takes anything that
arrived while no triggerer was watching, and a run finds every pending file itself (the ledger
decides what loads), so an extra or a missed event costs nothing.

The event's payload carries the as-of date the run uses: yesterday in Asia/Ho_Chi_Minh, as for
a nightly run (a run for D takes files named on or before D; a file named today waits for the
night, when its day is complete).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any
from collections.abc import AsyncIterator

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)


def settled_files(source_code: str, settle_seconds: float) -> dict[str, tuple[int, float]]:
    """name -> (size, mtime) of the source's settled files of any named date (no checksums:
    polling must stay cheap on large deliveries)."""
    import os

    from ioc_pipeline.declaration import catalog
    from ioc_pipeline.extract import file_source

    source = catalog.get(source_code)
    root = file_source.landing_root(source)
    folder = root / source.files.folder
    if not folder.is_dir():
        return {}
    now = time.time()
    found = {}
    for entry in os.scandir(folder):
        rel = f"{source.files.folder}/{entry.name}" if source.files.folder else entry.name
        if not source.files.regex.fullmatch(rel) or not entry.is_file(follow_symlinks=False):
            continue
        stat = entry.stat(follow_symlinks=False)
        if now - stat.st_mtime >= settle_seconds:
            found[rel] = (stat.st_size, stat.st_mtime)
    return found


def file_digest(source_code: str, rel: str) -> str | None:
    """SHA-256 of one delivery (None when it vanished meanwhile)."""
    import hashlib

    from ioc_pipeline.declaration import catalog
    from ioc_pipeline.extract import file_source

    h = hashlib.sha256()
    try:
        with open(file_source.landing_root(catalog.get(source_code)) / rel, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def yesterday_local(now: dt.datetime | None = None) -> dt.date:
    from ioc_pipeline.orchestration.asof import local_date

    return local_date(now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)


class LandingDeliveryTrigger(BaseEventTrigger):
    """Fires once per poll in which settled deliveries of `source_code` appeared or changed."""

    # a settled delivery (sources.md: unchanged for 60 s) starts its run within poll_seconds
    def __init__(self, source_code: str, poll_seconds: float = 20.0, settle_seconds: float = 60.0):
        super().__init__()
        self.source_code = source_code
        self.poll_seconds = float(poll_seconds)
        self.settle_seconds = float(settle_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("ioc_pipeline.orchestration.triggers.LandingDeliveryTrigger",
                {"source_code": self.source_code, "poll_seconds": self.poll_seconds,
                 "settle_seconds": self.settle_seconds})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen: dict[str, tuple[int, float]] | None = None
        digests: dict[str, str] = {}   # name -> SHA-256 of the content it last fired for
        while True:
            try:
                current = await asyncio.to_thread(settled_files, self.source_code, self.settle_seconds)
            except Exception as exc:  # noqa: BLE001 - a missing folder or connection: keep watching
                log.warning("%s: landing folder not readable now: %s", self.source_code, exc)
                current = seen or {}
            if seen is not None:
                changed = sorted(name for name, state in current.items() if seen.get(name) != state)
                arrived = []
                for name in changed:
                    digest = await asyncio.to_thread(file_digest, self.source_code, name)
                    if digest is not None and digests.get(name) != digest:
                        digests[name] = digest
                        arrived.append(name)
                    elif digest is not None:
                        log.info("%s: %s copied again with the same content: no run", self.source_code, name)
                if arrived:
                    log.info("%s: %d delivery(ies) arrived: %s", self.source_code, len(arrived), ", ".join(arrived[:20]))
                    yield TriggerEvent({"source_code": self.source_code, "files": arrived[:100],
                                        "as_of_date": yesterday_local().isoformat()})
            seen = current
            await asyncio.sleep(self.poll_seconds)
