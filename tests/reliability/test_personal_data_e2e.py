"""Personal data, secrets, access and notification after a real run with faults: `airflow dags
test` of every REST and SQL ingest DAG and refresh_ioc_views against the simulator (503 and 429
on, hostile rows planted, one source failing its batch), then scans of everything the runs left:
every text column of every table in every schema, the task logs, Airflow's XComs.

The run is the `faults` step of the session's `pipeline_run` (tests/fixtures/pipeline_run.py),
after the nightly runs the end-to-end tests check: the scans cover those too."""
from __future__ import annotations

import json
import sqlite3

import psycopg2
import pytest

from tests.fixtures.pipeline_run import DB_PASSWORD, OTHER_KEY, PII_KEY, PLANTED_ID, TOKEN
from tests.integration.warehouse_helpers import find_leaks
from tests.reliability.support import SOURCES, rows

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def clear_personal_values(sim_dsn) -> tuple[set[str], set[str]]:
    ids, names = {PLANTED_ID}, set()
    for query in ("SELECT subject_cccd, subject_full_name FROM sim.civil_status_records",
                  "SELECT owner_cccd, NULL FROM public.land_certificates"):
        for cid, name in rows(sim_dsn, query):
            ids.add(cid)
            names.add(name)
    return {i for i in ids if i}, {n for n in names if n}


def every_text_value(dsn) -> list[str]:
    """Every text/json value of every table in every schema, reference data included."""
    conn = psycopg2.connect(dsn)
    out = []
    with conn.cursor() as cur:
        cur.execute("""SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c
                         JOIN information_schema.tables t USING (table_schema, table_name)
                        WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
                          AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')""")
        for schema, table, column in cur.fetchall():
            cur.execute(f'SELECT "{column}"::text FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL')
            out.extend(r[0] for r in cur.fetchall())
    conn.close()
    return out


def xcom_values(airflow_home) -> list[str]:
    db = sqlite3.connect(airflow_home / "airflow.db")
    try:
        return [bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) else str(v)
                for (v,) in db.execute("SELECT value FROM xcom") if v is not None]
    finally:
        db.close()


def test_no_clear_id_secret_or_key_anywhere(pipeline_run):
    r = pipeline_run.step("faults")
    codes = {dag: code for dag, (code, _) in r.results.items()}
    assert codes == {**{f"ingest_{c}": 0 for c in SOURCES}, "ingest_tuition": 1, "refresh_ioc_views": 0}, \
        {d: out[-2000:] for d, (c, out) in r.results.items() if c}

    ids, names = clear_personal_values(r.sim)
    stored = every_text_value(r.warehouse)
    logs = [out for _, out in r.results.values()]
    logs += [p.read_text(errors="replace") for p in pipeline_run.airflow_home.rglob("*.log")]
    xcoms = xcom_values(pipeline_run.airflow_home)
    assert len(xcoms) >= 3 * len(SOURCES), "the batch plans and results travel through XCom"
    # place names ("Phường Bùi Hữu Nghĩa") are also people's names: public reference, not leaks
    places = {n for (n,) in rows(r.warehouse, "SELECT name FROM core.admin_unit")}
    public = [v for v in stored if v not in places]
    assert find_leaks(public + logs + xcoms, ids, names) == []
    # the scan finds what it looks for
    assert find_leaks([f"x{PLANTED_ID}y"], ids, names) == [PLANTED_ID]
    everything = "\n".join(stored + logs + xcoms)
    for secret in (DB_PASSWORD, TOKEN, PII_KEY):
        assert secret not in everything, "a secret was written out"
    # quarantine shows the planted ID masked
    (values,), = rows(r.warehouse, "SELECT failing_values::text FROM quarantine.rejected_row"
                                   " WHERE business_key LIKE 'HOSTILE%%'")
    assert "048******" in values and PLANTED_ID not in values
    assert rows(r.warehouse, "SELECT to_regclass('core.land') IS NOT NULL") == [(True,)]


def test_failed_batch_called_the_webhook_once_without_personal_data(pipeline_run):
    r = pipeline_run.step("faults")
    failures = [c for c in r.alerts if c["event"] == "task_failed"]   # besides stale-source notices
    calls = [c for c in failures if c.get("source") == "tuition"]
    assert len(calls) == 1, r.alerts
    call = calls[0]
    assert call["dag_id"] == "ingest_tuition" and call["run_id"] and "quarantine share" in call["reason"]
    assert call["text"].startswith("ingest_tuition run ") and "\n" not in call["text"]
    ids, names = clear_personal_values(r.sim)
    assert find_leaks([json.dumps(c) for c in r.alerts], ids, names) == []
    assert [c["source"] for c in failures] == ["tuition"]   # the other sources loaded
    (status, error), = rows(r.warehouse, "SELECT last_status, last_error FROM ioc.source_freshness"
                                         " WHERE source_code = 'tuition'")
    assert status == "failed" and "quarantine share" in error


def test_ioc_reader_sees_only_ioc_and_never_the_key_and_a_changed_key_is_refused(pipeline_run):
    r = pipeline_run.step("faults")
    conn = psycopg2.connect(r.warehouse)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("""SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                          AND n.nspname NOT LIKE 'pg_toast%%'""")
        relations = cur.fetchall()
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%%' AND nspname <> 'information_schema'")
        schemas = [s for (s,) in cur.fetchall()]
        cur.execute("SET ROLE ioc_reader")
        for schema, name, oid in relations:   # by oid: a name in a schema it cannot use would raise
            cur.execute("SELECT has_table_privilege(%s, 'SELECT')", (oid,))
            assert cur.fetchone()[0] == (schema == "ioc"), (schema, name)
        for schema in schemas:
            cur.execute("SELECT has_schema_privilege(%s, 'CREATE')", (schema,))
            assert cur.fetchone()[0] is False, schema
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT fingerprint FROM audit.pii_key")
        cur.execute("RESET ROLE")
    conn.close()
    # the key is in no column of any table (audit.pii_key holds a fingerprint of it)
    assert not [v for v in every_text_value(r.warehouse) if PII_KEY in v]
    assert rows(r.warehouse, "SELECT count(*) FROM audit.pii_key") == [(1,)]

    # the next step ran ingest_civil_status with another key
    code, out = pipeline_run.step("changed_key").results["ingest_civil_status"]
    assert code == 1 and "ioc_pii_key differs" in out
    assert OTHER_KEY not in out
    assert rows(pipeline_run.warehouse, "SELECT count(*) FROM audit.pii_key") == [(1,)]   # the new key was not adopted
