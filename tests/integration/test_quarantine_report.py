"""Quarantine listing (`make quarantine`) against real civil_status batches: reasons with counts per
batch, rows with masked failing values, keys still open until a later batch loads them, and
source values made harmless for a terminal."""
import datetime as dt
import subprocess
import sys

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.quality import quarantine_report
from tests.conftest import REPO
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import find_leaks, migrated, pipeline_env, run_batch

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 20)
SOURCE = catalog.get("civil_status")
NEXT_DAY = "2026-11-20T10:00:00+07:00"      # updated_at of the second batch's versions
HOSTILE = "<script>alert(1)</script>"
ESCAPE = "K\x1b[2J"                          # a terminal escape sequence in a key
BAD_CCCD = "04822500012"                     # 11 digits: quarantined, shown masked


def good(i, **over):
    return rec(f"G{i}", subject_cccd=f"048225{i:06d}", **over)


FIRST = [good(i) for i in range(300)] + [
    rec("Q_sex", subject_sex="?"),
    rec("Q_fixed", subject_cccd=BAD_CCCD),
    rec(HOSTILE, registration_type="adoption"),
    rec(ESCAPE, subject_sex="?"),
]
# the source fixed Q_fixed; G1 came back with a bad value (its old version stays loaded)
SECOND = [rec("Q_fixed", updated_at=NEXT_DAY), good(1, subject_sex="?", updated_at=NEXT_DAY)] + [
    good(i, updated_at=NEXT_DAY) for i in range(2, 60)]


def load(conn, dsn):
    first, _ = run_batch(conn, dsn, "civil_status", D - dt.timedelta(days=1), [FIRST], run_id="r1")
    second, _ = run_batch(conn, dsn, "civil_status", D, [SECOND], run_id="r2")
    return first.batch_id, second.batch_id


def test_batches_list_reasons_with_counts_and_masked_rows(warehouse_db):
    conn = migrated(warehouse_db)
    b1, b2 = load(conn, warehouse_db)
    found = quarantine_report.batches(conn, "civil_status")
    assert [b.batch_id for b in found] == [b2, b1]                       # newest first
    first = found[1]
    assert first.rows_quarantined == 4 and first.status == "committed"
    reasons = dict(first.reasons)
    # Q_sex and ESCAPE break the sex rule and the CCCD sex-digit rule; each rule counts its rows
    assert sum(n for r, n in first.reasons if "subject_sex" in r) >= 2
    assert any("registration_type" in r and n == 1 for r, n in reasons.items())
    assert sorted(r.business_key for r in first.rows) == sorted(["Q_sex", "Q_fixed", HOSTILE, ESCAPE])
    fixed = next(r for r in first.rows if r.business_key == "Q_fixed")
    assert set(fixed.failing_values.values()) == {"048********"} and fixed.record_date == "2025-09-01"
    assert all(k.startswith("subject_cccd") for k in fixed.failing_values)
    assert [r.business_key for r in quarantine_report.batches(conn, "civil_status", b1, limit=2)[0].rows] \
        == sorted(["Q_sex", "Q_fixed", HOSTILE, ESCAPE])[:2]
    assert quarantine_report.batches(conn, "civil_status", 999) == []


def test_open_rows_are_the_keys_no_later_batch_loaded(warehouse_db):
    conn = migrated(warehouse_db)
    b1, b2 = load(conn, warehouse_db)
    still_open = {(r.business_key, r.batch_id) for r in quarantine_report.open_rows(conn, SOURCE)}
    # Q_fixed was loaded by the second batch; G1's loaded row is older than its quarantine
    assert still_open == {("Q_sex", b1), (HOSTILE, b1), (ESCAPE, b1), ("G1", b2)}
    # the source fixes G1 the day after: no longer open
    run_batch(conn, warehouse_db, "civil_status", D + dt.timedelta(days=1),
              [[good(1, updated_at="2026-11-21T10:00:00+07:00")] + [good(i, updated_at="2026-11-21T10:00:00+07:00")
                                                                     for i in range(2, 40)]], run_id="r3")
    assert {k for k, _ in ((r.business_key, r.batch_id) for r in quarantine_report.open_rows(conn, SOURCE))} \
        == {"Q_sex", HOSTILE, ESCAPE}


