"""Operated like a production deployment: every task and DAG has a time limit, REST sources have
their pool, refresh_ioc_views carries its 06:00 deadline, backfills resolve like nightly runs."""
from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag

from ioc_pipeline.config import LOCAL_TZ, REPO_ROOT
from ioc_pipeline.declaration import catalog
from ioc_pipeline.orchestration import asof, dag_factory, pools

UTC = dt.UTC


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


def test_every_task_and_dag_has_a_time_limit(dagbag):
    for dag in dagbag.dags.values():
        assert dag.dagrun_timeout, dag.dag_id
        for t in dag.tasks:
            assert t.execution_timeout == dag_factory.TASK_TIMEOUTS[t.task_id], (dag.dag_id, t.task_id)
            assert t.execution_timeout < dag.dagrun_timeout, (dag.dag_id, t.task_id)


def test_rest_extractions_take_a_slot_of_their_source_pool(dagbag):
    wanted = pools.wanted()
    for s in catalog.load().values():
        extract = dagbag.dags[s.dag_id].get_task("load_files" if s.kind == "file" else "extract")
        if s.kind == "rest":
            assert extract.pool == s.connection and wanted[s.connection][0] >= 1
        else:
            assert extract.pool == "default_pool"
    assert set(wanted) == {s.connection for s in catalog.load().values() if s.kind == "rest"}


def test_nightly_refresh_deadline_is_0600_local_the_next_morning(dagbag):
    dag = dagbag.dags["refresh_ioc_views"]
    (alert,) = dag.deadline
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.callback.path == "ioc_pipeline.orchestration.notify.IocNotifier"
    # the nightly run that reports D = 2026-11-20 is scheduled at 02:30 local on D+1
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable   # the scheduler's side of the DAG's cron

    assert dag.timetable.timetable.expression == dag_factory.REFRESH_CRON
    slot = CronTriggerTimetable(dag_factory.REFRESH_CRON, timezone=LOCAL_TZ).next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=pendulum.datetime(2026, 11, 21, 0, 0, tz=LOCAL_TZ), latest=None,
                                    catchup=True)).logical_date
    assert asof.resolve("scheduled", run_after=slot) == dt.date(2026, 11, 20)
    assert (slot + alert.interval).in_timezone(LOCAL_TZ).to_datetime_string() == "2026-11-21 06:00:00"


def test_backfill_run_reports_the_day_its_nightly_run_would():
    # the nightly slot 2026-11-21 00:30 local = 2026-11-20 17:30 UTC reports 2026-11-20
    slot = dt.datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    assert asof.resolve("backfill", logical_date=slot, run_after=slot) == asof.resolve("scheduled", run_after=slot)
    assert asof.resolve("backfill", logical_date=slot, run_after=slot) == dt.date(2026, 11, 20)
