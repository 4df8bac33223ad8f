"""Crash: the worker process is SIGKILLed in the middle of a load and of a view refresh.

No timing luck: the test holds a table lock the worker needs at the step under test, waits until
PostgreSQL shows the worker blocked on it (inside its transaction), kills the worker with
SIGKILL, releases the lock, and waits for the dead worker's backends to go. The warehouse and
the ioc views must then be exactly what they were before the run (full content), and a re-run
must give what a run without the crash gives.
"""
from __future__ import annotations

import uuid

import pytest

from ioc_pipeline.views import refresh
from tests.fixtures import databases
from tests.integration.warehouse_helpers import PROVINCE, migrated, run_batch
from tests.reliability.support import (blocked_by, diff, kill, last_copy_settled, lock_held, locks_of, worker_backends,
                                       rows, scalar, snapshot, start_worker, wait_for, worker_log)
from tests.reliability.worker import BAD_EVERY, D1, D2, civil_items

pytestmark = pytest.mark.integration

N = 4000  # day-1 records; day 2 changes 2000 and adds 2000
# What a crash may change: the audit ledger records the started run and batch (begin commits
# them before the extraction); everything a reader or a later run relies on must not change.
LEDGER = ("audit.batch", "audit.source_run", "audit.validation_result", "ioc.source_freshness", "ioc.data_quality")


def day1(dsn):
    conn = migrated(dsn)
    run_batch(conn, dsn, "civil_status", D1, [civil_items("d1", N)], run_id="d1")
    refresh.refresh(conn, D1, PROVINCE)
    return conn


@pytest.fixture(scope="module")
def reference(pg_server, migrated_template, dropper) -> dict:
    """The same two days without any crash: what the re-run must reach (the same for every
    test of the module, so computed once)."""
    name = f"ioc_rel_ref_{uuid.uuid4().hex[:10]}"
    dsn = databases.create(pg_server, name, migrated_template)
    try:
        yield two_days(dsn)
    finally:
        dropper.drop(name)


def two_days(dsn) -> dict:
    conn = day1(dsn)
    run_batch(conn, dsn, "civil_status", D2, [civil_items("d2", N)], run_id="d2")
    refresh.refresh(conn, D2, PROVINCE)
    conn.close()
    return snapshot(dsn, volatile=True, skip=LEDGER)


def wait_until_worker_gone(dsn):
    wait_for(lambda: not worker_backends(dsn), "the killed worker's backends to leave", timeout=30)


