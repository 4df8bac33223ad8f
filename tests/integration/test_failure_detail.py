"""A run with many failed files keeps every reason (audit.source_run.error_detail, one per line)
and shows the short form in ioc.source_freshness.last_error: whole reasons, then "(+N more)"."""
from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from ioc_pipeline import failure_text
from tests.integration.warehouse_helpers import migrated, run_file_deliveries

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
BROKEN_HEADER = "visit_id,facility_code,commune_code,visit_at,identification\n"   # two columns missing


def test_every_failed_file_is_kept_and_last_error_is_cut_between_reasons(empty_db, tmp_path):
    conn = migrated(empty_db)
    names = []
    for n in range(12):
        path = tmp_path / "health" / f"bhyt_visits_BV-{n:02d}_20261115.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BROKEN_HEADER + "v1,48001,20194,2026-11-15 08:00:00,paper\n", encoding="utf-8")
        past = time.time() - 120
        os.utime(path, (past, past))
        names.append(path.relative_to(tmp_path).as_posix())

    result = run_file_deliveries(conn, empty_db, "health_visits", AS_OF, tmp_path, run_id="many_failures")
    assert result["files_failed"] == 12

    with conn.cursor() as cur:
        cur.execute("SELECT error, error_detail FROM audit.source_run WHERE run_key = 'health_visits/many_failures'")
        error, detail = cur.fetchone()
        cur.execute("SELECT last_error FROM ioc.source_freshness WHERE source_code = 'health_visits'")
        (last_error,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM audit.batch WHERE source_code = 'health_visits' AND error_detail IS NOT NULL")
        (batches_with_detail,) = cur.fetchone()
    conn.commit()

    lines = detail.splitlines()
    assert sorted(line.split(":", 1)[0] for line in lines) == sorted(names)   # every file, one per line
    assert all("patient_cccd" in line for line in lines)
    assert len(error) <= failure_text.SHORT_LIMIT and last_error == error
    kept, more = error.rsplit(" (+", 1)
    assert kept.split("; ") == lines[:len(kept.split("; "))]                   # whole reasons only
    assert more == f"{12 - len(kept.split('; '))} more)"
    assert batches_with_detail == 12
