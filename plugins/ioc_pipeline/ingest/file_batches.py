"""A file source's run: every pending delivery is its own batch (docs/file_sources.md).

    pending(...)   deliveries discovered for the as-of date, minus those whose (name, checksum)
                   already committed (a failed one is tried again at every run)
    load_all(...)  for each, in named-date order: open batch + ledger row, then the runner's
                   sequence (stage the file, dedupe, validate, publish, drop staging).
                   A failure is recorded on its batch and the next file goes on; the run is then
                   closed: success only if every batch committed.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline import warehouse
from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.extract import file_source
from ioc_pipeline.extract.file_source import Delivery

log = logging.getLogger(__name__)


def committed_checksums(conn, source: Source) -> set[tuple[str, str]]:
    with warehouse.transaction(conn) as cur:
        cur.execute("SELECT file_name, checksum FROM audit.file_delivery WHERE source_code = %s AND status = 'committed'",
                    (source.code,))
        return {(name, checksum) for name, checksum in cur.fetchall()}


def pending(conn, source: Source, root: Path, as_of: dt.date, **discover_kw) -> list[Delivery]:
    """Deliveries this run must load: discovered, settled, named on or before D, not yet committed."""
    done = committed_checksums(conn, source)
    found = file_source.discover(root, source.files, as_of, **discover_kw)
    todo = [d for d in found if (d.name, d.checksum) not in done]
    log.info("%s: %d file(s) in the landing folder for %s, %d already loaded, %d to load",
             source.code, len(found), as_of, len(found) - len(todo), len(todo))
    return todo


def load_one(ses: runner.Session, source: Source, run_key: str, as_of: dt.date, root: Path,
             delivery: Delivery) -> dict:
    """Load one delivery as one batch; raises (after recording the failure) if it cannot commit."""
    plan = batch.open_batch(ses.conn, source, run_key, as_of, province_code=ses.province_code,
                            batch_name=delivery.name, delivery=delivery)

    def fetch():
        return file_source.read_items(root, source, delivery), (lambda: None)

    if source.files.format == "csv":   # a plain CSV is read column by column, anything else row by row
        fetch.read_columns = lambda: file_source.read_columns(root, source, delivery)

    return runner.run_batch(ses, source, plan, fetch, finish_run=False, max_extractions=1)


def load_all(conn, source: Source, run_key: str, as_of: dt.date, root: Path, deliveries: list[Delivery], *,
             key: bytes, province_code: str, sqlalchemy_url: str) -> dict:
    """Load every delivery (each its own batch), close the run, and return what happened.

    Never raises for a file's own problem: the failures are returned (and recorded) so that the
    other files still load; the caller fails the task when `failures` is not empty."""
    ses = runner.Session(conn, key=key, province_code=province_code, sqlalchemy_url=sqlalchemy_url)
    with warehouse.transaction(conn) as cur:  # a retried task: close what its killed attempt left open
        batch.abandon_running_batches(cur, source, run_key)
    done = committed_checksums(conn, source)  # a retried task skips what already committed
    loaded = quarantined = removed = 0
    failures: list[str] = []
    committed: list[str] = []
    for n, delivery in enumerate(deliveries, 1):
        if (delivery.name, delivery.checksum) in done:
            continue
        log.info("%s: file %d/%d %s (%d bytes)", source.code, n, len(deliveries), delivery.name, delivery.size)
        try:
            summary = load_one(ses, source, run_key, as_of, root, delivery)
        except (batch.BatchFailed, file_source.FileUnreadable) as exc:
            failures.append(runner.failure_reason(exc, delivery.name))
            log.error("%s: %s", source.code, failures[-1])
            continue
        committed.append(delivery.name)
        loaded += summary["rows_loaded"]
        quarantined += summary["rows_quarantined"]
        removed += summary["rows_removed"]
    batch.finish_run(conn, run_key, failures)
    result = {"files": len(deliveries), "files_committed": len(committed), "files_failed": len(failures),
              "rows_loaded": loaded, "rows_quarantined": quarantined, "rows_removed": removed,
              "failures": failures}
    log.info("%s: %s", source.code, {k: v for k, v in result.items() if k != "failures"})
    return result
