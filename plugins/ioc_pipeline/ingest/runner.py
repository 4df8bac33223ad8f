"""The batch sequence, written once: open -> stage -> check -> publish, fail on error, cleanup always.

Two ways in, one sequence:
- step by step, one call per Airflow task (dag_factory): each step takes and returns plain data
  (the BatchPlan as an XCom dict, a small summary), so tasks may run on different workers;
- run_batch / run_window in one call (file batches, suite checks, benchmarks, tests).

The steps themselves (what each does in the warehouse) are in ingest/batch.py; this module only
says in which order they run and what happens when one fails. Steps are called through the
`batch` module (batch.extract, ...), so a timer may wrap them (bench/ingest_path.py).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator

from ioc_pipeline import config, warehouse
from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.extract.window import Window
from ioc_pipeline.ingest import batch, staging
from ioc_pipeline.ingest.batch import BatchPlan

log = logging.getLogger(__name__)

Fetch = Callable[[], tuple[Iterator[dict], Callable[[], int | None]]]


class Session:
    """What every step needs besides the plan: a warehouse connection, and (read when first
    used, so a cleanup never fails for a missing secret) the personal-ID key, the province and
    the SQLAlchemy URL validation reads through."""

    def __init__(self, conn, *, key: bytes | None = None, province_code: str | None = None,
                 sqlalchemy_url: str | None = None) -> None:
        self.conn = conn
        self._key, self._province_code, self._sqlalchemy_url = key, province_code, sqlalchemy_url

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = config.pii_key()
        return self._key

    @property
    def province_code(self) -> str:
        if self._province_code is None:
            self._province_code = config.province_code()
        return self._province_code

    @property
    def sqlalchemy_url(self) -> str:
        if self._sqlalchemy_url is None:
            self._sqlalchemy_url = config.postgres_params(config.WAREHOUSE_CONN_ID).sqlalchemy_url()
        return self._sqlalchemy_url


@contextlib.contextmanager
def session() -> Iterator[Session]:
    """A Session on the configured warehouse (Airflow connection ioc_warehouse), closed after."""
    conn = warehouse.connect()
    try:
        yield Session(conn)
    finally:
        conn.close()


def _plan(plan: BatchPlan | dict) -> BatchPlan:
    return plan if isinstance(plan, BatchPlan) else BatchPlan.from_xcom(plan)


# ----------------------------------------------------------------------------- the steps

def open_window(ses: Session, source: Source, dag_run_id: str, as_of: dt.date, *,
                replay_batch: int | None = None) -> BatchPlan:
    """Open the run and its one batch (REST and SQL sources), window from the watermark."""
    return batch.begin(ses.conn, source, dag_run_id, as_of, key=ses.key, province_code=ses.province_code,
                       replay_batch=replay_batch)


def stage(ses: Session, source: Source, plan: BatchPlan | dict, fetch: Fetch | None = None, *,
          max_extractions: int = 3) -> dict:
    """Extract the batch into staging (again while the source's total says keys were skipped)
    and record what arrived. `fetch` defaults to the source's own extractor over the plan's
    window. The staged rows are deduplicated by `check`, in the validating task."""
    plan = _plan(plan)
    if plan.empty_window:
        log.info("%s: window is empty (already loaded up to %s): nothing to extract", source.code, plan.window_start)
        return {"rows_read": 0, "extra_columns": []}
    if fetch is None:
        from ioc_pipeline.extract import fetchers

        fetch = fetchers.fetcher_for(source, plan.window)
    stats = batch.extract(ses.conn, source, plan, fetch, key=ses.key, max_extractions=max_extractions)
    batch.record_extract(ses.conn, plan, stats)
    if stats.extra_columns:
        log.warning("schema drift: %s sent unknown column(s) %s; loaded without them",
                    plan.file_name or source.code, ", ".join(stats.extra_columns))
    return {"rows_read": stats.rows_read, "extra_columns": stats.extra_columns}


def check(ses: Session, source: Source, plan: BatchPlan | dict) -> dict:
    """Keep one version per key, then run the source's suite in PostgreSQL; quarantine failing
    rows or fail the batch."""
    plan = _plan(plan)
    if plan.empty_window:
        return {"distinct_keys": 0, "removed": 0, "evaluated": 0, "quarantined": 0}
    removed, distinct = batch.dedupe_and_load_validation(ses.conn, source, plan)
    summary = batch.validate(ses.conn, source, plan, sqlalchemy_url=ses.sqlalchemy_url)
    return {"removed": removed, **summary, "distinct_keys": distinct}


def publish(ses: Session, source: Source, plan: BatchPlan | dict, *, finish_run: bool = True) -> dict:
    """Quarantine, merge, audit and watermark in one transaction."""
    return batch.publish(ses.conn, source, _plan(plan), finish_run=finish_run)


def fail(ses: Session, plan: BatchPlan | dict, error: str, *, run_too: bool = True) -> None:
    """Record the failure on the batch (and its run); nothing of it was published."""
    batch.fail(ses.conn, _plan(plan), error, run_too=run_too)


def cleanup(ses: Session, plan: BatchPlan | dict) -> None:
    """Drop the batch's staging (it holds hashed IDs and masks), whatever happened."""
    batch.cleanup(ses.conn, _plan(plan))


def failure_reason(exc: Exception, file_name: str | None = None) -> str:
    """The one line recorded for a failed batch (a file batch's names its file)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{file_name}: {text}" if file_name and file_name not in text else text


# ----------------------------------------------------------------------------- the sequence

def run_batch(ses: Session, source: Source, plan: BatchPlan, fetch: Fetch | None = None, *,
              finish_run: bool = True, max_extractions: int = 3) -> dict:
    """stage -> check -> publish an opened batch; on any error the failure is recorded (on the
    run too unless `finish_run` is False: a file run closes itself) and raised; staging is
    dropped either way. Returns the steps' summaries merged (an empty window: publish's only,
    it records the empty batch and moves nothing)."""
    try:
        summary = {}
        if not plan.empty_window:
            summary.update(stage(ses, source, plan, fetch, max_extractions=max_extractions))
            summary.update(check(ses, source, plan))
        summary.update(publish(ses, source, plan, finish_run=finish_run))
        return summary
    except Exception as exc:
        fail(ses, plan, failure_reason(exc, plan.file_name), run_too=finish_run)
        raise
    finally:
        cleanup(ses, plan)


def run_window(ses: Session, source: Source, dag_run_id: str, as_of: dt.date, fetch: Fetch | None = None, *,
               replay_batch: int | None = None) -> tuple[BatchPlan, dict]:
    """A REST or SQL source's whole run for an as-of date: open_window + run_batch."""
    plan = open_window(ses, source, dag_run_id, as_of, replay_batch=replay_batch)
    return plan, run_batch(ses, source, plan, fetch)


@contextlib.contextmanager
def sample(ses: Session, source: Source, as_of: dt.date, items_for: Callable[[Window], Iterable[dict]], *,
           scratch_batch_id: int = 0) -> Iterator[tuple[BatchPlan, int]]:
    """Stage the items of the window up to D+1 into a scratch staging table exactly as a batch
    would (row building, personal IDs, dedupe), without any audit row; yields (plan, rows staged)
    and drops the table after. For trying a suite (quality/suite_check.py): nothing is published."""
    from ioc_pipeline.orchestration.asof import window_end

    with warehouse.transaction(ses.conn) as cur:
        table = staging.create(cur, source, scratch_batch_id)
    plan = BatchPlan(source_code=source.code, run_key="sample", batch_id=scratch_batch_id,
                     as_of_date=as_of.isoformat(), province_code=ses.province_code, staging_table=table,
                     window_end=window_end(as_of).isoformat() if source.watermark else None)
    try:
        rows, _, _, _ = batch.stage_items(ses.conn, source, plan, items_for(plan.window), key=ses.key)
        batch.dedupe(ses.conn, source, plan)
        yield plan, rows
    finally:
        with warehouse.transaction(ses.conn) as cur:
            staging.drop(cur, table)
