"""The write-audit-publish core on civil_status, against a real PostgreSQL: duplicates resolved
first, merge rules, idempotent re-runs, all-or-nothing batches. Quarantine with reasons and no
clear personal data anywhere: the contract test on tests/contract/fixtures/civil_status.jsonl."""
import copy
import datetime as dt

import pytest

from ioc_pipeline.ingest import batch
from tests.contract import cases
from tests.integration.warehouse_helpers import migrated, run_batch

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
DN_2025 = "20194"   # a Da Nang commune (2025 scheme)


def rec(record_id, **over):
    base = {
        "record_id": record_id, "registration_type": "birth", "registered_on": "2025-09-01",
        "commune_code": DN_2025, "subject_cccd": "048225000123", "subject_full_name": "Lê Thị Ánh",
        "subject_birth_date": "2025-08-30", "subject_sex": "M", "book_digitized": True,
        "synced_to_ministry": False, "updated_at": "2025-09-02T10:00:00+07:00",
    }
    base.update(over)
    return base


GOOD = [c.item for c in cases.load("civil_status") if c.expect == "loaded"]   # R1, R2, R3


def test_duplicates_resolved_before_validation(warehouse_db):
    conn = migrated(warehouse_db)
    older = rec("D1", book_digitized=False, updated_at="2025-09-02T10:00:00+07:00")
    newer = rec("D1", book_digitized=True, updated_at="2025-09-03T10:00:00+07:00")
    bad_newest = rec("D2", registration_type="bogus", updated_at="2025-09-05T00:00:00+07:00")
    good_older = rec("D2", updated_at="2025-09-04T00:00:00+07:00")
    tie_a = rec("D3", synced_to_ministry=False, updated_at="2025-09-02T10:00:00+07:00")
    tie_b = rec("D3", synced_to_ministry=True, updated_at="2025-09-02T03:00:00Z")  # same instant, later row
    items = [newer, older, copy.deepcopy(newer), good_older, bad_newest, tie_a, tie_b]
    items += [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(100)]
    plan, summary = run_batch(conn, warehouse_db, "civil_status", AS_OF, [items])
    with conn.cursor() as cur:
        cur.execute("SELECT record_id, book_digitized, synced_to_ministry FROM core.civil_status"
                    " WHERE record_id IN ('D1','D2','D3') ORDER BY 1")
        rows = cur.fetchall()
    # D2: the surviving (latest) version is invalid -> quarantined, the older valid one is NOT loaded
    assert rows == [("D1", True, False), ("D3", True, True)]
    assert summary["rows_quarantined"] == 1


def test_stored_version_replaced_only_by_newer_and_quarantine_never_replaces(warehouse_db):
    conn = migrated(warehouse_db)
    filler = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(100)]
    run_batch(conn, warehouse_db, "civil_status", AS_OF - dt.timedelta(days=1),
              [[rec("M1", book_digitized=False, updated_at="2025-10-01T00:00:00+07:00")] + filler], run_id="r1")
    # next run: an older version of M1 (must not win) and an invalid newer one (quarantined, must not win)
    run_batch(conn, warehouse_db, "civil_status", AS_OF,
              [[rec("M1", book_digitized=True, updated_at="2025-09-01T00:00:00+07:00")] + filler], run_id="r2")
    with conn.cursor() as cur:
        cur.execute("SELECT book_digitized FROM core.civil_status WHERE record_id = 'M1'")
        assert cur.fetchone() == (False,)
    conn.commit()


def test_quarantine_share_over_threshold_fails_the_batch_and_loads_nothing(warehouse_db):
    conn = migrated(warehouse_db)
    items = GOOD + [rec(f"X{i}", subject_sex="?") for i in range(10)]
    with pytest.raises(batch.BatchFailed, match="quarantine share"):
        run_batch(conn, warehouse_db, "civil_status", AS_OF, [items])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM core.civil_status")
        assert cur.fetchone() == (0,)
        # the failing rows stay as evidence, marked as a failed batch's (never counted as quarantined)
        cur.execute("SELECT count(*), bool_and(batch_failed) FROM quarantine.rejected_row")
        assert cur.fetchone() == (10, True)
        cur.execute("SELECT status, error FROM audit.source_run")
        status, error = cur.fetchone()
        cur.execute("SELECT count(*) FROM audit.watermark")
        assert cur.fetchone() == (0,)
    assert status == "failed" and "quarantine share" in error
    conn.commit()