def test_kill_during_publish_changes_nothing_and_the_rerun_completes(make_warehouse, reference, tmp_path):
    dsn = make_warehouse("ioc_rel_crash")
    conn = day1(dsn)
    before = snapshot(dsn)
    spec = {"mode": "batch", "dsn": dsn, "as_of": D2.isoformat(), "day": "d2", "n": N, "run_id": "d2-killed"}
    with lock_held(dsn, "core.civil_status") as locker:
        worker = start_worker(spec, tmp_path)
        pid = wait_for(lambda: blocked_by(dsn, locker), "the worker to block on core.civil_status",
                       proc=worker, log=lambda: worker_log(tmp_path, spec))[0]
        # inside the publish transaction: its quarantine rows are already written
        assert ("quarantine.rejected_row", "RowExclusiveLock") in locks_of(dsn, pid)
        kill(worker)
    wait_until_worker_gone(dsn)

    after = snapshot(dsn)
    assert diff({k: v for k, v in before.items() if k not in LEDGER},
                {k: v for k, v in after.items() if k not in LEDGER}) == []
    assert rows(dsn, "SELECT status FROM audit.source_run WHERE run_key = 'civil_status/d2-killed'") == [("running",)]
    assert scalar(dsn, "SELECT last_success_at IS NOT NULL FROM ioc.source_freshness WHERE source_code = 'civil_status'")

    run_batch(conn, dsn, "civil_status", D2, [civil_items("d2", N)], run_id="d2-rerun")
    refresh.refresh(conn, D2, PROVINCE)
    conn.close()
    assert diff(snapshot(dsn, volatile=True, skip=LEDGER), reference) == []
    # the right values, by hand: day 2 left every record digitized except the new ones i % 4 != 0
    assert scalar(dsn, "SELECT count(*) FROM core.civil_status") == (N + N // 2) - (N + N // 2) // BAD_EVERY
    assert rows(dsn, "SELECT status, error FROM audit.source_run WHERE run_key = 'civil_status/d2-killed'") == [
        ("failed", "abandoned: the worker stopped before the run finished")]


def test_kill_during_staging_then_the_next_run_marks_it_abandoned_and_completes(make_warehouse, reference, tmp_path):
    dsn = make_warehouse("ioc_rel_crash")
    conn = day1(dsn)
    before = snapshot(dsn)
    signal = tmp_path / "staging.signal"
    # 30000 rows (~6 MB) pass the COPY writer's 4 MB flush: data is on its way into staging when we kill
    spec = {"mode": "batch", "dsn": dsn, "as_of": D2.isoformat(), "day": "d2", "n": 32000, "run_id": "d2-killed",
            "pause_after": 30000, "signal": str(signal)}
    worker = start_worker(spec, tmp_path)
    wait_for(signal.exists, "the source to stall mid-extraction", proc=worker, log=lambda: worker_log(tmp_path, spec))
    batch_id = scalar(dsn, "SELECT batch_id FROM audit.batch WHERE run_key = 'civil_status/d2-killed'")
    staging = f"staging.civil_status_b{batch_id}"
    (pid,) = worker_backends(dsn)
    # the extraction's transaction is open (it emptied staging) and its last statement was a COPY
    assert (staging, "AccessExclusiveLock") in locks_of(dsn, pid)
    query = last_copy_settled(dsn, pid, proc=worker, log=lambda: worker_log(tmp_path, spec))
    assert query.startswith(f'COPY "staging"."civil_status_b{batch_id}"')
    kill(worker)
    wait_until_worker_gone(dsn)
    after = snapshot(dsn)
    assert diff({k: v for k, v in before.items() if k not in LEDGER},
                {k: v for k, v in after.items() if k not in LEDGER}) == []

    run_batch(conn, dsn, "civil_status", D2, [civil_items("d2", N)], run_id="d2-next")
    refresh.refresh(conn, D2, PROVINCE)
    conn.close()
    assert rows(dsn, "SELECT status, error FROM audit.batch WHERE batch_id = %s", (batch_id,)) == [
        ("failed", "abandoned: the worker stopped before the batch finished")]
    assert rows(dsn, "SELECT status FROM audit.source_run WHERE run_key = 'civil_status/d2-killed'") == [("failed",)]
    assert diff(snapshot(dsn, volatile=True, skip=LEDGER), reference) == []


def test_the_next_run_drops_the_staging_table_of_a_killed_batch(make_warehouse, tmp_path):
    dsn = make_warehouse("ioc_rel_crash")
    conn = migrated(dsn)
    signal = tmp_path / "staging.signal"
    spec = {"mode": "batch", "dsn": dsn, "as_of": D1.isoformat(), "day": "d1", "n": 200, "run_id": "d1-killed",
            "pause_after": 100, "signal": str(signal)}
    worker = start_worker(spec, tmp_path)
    wait_for(signal.exists, "the source to stall mid-extraction", proc=worker, log=lambda: worker_log(tmp_path, spec))
    kill(worker)
    wait_until_worker_gone(dsn)
    run_batch(conn, dsn, "civil_status", D1, [civil_items("d1", 200)], run_id="d1-next")
    conn.close()
    assert rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'staging'") == []


def test_kill_during_view_refresh_keeps_the_old_views_and_the_rerun_completes(make_warehouse, reference, tmp_path):
    dsn = make_warehouse("ioc_rel_crash")
    conn = day1(dsn)
    refresh.refresh(conn, D2, PROVINCE)   # views of D2 from day 1's data...
    run_batch(conn, dsn, "civil_status", D2, [civil_items("d2", N)], run_id="d2")  # ...then day 2 loads
    before = snapshot(dsn)
    old_values = sorted(rows(dsn, "SELECT * FROM ioc.indicator_values"))
    spec = {"mode": "refresh", "dsn": dsn, "as_of": D2.isoformat(), "run_id": "refresh-killed"}
    # the catalog is read only by the final INSERT, after the DELETE of the date's rows
    with lock_held(dsn, "mart.indicator_catalog") as locker:
        worker = start_worker(spec, tmp_path)
        pid = wait_for(lambda: blocked_by(dsn, locker), "the refresh to block after its DELETE",
                       proc=worker, log=lambda: worker_log(tmp_path, spec))[0]
        assert ("mart.indicator_history", "RowExclusiveLock") in locks_of(dsn, pid)
        # meanwhile a reader of the views sees the old row set, unblocked
        assert sorted(rows(dsn, "SELECT * FROM ioc.indicator_values")) == old_values
        kill(worker)
    wait_until_worker_gone(dsn)
    assert diff(before, snapshot(dsn)) == []

    refresh.refresh(conn, D2, PROVINCE)
    conn.close()
    assert diff(snapshot(dsn, volatile=True, skip=LEDGER), reference) == []
