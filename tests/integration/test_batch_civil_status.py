"""The write-audit-publish core on civil_status, against a real PostgreSQL: quarantine with
reasons, duplicates resolved first, merge rules, idempotent re-runs, all-or-nothing batches,
and no clear personal data anywhere in the warehouse."""
import copy
import datetime as dt

import pytest

from ioc_pipeline.ingest import batch
from tests.integration.warehouse_helpers import all_text_values, find_leaks, migrated, run_batch

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
# Da Nang communes (2025 scheme) and a legacy Quang Nam commune (20344 -> 20350 after July 2025)
DN_2025 = "20194"
QN_LEGACY = "20344"


def rec(record_id, **over):
    base = {
        "record_id": record_id, "registration_type": "birth", "registered_on": "2025-09-01",
        "commune_code": DN_2025, "subject_cccd": "048225000123", "subject_full_name": "Lê Thị Ánh",
        "subject_birth_date": "2025-08-30", "subject_sex": "M", "book_digitized": True,
        "synced_to_ministry": False, "updated_at": "2025-09-02T10:00:00+07:00",
    }
    base.update(over)
    return base


GOOD = [
    rec("R1"),
    rec("R2", registered_on="2024-03-05", commune_code=QN_LEGACY, subject_cccd="049195000456",
        subject_birth_date="1995-01-01", subject_sex="F", book_digitized=False),
    rec("R3", registered_on="2010-05-05", subject_cccd=None, subject_birth_date=None, commune_code="20197"),
]
BAD = {
    "B_type": rec("B_type", registration_type="adoption"),
    "B_prefix": rec("B_prefix", subject_cccd="003225000123"),
    "B_format": rec("B_format", subject_cccd="04822500012"),
    "B_sex": rec("B_sex", subject_sex="F"),
    "B_year": rec("B_year", subject_birth_date="2024-08-30"),
    "B_future": rec("B_future", registered_on="2026-12-01"),
    "B_unknown_commune": rec("B_unknown_commune", commune_code="99999"),
    "B_outside": rec("B_outside", commune_code="00004"),     # Hanoi ward
    "B_missing_cccd": rec("B_missing_cccd", subject_cccd=""),
    "B_bool": rec("B_bool", book_digitized="true"),
}


def test_batch_quarantines_with_reasons_and_loads_the_rest(empty_db):
    conn = migrated(empty_db)
    items = GOOD + list(BAD.values())
    # many good rows so the quarantine share stays under the 5% threshold
    items += [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(300)]
    plan, summary = run_batch(conn, empty_db, "civil_status", AS_OF, [items], total=None)
    assert summary["rows_quarantined"] == len(BAD)
    assert summary["rows_loaded"] == 3 + 300
    with conn.cursor() as cur:
        cur.execute("SELECT business_key, reasons, failing_values FROM quarantine.rejected_row")
        rejected = {k: (r, v) for k, r, v in cur.fetchall()}
        cur.execute("SELECT record_id, commune_code, commune_code_2025, book_digitized, subject_cccd_hash IS NULL"
                    " FROM core.civil_status WHERE record_id IN ('R1','R2','R3') ORDER BY 1")
        loaded = cur.fetchall()
    assert set(rejected) == set(BAD)
    reason = lambda k: " ".join(r["reason"] for r in rejected[k][0])  # noqa: E731
    assert "seven types" in reason("B_type")
    assert "63 birth-registration codes" in reason("B_prefix")
    assert "not 12 digits" in reason("B_format")
    assert "sex digit" in reason("B_sex")
    assert "disagrees with subject_birth_date" in reason("B_year")
    assert "later than the as-of date" in reason("B_future")
    assert "names no commune" in reason("B_unknown_commune")
    assert "outside the IOC's province" in reason("B_outside")
    assert "subject_cccd is missing" in reason("B_missing_cccd")
    assert "JSON boolean" in reason("B_bool")
    # the failing personal-ID field is shown masked, never clear, never hashed
    assert rejected["B_prefix"][1] == {"subject_cccd_prefix_known": "003*********"}
    assert rejected["B_sex"][1] == {"subject_cccd_sex": "048*********"}
    assert rejected["B_outside"][1] == {"commune_code": "00004"}
    assert loaded == [("R1", DN_2025, DN_2025, True, False), ("R2", QN_LEGACY, "20350", False, False),
                      ("R3", "20197", "20197", True, True)]
    assert batch_row(conn, plan.batch_id)[:2] == ("committed", len(items))


def batch_row(conn, batch_id):
    with conn.cursor() as cur:
        cur.execute("SELECT status, rows_read, rows_loaded, rows_quarantined, error FROM audit.batch WHERE batch_id = %s",
                    (batch_id,))
        row = cur.fetchone()
    conn.commit()
    return row


def test_no_clear_personal_data_anywhere(empty_db):
    conn = migrated(empty_db)
    items = GOOD + list(BAD.values()) + [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(300)]
    run_batch(conn, empty_db, "civil_status", AS_OF, [items])
    ids = {i["subject_cccd"] for i in items if i["subject_cccd"]}
    names = {i["subject_full_name"] for i in items}
    assert find_leaks(all_text_values(conn), ids, names) == []
    with conn.cursor() as cur:  # staging is emptied after the batch
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")
        assert cur.fetchone()[0] == 0