def test_fewer_keys_than_source_total_extracts_again_then_fails(warehouse_db):
    conn = migrated(warehouse_db)
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(20)]
    # first extraction skipped a record (moved between pages): the second is complete
    plan, summary = run_batch(conn, warehouse_db, "civil_status", AS_OF, [items[:19] + [items[5]], items], total=20)
    assert summary["rows_loaded"] == 20
    with pytest.raises(batch.BatchFailed, match="after 3 extractions"):
        run_batch(conn, warehouse_db, "civil_status", AS_OF + dt.timedelta(days=1), [items[:19]] * 3, total=20,
                  run_id="r2")


def test_missing_column_fails_the_batch(warehouse_db):
    conn = migrated(warehouse_db)
    items = [{k: v for k, v in rec(f"G{i}").items() if k != "synced_to_ministry"} for i in range(5)]
    with pytest.raises(batch.BatchFailed, match="missing from the delivery: synced_to_ministry"):
        run_batch(conn, warehouse_db, "civil_status", AS_OF, [items])


def test_rerun_of_same_date_is_idempotent_and_window_advances(warehouse_db):
    conn = migrated(warehouse_db)
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(50)]
    plan1, s1 = run_batch(conn, warehouse_db, "civil_status", AS_OF, [items], run_id="a")
    assert plan1.window_start is None and plan1.window_end == "2026-11-21T00:00:00+07:00"
    plan2, s2 = run_batch(conn, warehouse_db, "civil_status", AS_OF, [items], run_id="b")
    assert plan2.empty_window and s2 == {"rows_loaded": 0, "rows_quarantined": 0}
    plan3, _ = run_batch(conn, warehouse_db, "civil_status", AS_OF + dt.timedelta(days=1), [[]], run_id="c")
    assert plan3.window_start is not None and not plan3.empty_window


def test_changed_pii_key_is_refused(warehouse_db):
    conn = migrated(warehouse_db)
    run_batch(conn, warehouse_db, "civil_status", AS_OF, [[rec("K1")]], run_id="a")
    with pytest.raises(batch.BatchFailed, match="ioc_pii_key differs"):
        run_batch(conn, warehouse_db, "civil_status", AS_OF, [[rec("K1")]], run_id="b", key=b"another-key-0123456789")


def test_each_failing_expectation_keeps_its_first_failing_rows_masked(warehouse_db):
    """audit.validation_result.sample_rows: the first SAMPLE_ROWS failing rows of each failing
    row-level expectation (by staged order), business key and judged value; a personal ID only
    by its mask. Several expectations fail in one batch: each gets its own rows."""
    conn = migrated(warehouse_db)
    bad_sex = [rec(f"S{i}", subject_sex="?") for i in range(7)]
    bad_prefix = [rec(f"P{i}", subject_cccd=f"999225{i:06d}") for i in range(2)]
    filler = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(300)]
    run_batch(conn, warehouse_db, "civil_status", AS_OF, [bad_sex + bad_prefix + filler])
    with conn.cursor() as cur:
        cur.execute("SELECT expectation_index, sample_rows FROM audit.validation_result"
                    " WHERE NOT success AND sample_rows IS NOT NULL ORDER BY 1")
        samples = dict(cur.fetchall())
    conn.commit()
    assert samples[19] == [{"key": f"S{i}", "value": "?"} for i in range(batch.SAMPLE_ROWS)]
    assert [s["key"] for s in samples[11]] == ["P0", "P1"]
    assert {s["value"] for s in samples[11]} == {"999*********"}   # the mask, never the ID
    # "?" also disagrees with the sex digit of the ID: that rule names the same rows, by the mask
    assert samples[14] == [{"key": f"S{i}", "value": "048*********"} for i in range(batch.SAMPLE_ROWS)]
    assert set(samples) == {11, 14, 19}
