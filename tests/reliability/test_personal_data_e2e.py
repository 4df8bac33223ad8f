"""Personal data, secrets, access and notification after a real run with faults: `airflow dags
test` of every REST and SQL ingest DAG and refresh_ioc_views against the simulator (503 and 429
on, hostile rows planted, one source failing its batch), then scans of everything the run left:
every text column of every table in every schema, the task logs, Airflow's XComs."""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import threading

import psycopg2
import pytest

from simulator.faults import Faults
from simulator.server import make_server
from tests.e2e.test_pipeline_end_to_end import _Webhook
from tests.integration.warehouse_helpers import find_leaks
from tests.reliability.conftest import TOKEN, generate_all
from tests.reliability.support import REPO, SOURCES, conn_json, http_conn_json, rows
from tests.reliability.test_hostile_input import STAMP, plant

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

D = dt.date(2026, 11, 20)
DB_PASSWORD = "wh-Secret-Pw-9d1c"     # trust auth ignores it; it must still never be shown
PII_KEY = "reliability-pii-key-3f0e77aa"
PLANTED_ID = "048197000321"


def airflow_env(tmp_path, warehouse_dsn, sim_dsn, port, webhook, key=PII_KEY) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Ho_Chi_Minh",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "airflow" / "logs"),
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        "GX_ANALYTICS_ENABLED": "false",
        "AIRFLOW_CONN_IOC_WAREHOUSE": conn_json(warehouse_dsn, password=DB_PASSWORD),
        "AIRFLOW_VAR_IOC_PII_KEY": key,
        "IOC_PROVINCE_CODE": "48",
        "IOC_ALERT_WEBHOOK": webhook,
    }
    for code in ("civil_status", "population", "public_services"):
        env[f"AIRFLOW_CONN_SECTOR_{code.upper()}"] = http_conn_json(port, TOKEN)
    for code in ("land", "tuition"):
        env[f"AIRFLOW_CONN_SECTOR_{code.upper()}"] = conn_json(sim_dsn)
    return env


def dags_test(env, dag_id, logdir) -> tuple[int, str]:
    out = logdir / f"{dag_id}.log"
    with open(out, "wb") as f:
        code = subprocess.run(["airflow", "dags", "test", dag_id, D.isoformat(), "-c",
                               json.dumps({"as_of_date": D.isoformat()})],
                              env=env, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=600).returncode
    return code, out.read_text(errors="replace")