def test_make_quarantine_prints_batches_reasons_and_rows_safely(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    b1, b2 = load(conn, warehouse_db)
    conn.close()
    env = pipeline_env(warehouse_db, tmp_path)
    cmd = [sys.executable, str(REPO / "scripts" / "pipeline.py"), "quarantine", "civil_status"]
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"civil_status batch {b2} (as of {D}, committed" in text and "1 rows quarantined" in text
    assert f"civil_status batch {b1} (as of {D - dt.timedelta(days=1)}, committed" in text and "4 rows quarantined" in text
    assert "=048********]" in text and HOSTILE in text
    assert "\x1b" not in text and "K\\x1b[2J" in text                # the escape sequence is shown, not run
    assert "4 quarantined keys not loaded by a later batch since" in text
    clear = [r["subject_cccd"] for r in FIRST + SECOND if r["subject_cccd"]]
    assert find_leaks([text, out.stderr], clear, ["Lê Thị Ánh"]) == []

    one = subprocess.run(cmd + ["--batch", str(b2)], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    assert f"batch {b2}" in one.stdout and f"batch {b1} " not in one.stdout and "G1 " in one.stdout


def test_a_failed_batch_keeps_its_failing_rows_as_masked_evidence(empty_db, tmp_path):
    """Quarantine share over the threshold: the batch fails and publishes nothing, yet its failing
    rows stay in quarantine (masked, with reasons, marked batch_failed) for `make quarantine`;
    ioc.data_quality counts no quarantined row for it, and a retry keeps one copy of each."""
    from ioc_pipeline.ingest import batch as batch_mod

    conn = migrated(empty_db)
    b1, _ = load(conn, empty_db)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), (SELECT watermark FROM audit.watermark) FROM core.civil_status")
        core_before = cur.fetchone()
    conn.commit()
    later = "2026-11-21T10:00:00+07:00"
    bad = [rec(f"F{i}", subject_cccd=BAD_CCCD, updated_at=later) for i in range(5)] + [
        good(400 + i, updated_at=later) for i in range(20)]          # 5 of 25 keys = 20% > 5%
    failed_ids = []
    for attempt in ("r3", "r4"):                                      # failed, then retried: same rows
        with pytest.raises(batch_mod.BatchFailed, match="quarantine share 20.0% of 25 keys"):
            run_batch(conn, empty_db, "civil_status", D + dt.timedelta(days=1), [bad], run_id=attempt)
        with conn.cursor() as cur:
            cur.execute("SELECT max(batch_id) FROM audit.batch")
            failed_ids.append(cur.fetchone()[0])
        conn.commit()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), (SELECT watermark FROM audit.watermark) FROM core.civil_status")
        assert cur.fetchone() == core_before                           # nothing published
        cur.execute("SELECT batch_id, count(*), bool_and(batch_failed) FROM quarantine.rejected_row"
                    " WHERE batch_id = ANY(%s) GROUP BY 1", (failed_ids,))
        assert cur.fetchall() == [(failed_ids[1], 5, True)]            # the retry's copy only
        cur.execute("SELECT status, rows_quarantined FROM audit.batch WHERE batch_id = %s", (failed_ids[1],))
        assert cur.fetchone() == ("failed", None)
        cur.execute("SELECT batch_status, rows_quarantined FROM ioc.data_quality WHERE date = %s",
                    (D + dt.timedelta(days=1),))
        assert cur.fetchone() == ("failed", None)
        cur.execute("SELECT count(*) FROM quarantine.rejected_row WHERE batch_id = %s", (b1,))
        assert cur.fetchone()[0] == 4                                  # committed quarantine untouched
    conn.commit()
    found = quarantine_report.batches(conn, "civil_status", failed_ids[1])
    assert len(found) == 1 and found[0].batch_failed and found[0].status == "failed"
    assert sorted(r.business_key for r in found[0].rows) == [f"F{i}" for i in range(5)]
    assert all(set(r.failing_values.values()) == {"048********"} for r in found[0].rows)
    assert all(any("12 digits" in x for x in r.reasons) for r in found[0].rows)
    assert not any(r.business_key.startswith("F") for r in quarantine_report.open_rows(conn, SOURCE))
    conn.close()

    env = pipeline_env(empty_db, tmp_path)
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline.py"), "quarantine", "civil_status",
                          "--batch", str(failed_ids[1])], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (f"batch {failed_ids[1]} (as of {D + dt.timedelta(days=1)}, failed" in out.stdout
            and "5 failing rows kept as evidence (the batch failed validation" in out.stdout), out.stdout
    assert "F0  " in out.stdout and "=048********]" in out.stdout
    assert find_leaks([out.stdout, out.stderr], [BAD_CCCD], []) == []
    none = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline.py"), "quarantine", "civil_status",
                           "--batch", "999999"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert none.returncode == 0 and "civil_status: no batch 999999 of civil_status" in none.stdout


def test_a_retried_validation_keeps_the_failed_batch_s_evidence_once(empty_db):
    from ioc_pipeline.ingest import batch as batch_mod
    from tests.integration.warehouse_helpers import KEY, sqlalchemy_url

    conn = migrated(empty_db)
    items = [rec(f"F{i}", subject_cccd=BAD_CCCD) for i in range(5)] + [good(i) for i in range(20)]
    plan = batch_mod.begin(conn, SOURCE, "r1", D, key=KEY, province_code="48")
    stats = batch_mod.extract(conn, SOURCE, plan, lambda: (iter(items), lambda: None), key=KEY)
    batch_mod.record_extract(conn, plan, stats)
    batch_mod.dedupe(conn, SOURCE, plan)
    for _ in range(2):                                   # Airflow retried the validate task
        with pytest.raises(batch_mod.BatchFailed, match="quarantine share"):
            batch_mod.validate(conn, SOURCE, plan, sqlalchemy_url=sqlalchemy_url(empty_db))
    batch_mod.fail(conn, plan, "validate: failed")
    batch_mod.cleanup(conn, plan)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT business_key), bool_and(batch_failed)"
                    " FROM quarantine.rejected_row WHERE batch_id = %s", (plan.batch_id,))
        assert cur.fetchone() == (5, 5, True)
    conn.close()
