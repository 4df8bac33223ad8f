"""scripts/celery_run.py (make celery-run) starts the components of a Celery deployment with
settings they agree on. Its commands go through the installed Airflow's own CLI parser; the full
run (too heavy for `make test`) is `make celery-run`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import celery_run  # noqa: E402

QUEUE = "ioc-celery-run-0123abcd"


@pytest.fixture
def comps():
    return celery_run.components(api_port=43123, queue=QUEUE, concurrency=3, worker_name=f"{QUEUE}@%h")


@pytest.fixture
def env():
    return celery_run.celery_env(
        metadata_url=celery_run.sqlalchemy_url({"host": "127.0.0.1", "port": "5432", "user": "postgres"}, "meta_x"),
        broker_url="redis://127.0.0.1:6379/0", api_port=43123, queue=QUEUE, concurrency=3,
        jwt_secret="jwt-secret", api_secret="api-secret")


def test_the_components_of_a_celery_deployment(comps):
    assert [c.name for c in comps] == ["api-server", "scheduler", "dag-processor", "celery-worker"]
    argv = {c.name: c.argv for c in comps}
    assert all(a[0] == "airflow" for a in argv.values())
    assert argv["api-server"][1] == "api-server" and "43123" in argv["api-server"]
    assert argv["scheduler"][1] == "scheduler"
    assert argv["dag-processor"][1] == "dag-processor"
    worker = argv["celery-worker"]
    assert worker[1:3] == ["celery", "worker"]
    assert worker[worker.index("--queues") + 1] == QUEUE
    assert worker[worker.index("--concurrency") + 1] == "3"


def test_every_component_uses_the_celery_executor_and_one_jwt_secret(env):
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "jwt-secret"
    # tasks go to this run's queue only; the worker reads that queue
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == QUEUE
    # workers reach the Execution API on the api-server's port
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:43123/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://postgres@127.0.0.1:5432/meta_x"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/meta_x"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    # only the runs the script triggers: no scheduled or asset-triggered extra runs
    assert env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False"


def test_component_commands_are_accepted_by_the_installed_airflow(comps, env, tmp_path):
    """The real parser with the script's own settings: `celery worker` exists only with the Celery
    provider installed and CeleryExecutor configured, and every option must be known."""
    code = ("import json, sys\nfrom airflow.cli import cli_parser\n"
            "for argv in json.loads(sys.argv[1]):\n    cli_parser.get_parser().parse_args(argv[1:])\n")
    argvs = [c.argv for c in comps] + [["airflow", "dags", "trigger", "ingest_civil_status", "--run-id", "r",
                                        "--conf", json.dumps({"as_of_date": "2026-11-20"})]]
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True, text=True,
                          env={**os.environ, **env, "AIRFLOW_HOME": str(tmp_path)}, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_password_is_quoted_in_the_database_url():
    url = celery_run.sqlalchemy_url({"host": "db", "port": "5433", "user": "u", "password": "p@ss/word"}, "m")
    assert url == "postgresql://u:p%40ss%2Fword@db:5433/m"


def test_executor_of_each_task_is_read_from_the_scheduler_log():
    # the scheduler's line as Airflow 3.3 writes it when it hands tasks to an executor
    line = ("2026-11-28T12:52:16.634595Z [info     ] Trying to enqueue tasks: [<TaskInstance: ingest_land.begin "
            "celery_run__2026-11-20__39069c12 [scheduled] ti_id=01a2>, <TaskInstance: ingest_land.extract "
            "celery_run__2026-11-20__39069c12 [scheduled] ti_id=01a3>] for executor: CeleryExecutor(parallelism=32) "
            "[airflow.jobs.scheduler_job_runner.SchedulerJobRunner]")
    found = celery_run.executors_from_scheduler_log("other line\n" + line + "\n")
    assert found == {("ingest_land", "begin", "celery_run__2026-11-20__39069c12"): "CeleryExecutor",
                     ("ingest_land", "extract", "celery_run__2026-11-20__39069c12"): "CeleryExecutor"}


def test_the_launcher_reuses_pipeline_py_instead_of_copying_it():
    source = (REPO / "scripts" / "celery_run.py").read_text()
    for function in ("airflow_env", "ensure_warehouse", "ensure_simulator", "dag_ids"):
        assert f"pipeline.{function}(" in source
        assert f"def {function}(" not in source
