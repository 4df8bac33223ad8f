"""devtools/dag_runs.py: several `airflow dags test` runs in one process, on a real Airflow with
a SQLite metadata database and three small DAGs: one succeeds, one fails, one kills its process
in the middle of a task. Each DAG's output lands in its own file, the failed one ends non-zero,
the crashed one fails alone and the DAG after it still runs (in a fresh process)."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from devtools import dag_runs
from tests.fixtures.pipeline_run import airflow_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

DAGS = '''
import datetime as dt, os
from airflow.sdk import dag, task

def make(dag_id, body):
    @dag(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False)
    def _d():
        @task
        def only(params=None):
            body(params)
        only()
    return _d()

def ok(params):
    print("ok-task says", params["as_of_date"])

def slow(params):
    import time
    time.sleep(3)
    print("ok-task says", params["as_of_date"])

def fail(params):
    raise ValueError("fail-task refused its input")

def crash(params):
    os._exit(7)   # the whole process dies, as a segfault would

make("probe_ok", ok)
make("probe_fail", fail)
make("probe_crash", crash)
make("probe_slow", slow)
make("probe_after", slow)
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("dag_runs")
    (home / "dags").mkdir()
    (home / "dags" / "probes.py").write_text(textwrap.dedent(DAGS))
    env = {**airflow_env(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags")}
    run = subprocess.run(["airflow", "db", "migrate"], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return env


def test_each_dag_in_its_file_a_failure_and_a_crash_stay_with_their_dag(env, tmp_path):
    dags = ["probe_ok", "probe_slow", "probe_fail", "probe_crash", "probe_after"]
    events = list(dag_runs.runs(dags, {"as_of_date": "2026-11-20"}, tmp_path, env=env, beat_every=1))
    ends = {e.dag_id: e for e in events if e.kind == "end"}
    assert [e.dag_id for e in events if e.kind == "start"] == dags
    assert list(ends) == dags
    assert ends["probe_ok"].code == 0 and ends["probe_after"].code == 0
    # each event when it happens: the last DAG (3 s of sleep) has its own start, beats and time
    # each event when it happens: a slow DAG after another in the same process, and the first
    # after a crash, each has its own start, beats and time
    for slow in ("probe_slow", "probe_after"):
        assert ends[slow].code == 0 and ends[slow].seconds >= 3, ends[slow]
        assert any(e.kind == "beat" and e.dag_id == slow for e in events), slow
    assert ends["probe_fail"].code != 0 and not ends["probe_fail"].note
    assert ends["probe_crash"].code == 7 and "exited with 7 during the run" in ends["probe_crash"].note
    ok_log = (tmp_path / "probe_ok.log").read_text()
    assert "ok-task says 2026-11-20" in ok_log and "fail-task" not in ok_log
    assert "fail-task refused its input" in (tmp_path / "probe_fail.log").read_text()
    assert "ok-task says 2026-11-20" in (tmp_path / "probe_after.log").read_text()
