"""Quarantine listing (`make quarantine`) against real civil_status batches: reasons with counts per
batch, rows with masked failing values, keys still open until a later batch loads them, and
source values made harmless for a terminal."""
import datetime as dt
import json
import os
import subprocess
import sys

import psycopg2
import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.quality import quarantine_report
from tests.conftest import REPO
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import find_leaks, migrated, run_batch

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
    p = psycopg2.extensions.parse_dsn(warehouse_db)
    env = {**os.environ, "IOC_DATA_DIR": str(tmp_path),
           "AIRFLOW_CONN_IOC_WAREHOUSE": json.dumps({"conn_type": "postgres", "host": p["host"],
                                                      "port": int(p.get("port") or 5432), "login": p["user"],
                                                      "schema": p["dbname"]})}
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
