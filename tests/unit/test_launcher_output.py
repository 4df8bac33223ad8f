"""What `make demo`/`make run` print while a DAG runs and when it fails, and the task logs they
copy for the UI, from an `airflow dags test` output of the shape Airflow 3 writes."""
import json
import sys

from ioc_pipeline.config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import pipeline
from devtools import airflow_task_logs

RUN = "manual__2026-12-02T09:05:44.276956+00:00"
OUTPUT = f"""\
2026-12-02T09:05:40.1Z [info     ] Filling up the DagBag from /x/dags [airflow.dag_processing.dagbag.BundleDagBag] loc=dagbag.py:460
2026-12-02T09:05:46.5Z [info     ] [DAG TEST] starting task_id=begin map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-12-02T09:05:46.6Z [info     ] [DAG TEST] running task <TaskInstance: ingest_land.begin {RUN} [TaskInstanceState.SCHEDULED] ti_id=1> [airflow.sdk.definitions.dag]
2026-12-02T09:06:38.1Z [info     ] Task started                   [airflow.api_fastapi.execution_api.routes.task_instances] hostname=vm
2026-12-02T09:06:39.3Z [info     ] applying migration 001_schemas_and_roles.sql [ioc_pipeline.warehouse] loc=warehouse.py:88
2026-12-02T09:06:40.0Z [info     ] [DAG TEST] end task task_id=begin map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-12-02T09:06:40.1Z [info     ] [DAG TEST] starting task_id=extract map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-12-02T09:06:45.0Z [info     ] land batch 3: staging: 41,000 rows so far (8,200 rows/s, 5 s) [ioc_pipeline.ingest.batch] loc=progress.py:34
"""


def test_heartbeat_shows_the_running_task_and_its_latest_line():
    lines = OUTPUT.splitlines()
    assert pipeline.latest_progress("\n".join(lines[:1])) is None
    assert pipeline.latest_progress("\n".join(lines[:3])) == "begin: Airflow is starting the task"
    assert pipeline.latest_progress("\n".join(lines[:4])) == "begin: running, no progress line yet"
    assert pipeline.latest_progress("\n".join(lines[:5])) == "begin: applying migration 001_schemas_and_roles.sql"
    assert pipeline.latest_progress(OUTPUT) == "extract: land batch 3: staging: 41,000 rows so far (8,200 rows/s, 5 s)"
    later = OUTPUT + "2026-12-02T09:06:46.0Z [info     ] loaded suite land from x.json: 20 expectations [ioc_pipeline.ingest.validation]\n"
    assert pipeline.latest_progress(later).endswith("41,000 rows so far (8,200 rows/s, 5 s)")   # counting lines win


def test_every_failure_reason_on_its_own_line(capsys):
    reasons = [f"social/social_payments_2026{m:02d}.xlsx: sheet 'payments': column(s) missing: channel" for m in (1, 2, 3)]
    pipeline.report("ingest_social_payments", False, reasons, 41.2)
    pipeline.report("ingest_land", False, ["extract: land: gave up after 6 attempts"], 3)
    pipeline.report("ingest_tuition", True, [], 12)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ingest_social_payments failed, 3 reasons (41s):"
    assert out[1:4] == [f"    {r}" for r in reasons]
    assert out[4] == "ingest_land failed extract: land: gave up after 6 attempts (3s)"
    assert out[5] == "ingest_tuition success (12s)"


def test_task_output_is_cut_per_task_attempt_as_structured_records():
    run_id, attempts = airflow_task_logs.split_by_task(OUTPUT.splitlines())
    assert run_id == RUN
    assert set(attempts) == {("begin", -1), ("extract", -1)}
    (begin,) = attempts[("begin", -1)]
    assert begin[0].endswith("loc=dag.py:1501") and "end task" in begin[-1]
    record = airflow_task_logs.as_record(begin[3])
    assert record == {"timestamp": "2026-12-02T09:06:39.3Z", "level": "info",
                      "event": "applying migration 001_schemas_and_roles.sql", "logger": "ioc_pipeline.warehouse"}
    json.dumps(record)
    assert airflow_task_logs.as_record("Traceback (most recent call last):") == {"event": "Traceback (most recent call last):"}


def test_ui_port_moves_the_api_port_base_url_and_execution_api(monkeypatch):
    monkeypatch.setenv("IOC_UI_PORT", "22080")
    assert pipeline.ui_env(pipeline.ui_port()) == {
        "AIRFLOW__API__PORT": "22080", "AIRFLOW__API__BASE_URL": "http://localhost:22080",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://localhost:22080/execution/"}