@pytest.fixture
def run_with_faults(make_database, tmp_path):
    warehouse_dsn, sim_dsn = make_database("ioc_rel_e2e_wh"), make_database("ioc_rel_e2e_sim")
    generate_all(sim_dsn)
    # tuition: 40 payments of 0 VND push its batch over the 5 % quarantine threshold
    clean = ("NOT EXISTS (SELECT 1 FROM sim.tuition_truth t WHERE t.payment_id = tuition_payments.payment_id"
             " AND (t.sim_fault IS NOT NULL OR t.sim_duplicate IS NOT NULL))")
    for i in range(40):
        plant(sim_dsn, "public.tuition_payments", "payment_id", clean,
              {"payment_id": f"ZERO{i}", "amount_vnd": 0, "updated_at": STAMP})
    # a land owner ID that breaks the rules (quarantined, shown masked) planted with SQL in it
    plant(sim_dsn, "public.land_certificates", "certificate_no", "owner_kind = 'person'",
          {"certificate_no": "HOSTILE'; DROP TABLE core.land; --", "owner_cccd": PLANTED_ID + "'--",
           "updated_at": STAMP})
    server = make_server(sim_dsn, port=0, token=TOKEN, faults=Faults(unavailable=0.1, throttled=0.1, seed=4))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = _Webhook()
    env = airflow_env(tmp_path, warehouse_dsn, sim_dsn, server.server_address[1], hook.url)
    logdir = tmp_path / "out"
    logdir.mkdir()
    subprocess.run(["airflow", "db", "migrate"], env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    results = {dag: dags_test(env, dag, logdir) for dag in [f"ingest_{c}" for c in SOURCES] + ["refresh_ioc_views"]}
    yield {"warehouse": warehouse_dsn, "sim": sim_dsn, "env": env, "results": results, "hook": hook,
           "tmp": tmp_path, "logdir": logdir}
    hook.close()
    server.shutdown()
    server.server_close()


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


def check_no_clear_id_secret_or_key_anywhere(run_with_faults):
    r = run_with_faults
    codes = {dag: code for dag, (code, _) in r["results"].items()}
    assert codes == {**{f"ingest_{c}": 0 for c in SOURCES}, "ingest_tuition": 1, "refresh_ioc_views": 0}, \
        {d: out[-2000:] for d, (c, out) in r["results"].items() if c}

    ids, names = clear_personal_values(r["sim"])
    stored = every_text_value(r["warehouse"])
    logs = [out for _, out in r["results"].values()]
    logs += [p.read_text(errors="replace") for p in (r["tmp"] / "airflow").rglob("*.log")]
    xcoms = xcom_values(r["tmp"] / "airflow")
    assert len(xcoms) >= 3 * len(SOURCES), "the batch plans and results travel through XCom"
    # place names ("Phường Bùi Hữu Nghĩa") are also people's names: public reference, not leaks
    places = {n for (n,) in rows(r["warehouse"], "SELECT name FROM core.admin_unit")}
    public = [v for v in stored if v not in places]
    assert find_leaks(public + logs + xcoms, ids, names) == []
    # the scan finds what it looks for
    assert find_leaks([f"x{PLANTED_ID}y"], ids, names) == [PLANTED_ID]
    everything = "\n".join(stored + logs + xcoms)
    for secret in (DB_PASSWORD, TOKEN, PII_KEY):
        assert secret not in everything, "a secret was written out"
    # quarantine shows the planted ID masked
    (values,), = rows(r["warehouse"], "SELECT failing_values::text FROM quarantine.rejected_row"
                                      " WHERE business_key LIKE 'HOSTILE%%'")
    assert "048******" in values and PLANTED_ID not in values
    assert rows(r["warehouse"], "SELECT to_regclass('core.land') IS NOT NULL") == [(True,)]


def check_failed_batch_called_the_webhook_once_without_personal_data(run_with_faults):
    r = run_with_faults
    calls = [c for c in r["hook"].calls if c.get("source") == "tuition"]
    assert len(calls) == 1, r["hook"].calls
    call = calls[0]
    assert call["dag_id"] == "ingest_tuition" and call["run_id"] and "quarantine share" in call["reason"]
    assert call["text"].startswith("ingest_tuition run ") and "\n" not in call["text"]
    ids, names = clear_personal_values(r["sim"])
    assert find_leaks([json.dumps(c) for c in r["hook"].calls], ids, names) == []
    assert [c["source"] for c in r["hook"].calls] == ["tuition"]   # the other sources loaded
    (status, error), = rows(r["warehouse"], "SELECT last_status, last_error FROM ioc.source_freshness"
                                            " WHERE source_code = 'tuition'")
    assert status == "failed" and "quarantine share" in error


def check_ioc_reader_sees_only_ioc_and_never_the_key_and_a_changed_key_is_refused(run_with_faults):
    r = run_with_faults
    conn = psycopg2.connect(r["warehouse"])
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
    assert not [v for v in every_text_value(r["warehouse"]) if PII_KEY in v]
    assert rows(r["warehouse"], "SELECT count(*) FROM audit.pii_key") == [(1,)]

    env = {**r["env"], "AIRFLOW_VAR_IOC_PII_KEY": "another-key-0123456789abcdef"}
    (r["logdir"] / "changed-key").mkdir()
    code, out = dags_test(env, "ingest_civil_status", r["logdir"] / "changed-key")
    assert code == 1 and "ioc_pii_key differs" in out
    assert "another-key-0123456789abcdef" not in out
    assert rows(r["warehouse"], "SELECT count(*) FROM audit.pii_key") == [(1,)]   # the new key was not adopted


def test_run_with_faults_leaks_nothing_notifies_once_and_keeps_access_closed(run_with_faults):
    """One real run (about a minute of DAGs), three checks."""
    check_no_clear_id_secret_or_key_anywhere(run_with_faults)
    check_failed_batch_called_the_webhook_once_without_personal_data(run_with_faults)
    check_ioc_reader_sees_only_ioc_and_never_the_key_and_a_changed_key_is_refused(run_with_faults)
