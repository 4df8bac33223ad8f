"""Issue 6, "Done when": an analyst adds a critical batch-level expectation that the current data
breaks (a row-count bound) to tuition.json; the next tuition run that has rows to load fails with a
message naming that expectation, the tuition indicators keep their previous values and
ioc.source_freshness shows the failure; removing it again lets the next run load.

The run goes through the same functions the ingest_tuition tasks call (begin, the real SQL
extractor against the simulator's tuition table, validate, publish, fail as the failure callback
does), with the suite folder pointed at a copy the test edits (the repository's file is not touched).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil

import psycopg2
import pytest

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline import config
from ioc_pipeline.views import refresh
from simulator import tuition
from tests.integration.warehouse_helpers import PROVINCE, migrated, session

pytestmark = pytest.mark.integration

D1 = dt.date(2026, 11, 19)
D2 = dt.date(2026, 11, 20)
BOUND = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1, "max_value": 1},
         "severity": "critical", "meta": {"reason": "tuition batches must hold exactly one payment (test bound)"}}


def run_tuition(conn, dsn, as_of, run_id) -> dict:
    """One ingest_tuition run: begin -> extract -> dedupe -> validate -> publish; a failure is
    recorded like the DAG's failure callback records it."""
    return runner.run_window(session(conn, dsn), catalog.get("tuition"), run_id, as_of)[1]


def tuition_values(conn) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT admin_code, numerator, denominator, value FROM ioc.indicator_values"
                    " WHERE indicator_code = 'TUITION_NONCASH_PCT'")
        values = {r[0]: r[1:] for r in cur.fetchall()}
    conn.commit()
    return values


def freshness(conn) -> tuple:
    with conn.cursor() as cur:
        cur.execute("SELECT last_status, last_error FROM ioc.source_freshness WHERE source_code = 'tuition'")
        row = cur.fetchone()
    conn.commit()
    return row


def test_a_critical_batch_expectation_added_in_json_fails_the_next_run_until_removed(
        make_database, make_warehouse, tmp_path, monkeypatch):
    sim, dsn = make_database("ioc_sim"), make_warehouse()
    tuition.generate(sim, until=D1, payments=6000, seed=11)
    p = psycopg2.extensions.parse_dsn(sim)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_TUITION", json.dumps({
        "conn_type": "postgres", "host": p["host"], "port": int(p["port"]) if p.get("port") else None,
        "login": p.get("user", "postgres"), "schema": p["dbname"]}))
    suites = tmp_path / "expectations"
    shutil.copytree(config.EXPECTATIONS_DIR, suites)
    monkeypatch.setattr(config, "EXPECTATIONS_DIR", suites)
    suite_file = suites / "tuition.json"
    original = suite_file.read_text(encoding="utf-8")

    conn = migrated(dsn)
    assert run_tuition(conn, dsn, D1, "d1")["rows_loaded"] > 5000
    refresh.refresh(conn, D1, PROVINCE)
    before = tuition_values(conn)
    assert before["48"][1] > 1000   # the 2026 window (a flow indicator)

    # the analyst adds the bound; the source has new payments for D2
    doc = json.loads(original)
    doc["expectations"].append(BOUND)
    suite_file.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    tuition.generate(sim, until=D2, payments=6000, seed=11)
    index = len(doc["expectations"]) - 1
    with pytest.raises(batch.BatchFailed) as failed:
        run_tuition(conn, dsn, D2, "d2")
    message = str(failed.value)
    assert f"#{index} expect_table_row_count_to_be_between failed" in message and "tuition.json" in message
    refresh.refresh(conn, D2, PROVINCE)
    assert tuition_values(conn) == before                      # last known good
    status, error = freshness(conn)
    assert status == "failed" and "expect_table_row_count_to_be_between" in error

    # removed again: the next run loads the D2 window
    suite_file.write_text(original, encoding="utf-8")
    loaded = run_tuition(conn, dsn, D2, "d2-again")
    assert loaded["rows_loaded"] > 0
    refresh.refresh(conn, D2, PROVINCE)
    assert freshness(conn) == ("success", None)
    assert tuition_values(conn)["48"][1] > before["48"][1]
