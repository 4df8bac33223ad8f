"""Source faults (sources.md "REST protocol" and "What goes wrong", operations.md "Failure
behaviour"), each through the real extractor and batch against the simulator or a real source
database: the batch loads whole or not at all, and a failure is recorded with one line that
says what happened and what to do."""
from __future__ import annotations

import datetime as dt

import psycopg2
import pytest

from ioc_pipeline.ingest import batch
from ioc_pipeline.extract import sql_source
from ioc_pipeline.extract.rest import SourceError
from simulator import land as sim_land
from tests.integration.warehouse_helpers import migrated
from tests.reliability.conftest import TOKEN
from tests.reliability.support import conn_json, http_conn_json, rows, run_source, scalar, snapshot, diff
from tests.reliability.test_hostile_input import STAMP, plant

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 20)
FAST = {"max_attempts": 2, "backoff_base": 0.0, "backoff_max": 0.0, "timeout": 1.0}
NO_FAULTS = {"503": 0, "429": 0, "html": 0, "truncate": 0, "slow": 0, "race": 0}


def set_faults(sim, **values):
    server = sim["server"]
    server.decider.set(server.decider.faults.updated({**NO_FAULTS, **values}))


def last_batch(dsn):
    return rows(dsn, "SELECT status, error FROM audit.batch ORDER BY batch_id DESC LIMIT 1")[0]


def one_line(error: str, *words: str) -> None:
    assert error and "\n" not in error and len(error) <= 500, error
    for w in words:
        assert w in error, (w, error)


@pytest.mark.parametrize("fault, words", [
    ({"503": 1}, ("gave up after 2 attempts", "HTTP 503", "re-run")),
    ({"429": 1}, ("gave up after 2 attempts", "HTTP 429", "re-run")),
    ({"html": 1}, ("gave up after 2 attempts", "HTTP 502", "re-run")),
    ({"truncate": 1}, ("gave up after 2 attempts", "not valid JSON", "re-run")),
    ({"slow": 1, "slow_seconds": 2.5}, ("gave up after 2 attempts", "timed out", "re-run")),
], ids=["503", "429", "html", "truncated", "timeout"])
def test_rest_transport_fault_that_never_clears_fails_the_batch_and_loads_nothing(civil_sim, warehouse_db, fault, words):
    conn = migrated(warehouse_db)
    before = snapshot(warehouse_db, schemas=("core", "quarantine", "mart"))
    set_faults(civil_sim, **fault)
    with pytest.raises(SourceError):
        run_source(conn, warehouse_db, "civil_status", D, "faulty", **FAST)
    status, error = last_batch(warehouse_db)
    assert status == "failed"
    one_line(error, "civil_status", *words)
    assert diff(snapshot(warehouse_db, schemas=("core", "quarantine", "mart")), before) == []
    assert scalar(warehouse_db, "SELECT count(*) FROM audit.watermark") == 0
    conn.close()


def test_rest_transient_faults_are_retried_to_the_same_result(civil_sim, make_warehouse):
    """503, 429, HTML, truncated bodies and slow answers at once, then a clean run: same content."""
    clean_dsn, faulty_dsn = make_warehouse("ioc_rel_clean"), make_warehouse("ioc_rel_faulty")
    conn = migrated(clean_dsn)
    _, _, clean = run_source(conn, clean_dsn, "civil_status", D, "clean", **FAST)
    conn.close()
    set_faults(civil_sim, **{"503": 0.2, "429": 0.15, "html": 0.1, "truncate": 0.1, "slow": 0.05, "slow_seconds": 1.5,
                       "seed": 5})
    conn = migrated(faulty_dsn)
    _, _, faulty = run_source(conn, faulty_dsn, "civil_status", D, "faulty",
                              **{**FAST, "max_attempts": 10, "backoff_max": 0.01})
    conn.close()
    assert faulty == clean and clean["rows_loaded"] > 1000
    core = ("core", "quarantine")
    assert diff(snapshot(faulty_dsn, schemas=core, volatile=True), snapshot(clean_dsn, schemas=core, volatile=True)) == []


