"""Idempotency (operations.md): running the same as-of date twice, every REST and SQL source
through its real extractor against the simulator, then the view refresh, leaves every core,
quarantine, mart and ioc relation with the same content apart from run ids, batch ids and
timestamps, and adds exactly one row per source run to the audit ledger."""
from __future__ import annotations

import datetime as dt

import pytest

from ioc_pipeline.views import refresh
from tests.integration.test_batch_civil_status import rec
from tests.integration.test_batch_population import DA_NANG, good
from tests.integration.warehouse_helpers import PROVINCE, migrated, run_batch
from tests.reliability.support import SOURCES, diff, rows, run_source, snapshot

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 20)
# The ledger and the views over it describe runs, so a second run shows in them by design
# (ioc.source_freshness: last_rows_loaded is the last run's). ioc.data_quality and the
# population rows of quarantine are checked by the two tests at the end (known bugs).
LEDGER = ("audit.batch", "audit.source_run", "audit.validation_result", "ioc.source_freshness")
SEPARATE = ("ioc.data_quality", "quarantine.rejected_row")


def run_all(conn, dsn, run_id):
    out = {}
    for code in SOURCES:
        _, stats, published = run_source(conn, dsn, code, D, run_id)
        out[code] = (stats.rows_read if stats else 0, published)
    refresh.refresh(conn, D, PROVINCE)
    return out


def ledger_counts(dsn):
    return {t: rows(dsn, f"SELECT source_code, count(*) FROM {t} GROUP BY 1 ORDER BY 1") for t in
            ("audit.source_run", "audit.batch")}


def quarantine_of(dsn, sources):
    return sorted(rows(dsn, """SELECT source_code, business_key, record_date, reasons::text, failing_values::text
                                 FROM quarantine.rejected_row WHERE source_code = ANY(%s)""", (list(sources),)))


def test_same_date_twice_leaves_the_same_content_and_one_ledger_row_per_run(sim, warehouse_db):
    conn = migrated(warehouse_db)
    first = run_all(conn, warehouse_db, "run-1")
    assert all(published["rows_loaded"] > 0 for _, published in first.values()), first
    assert all(published["rows_quarantined"] > 0 for _, published in first.values()), first  # real faults
    state = snapshot(warehouse_db, volatile=True, skip=LEDGER + SEPARATE)
    counts = ledger_counts(warehouse_db)
    incremental = [c for c in SOURCES if c != "population"]
    quarantined = quarantine_of(warehouse_db, incremental)

    second = run_all(conn, warehouse_db, "run-2")
    conn.close()
    assert diff(snapshot(warehouse_db, volatile=True, skip=LEDGER + SEPARATE), state) == []
    assert quarantine_of(warehouse_db, incremental) == quarantined
    # one more source run and one more batch per source, nothing else in the ledger
    for table, per_source in ledger_counts(warehouse_db).items():
        assert per_source == [(code, n + 1) for code, n in counts[table]], table
    assert {code for code, _ in counts["audit.batch"]} == set(SOURCES)
    assert rows(warehouse_db, "SELECT DISTINCT last_status FROM ioc.source_freshness") == [("success",)]
    # incremental sources read an empty window the second time; the snapshot is asked again
    assert {c: r for c, (r, _) in second.items()} == {**{c: 0 for c in SOURCES}, "population": first["population"][0]}


def test_rerun_of_a_snapshot_does_not_duplicate_its_quarantined_rows(warehouse_db):
    conn = migrated(warehouse_db)
    # 30 communes, one breaking an invariant (more residents aged 14+ than residents)
    items = [good(DA_NANG[0], residents_14_plus=1200)] + [good(code) for code in DA_NANG[1:30]]
    run_batch(conn, warehouse_db, "population", D, [items], run_id="run-1")
    before = quarantine_of(warehouse_db, ["population"])
    run_batch(conn, warehouse_db, "population", D, [items], run_id="run-2")
    conn.close()
    assert len(before) == 1
    assert quarantine_of(warehouse_db, ["population"]) == before


def test_rerun_of_the_same_date_keeps_the_days_data_quality(warehouse_db):
    conn = migrated(warehouse_db)
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(60)] + [rec("BAD", subject_sex="?")]
    run_batch(conn, warehouse_db, "civil_status", D, [items], run_id="run-1")
    cols = "source_code, date, batch_status, expectations_evaluated, expectations_passed, rows_read, " \
           "rows_loaded, rows_quarantined, share_valid"
    quality = f"SELECT {cols} FROM ioc.data_quality WHERE source_code = 'civil_status'"
    before = rows(warehouse_db, quality)
    run_batch(conn, warehouse_db, "civil_status", D, [items], run_id="run-2")
    conn.close()
    assert before[0][3] > 0 and before[0][7] == 1
    assert rows(warehouse_db, quality) == before
