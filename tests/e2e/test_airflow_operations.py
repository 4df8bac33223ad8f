"""Airflow's own machinery on the real DAGs, with a SQLite metadata database in a temporary
AIRFLOW_HOME: `airflow backfill create`, the refresh's DeadlineAlert, a task's execution_timeout.

Backfill runs are checked as the DagRun rows `airflow backfill create` writes (run type,
run_after) and the as-of date the pipeline resolves for each: executing them needs a scheduler
and an executor, minutes more per test run on two shared cores, and `begin` resolves the date
from exactly these fields (orchestration/asof.py). The deadline check does what the scheduler
loop does with expired deadlines (Deadline.handle_miss) and runs the queued callback through
the triggerer's CallbackTrigger, to a real local HTTP endpoint.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.alert_endpoint import AlertEndpoint
from tests.fixtures.pipeline_run import airflow_env as subprocess_env
from tests.reliability.support import conn_json, http_conn_json

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("airflow_metadata_driver.py")


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict:
    env = subprocess_env(tmp_path_factory.mktemp("airflow_ops"))
    for args in (["airflow", "db", "migrate"], ["airflow", "dags", "reserialize"],
                 [sys.executable, "-m", "ioc_pipeline.orchestration.pools"]):
        run = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, (args, run.stdout[-2000:], run.stderr[-2000:])
    return env


def driver(env: dict, *args: str):
    run = subprocess.run([sys.executable, str(DRIVER), *args], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    (line,) = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_backfill_of_three_nights_reports_the_dates_the_nightly_runs_would(airflow_env):
    from ioc_pipeline.orchestration import asof

    # the nights whose 00:30 run falls between 2026-11-18 00:00 and 2026-11-20 01:00 local
    run = subprocess.run(["airflow", "backfill", "create", "--dag-id", "ingest_land", "--from-date", "2026-11-18",
                          "--to-date", "2026-11-20T01:00"], env=airflow_env, cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    runs = driver(airflow_env, "backfill-as-of", "ingest_land")
    assert [r["run_type"] for r in runs] == ["backfill"] * 3
    assert [r["as_of"] for r in runs] == ["2026-11-17", "2026-11-18", "2026-11-19"]
    # the scheduled run of each slot (same run_after) reports the same day
    for r in runs:
        assert asof.resolve("scheduled", run_after=dt.datetime.fromisoformat(r["run_after"])).isoformat() == r["as_of"]


def test_missed_0600_deadline_notifies_once(airflow_env):
    endpoint = AlertEndpoint()
    try:
        result = driver({**airflow_env, "AIRFLOW_CONN_IOC_ALERTS": endpoint.conn_json()}, "deadline", "2026-11-20")
    finally:
        endpoint.close()
    assert result["deadline_times"] == ["2026-11-20T23:00:00+00:00"]        # 06:00 +07 on D+1
    assert (result["missed_first_pass"], result["callbacks"]) == (1, ["success"])
    assert (result["missed_second_pass"], result["callbacks_second_pass"]) == (0, [])
    (call,) = endpoint.calls
    assert call["event"] == "deadline_missed" and call["dag_id"] == "refresh_ioc_views"
    assert call["text"].startswith("refresh_ioc_views run scheduled__2026-11-20T19:30:00+00:00 missed its deadline")
    assert "2026-11-21 06:00 +07" in call["text"]


class SilentSource:
    """A REST source that accepts the request and never answers within the test."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(30)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_task_past_its_timeout_fails_naming_itself(airflow_env, make_warehouse, tmp_path):
    """ingest_civil_status built by the factory with a 5 s limit on extract and no retries."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "short_limits.py").write_text(
        "# an Airflow DAG file: the DagBag's safe mode reads files naming airflow and dag\n"
        "import datetime\n"
        "from ioc_pipeline.declaration import catalog\n"
        "from ioc_pipeline.orchestration import dag_factory\n"
        "dag_factory.TASK_TIMEOUTS['extract'] = datetime.timedelta(seconds=5)\n"
        "dag = dag_factory.build_ingest_dag(catalog.get('civil_status'))\n"
        "dag.get_task('extract').retries = 0\n")
    source, endpoint = SilentSource(), AlertEndpoint()
    env = {**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW_CONN_IOC_WAREHOUSE": conn_json(make_warehouse("ioc_ops_timeout")),   # migrated: the DAGs only check
           "AIRFLOW_CONN_SECTOR_CIVIL_STATUS": http_conn_json(source.port, "tok"),
           "AIRFLOW_CONN_IOC_ALERTS": endpoint.conn_json(), "AIRFLOW_VAR_IOC_PII_KEY": "ops-test-key-0123456789"}
    try:
        t0 = time.monotonic()
        run = subprocess.run(["airflow", "dags", "test", "ingest_civil_status", "2026-11-20"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=600, check=False)
        took = time.monotonic() - t0
    finally:
        source.close()
        endpoint.close()
    assert run.returncode != 0
    extract = [c for c in endpoint.calls if c["task_id"] == "extract"]
    assert len(extract) == 1, endpoint.calls
    assert extract[0]["text"].startswith("ingest_civil_status run ") and "failed in task extract" in extract[0]["text"]
    assert extract[0]["reason"] == "exceeded its time limit (execution_timeout 0:00:05)", extract[0]
    assert took < 300


def test_lineage_events_link_the_source_to_its_core_table_and_the_ioc_views(airflow_env, make_database,
                                                                             make_warehouse, tmp_path):
    """The OpenLineage provider's events of a real ingest_land run and the refresh, captured with
    the file transport: land's SQL table -> core.land -> the ioc views."""
    from simulator import land as sim_land

    warehouse_dsn, sim_dsn = make_warehouse("ioc_ops_lineage_wh"), make_database("ioc_ops_lineage_sim")
    sim_land.generate(sim_dsn, until=dt.date(2026, 11, 20), certificates=300, seed=6)
    events_file = tmp_path / "openlineage.jsonl"
    env = {**airflow_env, "AIRFLOW_CONN_IOC_WAREHOUSE": conn_json(warehouse_dsn),
           "AIRFLOW_CONN_SECTOR_LAND": conn_json(sim_dsn), "AIRFLOW_VAR_IOC_PII_KEY": "ops-test-key-0123456789",
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file),
                                                           "append": True}),
           "AIRFLOW__OPENLINEAGE__EXTRACTORS": "ioc_pipeline.orchestration.lineage.IocTaskExtractor",
           "AIRFLOW__OPENLINEAGE__NAMESPACE": "ioc-test"}
    for dag_id in ("ingest_land", "refresh_ioc_views"):
        run = subprocess.run(["airflow", "dags", "test", dag_id, "2026-11-20", "-c", '{"as_of_date": "2026-11-20"}'],
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
        assert run.returncode == 0, (dag_id, run.stdout[-3000:])
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]

    def datasets(job: str, side: str) -> set[str]:
        return {f"{d['namespace']}/{d['name']}" for e in events if e["job"]["name"] == job
                and e["eventType"] == "COMPLETE" for d in e.get(side, [])}

    wh = f"postgres://{_host_port(warehouse_dsn)}/{_db(warehouse_dsn)}"
    land_table = f"postgres://{_host_port(sim_dsn)}/{_db(sim_dsn)}.public.land_certificates"
    core = f"{wh}.core.land"
    assert land_table in datasets("ingest_land.extract", "inputs")
    assert land_table in datasets("ingest_land.publish", "inputs")
    assert datasets("ingest_land.publish", "outputs") == {core}
    assert core in datasets("refresh_ioc_views.refresh_views", "inputs")
    assert {f"{wh}.ioc.indicator_values", f"{wh}.ioc.indicator_history"} <= datasets(
        "refresh_ioc_views.refresh_views", "outputs")
    # every task of both runs has its events, and the runs themselves
    jobs = {e["job"]["name"] for e in events}
    assert {"ingest_land", "refresh_ioc_views", "ingest_land.begin", "refresh_ioc_views.reconcile"} <= jobs
    assert all(e["job"]["namespace"] == "ioc-test" for e in events)


def _host_port(dsn: str) -> str:
    import psycopg2.extensions

    p = psycopg2.extensions.parse_dsn(dsn)
    host = "localhost" if p["host"].startswith("/") else p["host"]
    return f"{host}:{p.get('port') or 5432}"


def _db(dsn: str) -> str:
    import psycopg2.extensions

    return psycopg2.extensions.parse_dsn(dsn)["dbname"]