def test_duplicates_resolved_before_validation(empty_db):
    conn = migrated(empty_db)
    older = rec("D1", book_digitized=False, updated_at="2025-09-02T10:00:00+07:00")
    newer = rec("D1", book_digitized=True, updated_at="2025-09-03T10:00:00+07:00")
    bad_newest = rec("D2", registration_type="bogus", updated_at="2025-09-05T00:00:00+07:00")
    good_older = rec("D2", updated_at="2025-09-04T00:00:00+07:00")
    tie_a = rec("D3", synced_to_ministry=False, updated_at="2025-09-02T10:00:00+07:00")
    tie_b = rec("D3", synced_to_ministry=True, updated_at="2025-09-02T03:00:00Z")  # same instant, later row
    items = [newer, older, copy.deepcopy(newer), good_older, bad_newest, tie_a, tie_b]
    items += [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(100)]
    plan, summary = run_batch(conn, empty_db, "civil_status", AS_OF, [items])
    with conn.cursor() as cur:
        cur.execute("SELECT record_id, book_digitized, synced_to_ministry FROM core.civil_status"
                    " WHERE record_id IN ('D1','D2','D3') ORDER BY 1")
        rows = cur.fetchall()
    # D2: the surviving (latest) version is invalid -> quarantined, the older valid one is NOT loaded
    assert rows == [("D1", True, False), ("D3", True, True)]
    assert summary["rows_quarantined"] == 1


def test_stored_version_replaced_only_by_newer_and_quarantine_never_replaces(empty_db):
    conn = migrated(empty_db)
    filler = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(100)]
    run_batch(conn, empty_db, "civil_status", AS_OF - dt.timedelta(days=1),
              [[rec("M1", book_digitized=False, updated_at="2025-10-01T00:00:00+07:00")] + filler], run_id="r1")
    # next run: an older version of M1 (must not win) and an invalid newer one (quarantined, must not win)
    run_batch(conn, empty_db, "civil_status", AS_OF,
              [[rec("M1", book_digitized=True, updated_at="2025-09-01T00:00:00+07:00")] + filler], run_id="r2")
    with conn.cursor() as cur:
        cur.execute("SELECT book_digitized FROM core.civil_status WHERE record_id = 'M1'")
        assert cur.fetchone() == (False,)
    conn.commit()


def test_quarantine_share_over_threshold_fails_the_batch_and_loads_nothing(empty_db):
    conn = migrated(empty_db)
    items = GOOD + [rec(f"X{i}", subject_sex="?") for i in range(10)]
    with pytest.raises(batch.BatchFailed, match="quarantine share"):
        run_batch(conn, empty_db, "civil_status", AS_OF, [items])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM core.civil_status")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT count(*) FROM quarantine.rejected_row")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT status, error FROM audit.source_run")
        status, error = cur.fetchone()
        cur.execute("SELECT count(*) FROM audit.watermark")
        assert cur.fetchone() == (0,)
    assert status == "failed" and "quarantine share" in error
    conn.commit()


def test_fewer_keys_than_source_total_extracts_again_then_fails(empty_db):
    conn = migrated(empty_db)
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(20)]
    # first extraction skipped a record (moved between pages): the second is complete
    plan, summary = run_batch(conn, empty_db, "civil_status", AS_OF, [items[:19] + [items[5]], items], total=20)
    assert summary["rows_loaded"] == 20
    with pytest.raises(batch.BatchFailed, match="after 3 extractions"):
        run_batch(conn, empty_db, "civil_status", AS_OF + dt.timedelta(days=1), [items[:19]] * 3, total=20,
                  run_id="r2")


def test_missing_column_fails_the_batch(empty_db):
    conn = migrated(empty_db)
    items = [{k: v for k, v in rec(f"G{i}").items() if k != "synced_to_ministry"} for i in range(5)]
    with pytest.raises(batch.BatchFailed, match="missing from the delivery: synced_to_ministry"):
        run_batch(conn, empty_db, "civil_status", AS_OF, [items])


def test_rerun_of_same_date_is_idempotent_and_window_advances(empty_db):
    conn = migrated(empty_db)
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(50)]
    plan1, s1 = run_batch(conn, empty_db, "civil_status", AS_OF, [items], run_id="a")
    assert plan1.window_start is None and plan1.window_end == "2026-11-21T00:00:00+07:00"
    plan2, s2 = run_batch(conn, empty_db, "civil_status", AS_OF, [items], run_id="b")
    assert plan2.empty_window and s2 == {"rows_loaded": 0, "rows_quarantined": 0}
    plan3, _ = run_batch(conn, empty_db, "civil_status", AS_OF + dt.timedelta(days=1), [[]], run_id="c")
    assert plan3.window_start is not None and not plan3.empty_window


def test_changed_pii_key_is_refused(empty_db):
    conn = migrated(empty_db)
    run_batch(conn, empty_db, "civil_status", AS_OF, [[rec("K1")]], run_id="a")
    with pytest.raises(batch.BatchFailed, match="ioc_pii_key differs"):
        run_batch(conn, empty_db, "civil_status", AS_OF, [[rec("K1")]], run_id="b", key=b"another-key-0123456789")