def test_refused_token_fails_at_once_with_a_line_naming_the_connection(civil_sim, warehouse_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_CIVIL_STATUS", http_conn_json(civil_sim["port"], "not-the-token"))
    conn = migrated(warehouse_db)
    with pytest.raises(SourceError) as err:
        run_source(conn, warehouse_db, "civil_status", D, "refused", **FAST)
    conn.close()
    assert (err.value.status, err.value.attempts) == (401, 1)
    status, error = last_batch(warehouse_db)
    one_line(error, "HTTP 401", "token", "refused", "check the connection")
    assert "not-the-token" not in error and TOKEN not in error


def test_records_moving_between_pages_every_time_fail_after_three_extractions(civil_sim, warehouse_db):
    set_faults(civil_sim, race=1)
    conn = migrated(warehouse_db)
    with pytest.raises(batch.BatchFailed):
        run_source(conn, warehouse_db, "civil_status", D, "race", **FAST)
    conn.close()
    one_line(last_batch(warehouse_db)[1], "distinct keys received, the source reported", "after 3 extractions",
             "nothing was loaded")
    assert scalar(warehouse_db, "SELECT count(*) FROM core.civil_status") == 0


def run_civil_status(dsn: str, run_id: str):
    conn = migrated(dsn)
    try:
        return run_source(conn, dsn, "civil_status", D, run_id, **FAST)
    finally:
        conn.close()


def test_zero_rows_where_the_source_reported_many_fails_the_batch(warehouse_db, raw_source):
    raw_source.page([], total=500)
    with pytest.raises(batch.BatchFailed):
        run_civil_status(warehouse_db, "empty")
    one_line(last_batch(warehouse_db)[1], "0 distinct keys received, the source reported 500", "nothing was loaded")


@pytest.mark.parametrize("distinct, loads", [(1001, True), (1000, False)], ids=["keys_complete", "key_missing"])
def test_page_longer_than_page_size_loads_when_its_keys_are_complete(warehouse_db, raw_source, distinct, loads):
    """1001 items on a page of size 1000: page_size bounds the request only; the distinct keys
    against total_items decide (one key served twice and another missing still fails)."""
    from tests.integration.test_batch_civil_status import rec

    raw_source.page([rec(f"K{i % distinct}", subject_cccd=f"048225{i % distinct:06d}") for i in range(1001)],
                    total=1001)
    if loads:
        _, stats, published = run_civil_status(warehouse_db, "long-page")
        assert (stats.rows_read, stats.distinct_keys, published["rows_loaded"]) == (1001, 1001, 1001)
        return
    with pytest.raises(batch.BatchFailed):
        run_civil_status(warehouse_db, "long-page")
    one_line(last_batch(warehouse_db)[1], "1000 distinct keys received, the source reported 1001", "nothing was loaded")
    assert scalar(warehouse_db, "SELECT count(*) FROM core.civil_status") == 0


def test_unknown_extra_field_is_loaded_and_reported_as_drift(civil_sim, warehouse_db):
    plant(civil_sim["dsn"], "sim.civil_status_records", "record_id",
          "sim_fault IS NULL AND NOT sim_served_twice AND subject_cccd IS NOT NULL",
          {"record_id": "DRIFT1", "updated_at": STAMP, "sim_wire_override": {"favourite_colour": "blue"}})
    conn = migrated(warehouse_db)
    plan, stats, published = run_source(conn, warehouse_db, "civil_status", D, "drift", **FAST)
    conn.close()
    assert stats.extra_columns == ["favourite_colour"] and published["rows_loaded"] > 0
    assert rows(warehouse_db, "SELECT status, extra_columns FROM audit.batch") == [("committed", ["favourite_colour"])]
    assert scalar(warehouse_db, "SELECT count(*) FROM core.civil_status WHERE record_id = 'DRIFT1'") == 1


def test_source_database_disappearing_mid_read_fails_the_batch_and_a_retry_says_so(make_database, make_warehouse,
                                                                                   monkeypatch):
    warehouse_dsn, source_dsn = make_warehouse("ioc_rel_wh"), make_database("ioc_rel_land")
    sim_land.generate(source_dsn, until=D, certificates=600, seed=11)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_LAND", conn_json(source_dsn))
    monkeypatch.setattr(sql_source, "ITERSIZE", 50)   # several round trips for 600 rows
    dbname = psycopg2.extensions.parse_dsn(source_dsn)["dbname"]

    def drop_database_mid_read(fetch):
        def wrapped():
            items, total = fetch()

            def gen():
                for n, item in enumerate(items):
                    if n == 120:   # the source's operator drops the database under us
                        admin = psycopg2.connect(source_dsn.replace(f"dbname={dbname}", "dbname=postgres"))
                        admin.autocommit = True
                        admin.cursor().execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
                        admin.close()
                    yield item
            return gen(), total
        return wrapped

    conn = migrated(warehouse_dsn)
    with pytest.raises(sql_source.SqlSourceError):
        run_source(conn, warehouse_dsn, "land", D, "gone", wrap=drop_database_mid_read)
    one_line(last_batch(warehouse_dsn)[1], "land: reading public.land_certificates failed after")
    # the retry of the extract task cannot connect and says which connection
    with pytest.raises(sql_source.SqlSourceError):
        run_source(conn, warehouse_dsn, "land", D, "gone-retry")
    conn.close()
    one_line(last_batch(warehouse_dsn)[1], "cannot connect to the source database of connection 'sector_land'",
             "does not exist")
    assert scalar(warehouse_dsn, "SELECT count(*) FROM core.land") == 0
    assert rows(warehouse_dsn, "SELECT DISTINCT status FROM audit.batch") == [("failed",)]
