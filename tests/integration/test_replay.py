"""Replaying a quarantined batch (issue 6): the source fixed a row without touching its
updated_at; a run with replay_batch reads that batch's window again and loads the fixed row,
and the watermark never moves back."""
import datetime as dt

import pytest

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline.declaration import catalog
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import KEY, PROVINCE, migrated, session

pytestmark = pytest.mark.integration

D1 = dt.date(2026, 11, 19)
D2 = dt.date(2026, 11, 20)


def load(conn, dsn, as_of, items, run_id, replay_batch=None):
    plan, summary = runner.run_window(session(conn, dsn), catalog.get("civil_status"), run_id, as_of,
                                      lambda: (iter(items), lambda: None), replay_batch=replay_batch)
    return plan, {k: summary[k] for k in ("rows_loaded", "rows_quarantined")}


def scalar(conn, query, *args):
    with conn.cursor() as cur:
        cur.execute(query, args)
        value = cur.fetchone()[0]
    conn.commit()
    return value


def test_replay_reads_the_batch_window_again_and_keeps_the_watermark(warehouse_db):
    conn = migrated(warehouse_db)
    good = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(40)]
    broken = rec("FIX", registration_type="adoption")
    plan1, first = load(conn, warehouse_db, D1, good + [broken], "d1")
    assert first == {"rows_loaded": 40, "rows_quarantined": 1}
    plan2, _ = load(conn, warehouse_db, D2, [], "d2")
    watermark = scalar(conn, "SELECT watermark FROM audit.watermark")
    assert watermark == dt.datetime.fromisoformat(plan2.window_end)

    fixed = rec("FIX", registration_type="birth")            # same updated_at: a normal run never sees it
    plan3, replayed = load(conn, warehouse_db, D2, good + [fixed], "replay", replay_batch=plan1.batch_id)
    assert plan3.window_start is None and plan1.window_start is None     # the first window: all history
    assert dt.datetime.fromisoformat(plan3.window_end) == dt.datetime.fromisoformat(plan1.window_end)
    assert replayed == {"rows_loaded": 41, "rows_quarantined": 0}
    assert scalar(conn, "SELECT registration_type FROM core.civil_status WHERE record_id = 'FIX'") == "birth"
    assert scalar(conn, "SELECT watermark FROM audit.watermark") == watermark
    assert "replay of batch" in scalar(conn, "SELECT batch_name FROM audit.batch WHERE batch_id = %s", plan3.batch_id)


def test_replay_of_an_unknown_batch_or_a_snapshot_source_is_refused(warehouse_db):
    conn = migrated(warehouse_db)
    with pytest.raises(batch.BatchFailed, match="no windowed batch 999"):
        batch.begin(conn, catalog.get("civil_status"), "r", D1, key=KEY, province_code=PROVINCE, replay_batch=999)
    with pytest.raises(batch.BatchFailed, match="only windowed sources replay"):
        batch.begin(conn, catalog.get("population"), "r", D1, key=KEY, province_code=PROVINCE, replay_batch=1)


def test_runs_starting_together_on_a_fresh_warehouse_agree_on_one_key(warehouse_db):
    """Parallel workers (Celery) open runs of several sources at once: the first use of the
    pseudonymisation key must not race (a duplicate-key error lost a DAG on its first night)."""
    import threading

    from ioc_pipeline import warehouse

    migrated(warehouse_db).close()
    errors, barrier = [], threading.Barrier(4)

    def open_one(code):
        conn = warehouse.connect(warehouse_db)
        try:
            barrier.wait()
            batch.open_run(conn, catalog.get(code), "first_night", D1, key=KEY)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=open_one, args=(c,)) for c in ("civil_status", "land", "tuition", "population")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = migrated(warehouse_db)
    assert scalar(conn, "SELECT count(*) FROM audit.pii_key") == 1
    assert scalar(conn, "SELECT count(*) FROM audit.source_run WHERE status = 'running'") == 4


def test_a_collapse_in_volume_is_a_recorded_warning_not_a_failure(warehouse_db):
    """sources.md: fewer keys than the source's recent non-empty batches is a warning only."""
    conn = migrated(warehouse_db)

    def day(n, count):
        items = [rec(f"D{n}_{i}", subject_cccd=f"048225{n:02d}{i:04d}") for i in range(count)]
        return load(conn, warehouse_db, D1 + dt.timedelta(days=n), items, f"day{n}")

    for n in range(3):
        day(n, 40)                                   # the baseline: 40 keys a day
    plan, result = day(3, 3)                         # 3 keys: under a tenth of the median
    assert result == {"rows_loaded": 3, "rows_quarantined": 0}
    with conn.cursor() as cur:
        cur.execute("SELECT batch_id, expectation_type, severity, success, observed_value FROM audit.validation_result"
                    " WHERE expectation_index = -3")
        assert cur.fetchall() == [(plan.batch_id, "volume_collapse", "warning", False,
                                   {"distinct_keys": 3, "recent_median": 40.0, "recent_batches": 3})]
    conn.commit()
    day(4, 35)                                       # back to normal: no new warning
    assert scalar(conn, "SELECT count(*) FROM audit.validation_result WHERE expectation_index = -3") == 1
