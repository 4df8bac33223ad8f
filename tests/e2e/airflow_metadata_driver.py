"""Run inside an Airflow environment (AIRFLOW_HOME with a migrated metadata DB and the DAGs
serialized) by tests/e2e/test_airflow_operations.py; prints one JSON document.

  backfill-as-of <dag_id>   the backfill runs `airflow backfill create` made: run type, run_after,
                            and the as-of date orchestration/asof.py resolves for each
  deadline <YYYY-MM-DD>     creates refresh_ioc_views' nightly (scheduled) run that reports D, then
                            does what the scheduler does with expired deadlines (Deadline.handle_miss,
                            the loop of SchedulerJobRunner) twice, and runs each queued callback the
                            way the triggerer does (CallbackTrigger.run)
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys


def backfill_as_of(dag_id: str) -> list[dict]:
    from sqlalchemy import select

    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from ioc_pipeline.orchestration import asof

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date)).all()
        return [{"run_type": str(getattr(r.run_type, "value", r.run_type)), "run_after": r.run_after.isoformat(),
                 "as_of": asof.resolve(r.run_type, logical_date=r.logical_date, run_after=r.run_after,
                                       param=(r.conf or {}).get("as_of_date")).isoformat()} for r in runs]


def scheduler_marks_missed_deadlines() -> int:
    """The scheduler loop's deadline step (SchedulerJobRunner._execute_... 'Check for expired Deadlines')."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from airflow.models import Deadline
    from airflow.utils.session import create_session

    with create_session() as session:
        expired = session.scalars(select(Deadline).where(Deadline.deadline_time < dt.datetime.now(dt.UTC))
                                  .where(~Deadline.missed)
                                  .options(selectinload(Deadline.callback), selectinload(Deadline.dagrun))).all()
        for deadline in expired:
            deadline.handle_miss(session)
        return len(expired)


async def triggerer_runs_queued_callbacks() -> list[str]:
    from sqlalchemy import select

    from airflow.models.callback import Callback, CallbackState
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session

    with create_session() as session:
        queued = session.scalars(select(Callback).where(Callback.state == CallbackState.QUEUED)).all()
        outcomes = []
        for callback in queued:
            trigger = CallbackTrigger(callback.data["path"], dict(callback.data["kwargs"]))
            async for event in trigger.run():
                callback.handle_event(event, session)
            outcomes.append(str(callback.state))
        return outcomes


def deadline(as_of: str) -> dict:
    import pendulum

    from airflow.models import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from ioc_pipeline.config import LOCAL_TZ

    slot = pendulum.parse(as_of, tz=LOCAL_TZ).add(days=1).replace(hour=2, minute=30)   # REFRESH_CRON's slot
    with create_session() as session:
        dag = SerializedDagModel.get_dag("refresh_ioc_views", session=session)
        run = dag.create_dagrun(run_id=f"scheduled__{slot.in_timezone('UTC').isoformat()}", logical_date=slot,
                                data_interval=(slot, slot), run_after=slot, run_type=DagRunType.SCHEDULED,
                                triggered_by=DagRunTriggeredByType.TIMETABLE, state=DagRunState.RUNNING,
                                session=session)
        session.flush()
        deadline_times = [d.deadline_time.isoformat() for d in session.query(Deadline).filter_by(dagrun_id=run.id)]
    first = scheduler_marks_missed_deadlines()
    callbacks = asyncio.run(triggerer_runs_queued_callbacks())
    second = scheduler_marks_missed_deadlines()
    callbacks_again = asyncio.run(triggerer_runs_queued_callbacks())
    return {"deadline_times": deadline_times, "missed_first_pass": first, "callbacks": callbacks,
            "missed_second_pass": second, "callbacks_second_pass": callbacks_again}


if __name__ == "__main__":
    command, arg = sys.argv[1], sys.argv[2]
    result = backfill_as_of(arg) if command == "backfill-as-of" else deadline(arg)
    print("RESULT " + json.dumps(result))
