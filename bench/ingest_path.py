"""One source's run for an as-of date, driven through the functions the DAG tasks call
(dag_factory.build_ingest_dag / build_file_ingest_dag), with every step timed by a StepTimer.

Used by bench_ingest (one source, N rows) and bench_nightly (every source, one day). Import it
only in the spawned child: it imports the pipeline.
"""
from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from benchlib import PROVINCE, StepTimer
from ioc_pipeline.ingest import batch, file_batches, runner
from ioc_pipeline import warehouse
from ioc_pipeline.declaration.catalog import Source

STEPS = ("begin", "extract", "record_extract", "dedupe", "validate", "publish", "cleanup")
# "dedupe": dedupe with the validation module's import alongside (batch.dedupe_and_load_validation);
# "validate": the suite and its bookkeeping
_BATCH_STEPS = {"extract": "extract", "record_extract": "record_extract", "dedupe_and_load_validation": "dedupe",
                "validate": "validate", "publish": "publish", "cleanup": "cleanup"}


class Recorder(StepTimer):
    """A StepTimer on the batch module's steps that also keeps what dedupe removed."""

    def __init__(self) -> None:
        super().__init__()
        self.removed = 0
        dedupe = batch.dedupe

        def counted(*a, **kw):
            removed, kept = dedupe(*a, **kw)
            self.removed += removed
            return removed, kept

        batch.dedupe = counted
        self.instrument(batch, _BATCH_STEPS)

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.removed = 0


def run_source(conn, source: Source, as_of: dt.date, *, key: bytes, sqlalchemy_url: str, timer: Recorder,
               landing: Path | None = None, migrate: bool = False, raise_on_failed_file: bool = True) -> dict:
    """begin..cleanup of a REST/SQL source, or begin (discover) + load_all of a file source.
    `migrate`: also run the migration check every DAG's begin task runs (timed under begin).
    A file source's failed files raise, or with raise_on_failed_file=False are listed under
    "failures" (the simulator delivers some faulty files on purpose)."""
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    if migrate:
        timer.run("begin", warehouse.migrate, conn)
    if source.kind == "file":
        run_key = timer.run("begin", batch.open_run, conn, source, run_id, as_of, key=key)
        todo = timer.run("begin", file_batches.pending, conn, source, landing, as_of, settle_seconds=0)
        result = file_batches.load_all(conn, source, run_key, as_of, landing, todo, key=key, province_code=PROVINCE,
                                       sqlalchemy_url=sqlalchemy_url)
        if result["failures"] and raise_on_failed_file:
            raise RuntimeError("; ".join(result["failures"]))
        with warehouse.transaction(conn) as cur:
            cur.execute("SELECT coalesce(sum(rows_read), 0), coalesce(sum(distinct_keys), 0) FROM audit.batch"
                        " WHERE run_key = %s", (run_key,))
            rows_read, distinct = cur.fetchone()
        return {"rows_read": int(rows_read), "distinct_keys": int(distinct), "quarantined": result["rows_quarantined"],
                "rows_loaded": result["rows_loaded"], "window_end": None, "files": result["files"],
                "failures": list(result["failures"])}
    ses = runner.Session(conn, key=key, province_code=PROVINCE, sqlalchemy_url=sqlalchemy_url)
    plan = timer.run("begin", runner.open_window, ses, source, run_id, as_of)
    summary = runner.run_batch(ses, source, plan)
    return {"rows_read": summary.get("rows_read", 0), "distinct_keys": summary.get("distinct_keys", 0),
            "quarantined": summary.get("quarantined", 0), "rows_loaded": summary["rows_loaded"],
            "window_end": plan.window_end}
