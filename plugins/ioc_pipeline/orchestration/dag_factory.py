"""Builds the Airflow DAGs from the source catalog (operations.md, "DAGs").

One ingest DAG per catalog entry, all the same shape:

    begin -> extract -> validate -> publish        (+ cleanup as teardown)

and one refresh_ioc_views DAG scheduled on the Assets the ingest DAGs publish, with a
nightly fallback. Nothing heavy is imported at parse time: GX, psycopg2 and the reference
data are imported inside the tasks.
"""
from __future__ import annotations

import datetime as dt
import logging
import sys

import pendulum
from airflow.sdk import (DAG, Asset, AssetOrTimeSchedule, AsyncCallback, CronTriggerTimetable, DeadlineAlert,
                         DeadlineReference, Param, task)

from ioc_pipeline.declaration import catalog
from ioc_pipeline.orchestration import dag_docs
from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.config import LOCAL_TZ
from ioc_pipeline.orchestration import pools
from ioc_pipeline.orchestration.notify import IocNotifier

log = logging.getLogger(__name__)

OWNER = "ioc-data-engineering"
START = pendulum.datetime(2025, 1, 1, tz=LOCAL_TZ)
INGEST_CRON = "30 0 * * *"    # 00:30 local: the night after day D reports day D
REFRESH_CRON = "30 2 * * *"   # fallback when no ingest published
# The views of D must be refreshed by 06:00 local on D+1. The nightly refresh run's logical date is
# 02:30 local on D+1 (CronTriggerTimetable), so its deadline is that date + 3 h 30 min.
REFRESH_DEADLINE = dt.timedelta(hours=6) - dt.timedelta(hours=2, minutes=30)

# Limits from the measured durations (docs/performance.md): a nightly delta takes seconds per task
# (12.7 s for the whole province cycle); the long case is a source's first load of its whole
# history: 1M REST rows in 129 s end to end (extract 58 s, validate 41 s, publish 23 s). The
# limits leave room for a 10M-row history on a busy machine; a task past its limit fails naming
# itself (AirflowTaskTimeout) and notifies like any failure.
TASK_TIMEOUTS = {
    "begin": dt.timedelta(minutes=15),          # the migration check, the run's audit rows, the window
    "extract": dt.timedelta(hours=2),
    "validate": dt.timedelta(hours=1),
    "publish": dt.timedelta(hours=1),
    "cleanup": dt.timedelta(minutes=10),
    "load_files": dt.timedelta(hours=2),
    "finish": dt.timedelta(minutes=5),
    "refresh_views": dt.timedelta(minutes=30),  # 1.3 s at province scale
    "reconcile": dt.timedelta(minutes=30),
    "build_data_docs": dt.timedelta(minutes=30),
    "notify_freshness": dt.timedelta(minutes=5),
}
INGEST_RUN_TIMEOUT = dt.timedelta(hours=5)   # a 00:30 nightly run ends before the 06:00 deadline
REFRESH_RUN_TIMEOUT = dt.timedelta(hours=1)
AS_OF_PARAM = Param(None, type=["null", "string"], format="date",
                    description="As-of date D (YYYY-MM-DD); empty: the run's own date rule")
REPLAY_PARAM = Param(None, type=["null", "integer"], minimum=1,
                     description="Read again the window of this earlier batch (audit.batch.batch_id), e.g. after "
                                 "the source fixed rows that were quarantined; empty: the normal window")


def asset_for(source: Source) -> Asset:
    """The source's core table as an Asset, named by the table. (Name and URI changed together from
    `warehouse_<code>` / `ioc://`: a metadata DB holding the old ones has no name clash.)"""
    return Asset(name=source.core_table, uri=source.asset_uri, group="ioc_warehouse")


def landing_asset(source: Source) -> Asset:
    """A file source's deliveries, watched by the triggerer: a new or changed settled file in the
    landing folder starts the ingest DAG without waiting for the night (triggers.py)."""
    from airflow.sdk import AssetWatcher

    from ioc_pipeline.orchestration.triggers import LandingDeliveryTrigger

    return Asset(name=f"landing_{source.code}", uri=f"ioc://landing/{source.code}", group="ioc_landing",
                 watchers=[AssetWatcher(name=f"landing_{source.code}_watcher",
                                        trigger=LandingDeliveryTrigger(source_code=source.code))])


def _record_failure(context) -> None:
    """Task failure callback: record the failed batch (the notice follows: notify.IocNotifier)."""
    from ioc_pipeline.ingest import batch, runner
    from ioc_pipeline import warehouse
    from ioc_pipeline.orchestration import notify

    ti = context["ti"]
    dag_id = ti.dag_id
    reason = notify.failure_reason(context)
    if dag_id.startswith("ingest_"):
        plan = ti.xcom_pull(task_ids="begin")
        if plan:
            with runner.session() as ses:
                if "batch_id" in plan:
                    runner.fail(ses, plan, f"{ti.task_id}: {reason}")
                elif ti.task_id != "finish":  # finish only reports what finish_run recorded, file by file
                    with warehouse.transaction(ses.conn) as cur:  # a file source's run: its batches recorded their own outcome
                        batch.fail_run(cur, plan["run_key"], f"{ti.task_id}: {reason}")


def _fail_now_if_permanent(exc: Exception) -> None:
    """Retrying cannot fix a refused token, a bad setting or a batch the contract fails
    (missing column, keys still missing after 3 extractions): fail the task at once instead
    of waiting through Airflow's retry delays. Network trouble stays retryable."""
    from airflow.sdk.exceptions import AirflowFailException

    from ioc_pipeline.orchestration.asof import AsOfError
    from ioc_pipeline.errors import BatchFailed
    from ioc_pipeline.config import ConfigError
    from ioc_pipeline.extract.rest import SourceError
    from ioc_pipeline.ingest.validation import SuiteError

    permanent = isinstance(exc, (BatchFailed, ConfigError, AsOfError, SuiteError)) or (
        isinstance(exc, SourceError)
        and (exc.attempts == 0 or (exc.status is not None and 300 <= exc.status < 500 and exc.status not in (408, 429)))
    )
    if permanent:
        raise AirflowFailException(str(exc)) from exc


def _record_begin_failure(conn, source: Source, run_id: str, as_of, exc: Exception) -> None:
    """begin failed before its plan reached XCom, so the failure callback cannot record it."""
    from ioc_pipeline.ingest import batch

    try:
        batch.record_failed_run(conn, source, run_id, as_of, f"begin: {exc}")
    except Exception as inner:  # noqa: BLE001 - e.g. the migrations themselves failed: keep the first error
        log.warning("could not record the failed run of %s: %s", source.code, type(inner).__name__)


def _default_args() -> dict:
    return {
        "owner": OWNER,
        "retries": 0,
        "on_failure_callback": [_record_failure, IocNotifier()],
        "execution_timeout": max(TASK_TIMEOUTS.values()),  # each task's own below
    }


def _limits(task_id: str, **kw) -> dict:
    """@task keyword arguments carrying the task's timeout."""
    return {"task_id": task_id, "execution_timeout": TASK_TIMEOUTS[task_id], **kw}


def _ingest_dag(source: Source, **kwargs) -> DAG:
    """What every ingest DAG shares (operations.md: owner, tags, one run at a time, callback)."""
    return DAG(dag_id=source.dag_id, start_date=START, catchup=False, max_active_runs=1,
               default_args=_default_args(), dagrun_timeout=INGEST_RUN_TIMEOUT, tags=[f"sector:{source.sector}", f"kind:{source.kind}", "ingest"],
               **kwargs)


def build_file_ingest_dag(source: Source) -> DAG:
    """begin (discover deliveries) -> load_files (one batch per file) -> finish (fail if any file failed)."""
    outlet = asset_for(source)
    with _ingest_dag(
        source,
        # the UI shows an asset schedule without its cron: the description says both
        description=f"Nightly at {dag_docs.cron_text(INGEST_CRON)} and on arrival of a file: "
                    f"load the delivered files of {source.title} into the warehouse",
        # nightly, and on arrival of a delivery (asset watcher on the landing folder)
        schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(INGEST_CRON, timezone=LOCAL_TZ),
                                     assets=landing_asset(source)),
        params={"as_of_date": AS_OF_PARAM},
        doc_md=dag_docs.file_doc(source, INGEST_CRON),
    ) as dag:

        @task(**_limits("begin"))
        def begin(**context) -> dict:
            """Check the warehouse is migrated, resolve the as-of date, open the run, list the deliveries."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline.ingest import batch, file_batches, runner
            from ioc_pipeline import warehouse
            from ioc_pipeline.extract import file_source

            as_of = asof.from_context(context)
            with runner.session() as ses:
                try:
                    warehouse.check_migrated(ses.conn)   # migrated before, as the owner
                    run_key = batch.open_run(ses.conn, source, context["run_id"], as_of, key=ses.key)
                    todo = file_batches.pending(ses.conn, source, file_source.landing_root(source), as_of)
                except Exception as exc:  # e.g. no landing folder: the run failed, say so in freshness
                    _record_begin_failure(ses.conn, source, context["run_id"], as_of, exc)
                    _fail_now_if_permanent(exc)
                    raise
            return {"run_key": run_key, "as_of_date": as_of.isoformat(), "deliveries": [d.to_xcom() for d in todo]}

        @task(**_limits("load_files"), outlets=[outlet], retries=2, retry_delay=dt.timedelta(minutes=1),
              retry_exponential_backoff=True)
        def load_files(plan: dict, **context) -> dict:
            """Load each delivery as its own batch; a failed file does not stop the others."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline.ingest import file_batches, runner
            from ioc_pipeline.extract import file_source

            as_of = asof.parse_date(plan["as_of_date"])
            deliveries = [file_source.Delivery.from_xcom(d) for d in plan["deliveries"]]
            with runner.session() as ses:
                result = file_batches.load_all(
                    ses.conn, source, plan["run_key"], as_of, file_source.landing_root(source), deliveries,
                    key=ses.key, province_code=ses.province_code, sqlalchemy_url=ses.sqlalchemy_url)
            context["outlet_events"][outlet].extra = {
                "as_of_date": plan["as_of_date"], "source_code": source.code,
                **{k: v for k, v in result.items() if k != "failures"}}
            return result

        @task(**_limits("finish"))
        def finish(result: dict) -> None:
            """Fail the run if any file failed, naming each failed file on its own line (the others loaded)."""
            from airflow.sdk.exceptions import AirflowFailException

            if result["failures"]:
                raise AirflowFailException(dag_docs.file_failure_message(source, result["files"], result["failures"]))

        finish(load_files(begin()))
    return dag


def build_ingest_dag(source: Source) -> DAG:
    outlet = asset_for(source)
    with _ingest_dag(
        source,
        description=f"Extract, validate and load {source.title} into the warehouse",
        schedule=CronTriggerTimetable(INGEST_CRON, timezone=LOCAL_TZ),
        params={"as_of_date": AS_OF_PARAM, **({"replay_batch": REPLAY_PARAM} if source.watermark else {})},
        doc_md=dag_docs.ingest_doc(source, INGEST_CRON),
    ) as dag:

        @task(**_limits("begin"))
        def begin(**context) -> dict:
            """Check the warehouse is migrated, resolve the as-of date, open the run and its batch, create staging."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline.ingest import runner
            from ioc_pipeline import warehouse

            as_of = asof.from_context(context)
            replay = (context.get("params") or {}).get("replay_batch")
            with runner.session() as ses:
                try:
                    warehouse.check_migrated(ses.conn)   # migrated before, as the owner
                    plan = runner.open_window(ses, source, context["run_id"], as_of,
                                              replay_batch=int(replay) if replay not in (None, "") else None)
                except Exception as exc:  # a refused key, a bad setting: freshness must show the failure
                    _record_begin_failure(ses.conn, source, context["run_id"], as_of, exc)
                    _fail_now_if_permanent(exc)
                    raise
            return plan.to_xcom()

        @task(**_limits("extract", **({"pool": pools.pool_for(source)} if pools.pool_for(source) else {})),
              retries=2, retry_delay=dt.timedelta(minutes=1), retry_exponential_backoff=True,
              max_retry_delay=dt.timedelta(minutes=10))
        def extract(plan: dict) -> dict:
            """Extract the window into staging (retried with backoff: network step)."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                try:
                    return runner.stage(ses, source, plan)
                except Exception as exc:
                    _fail_now_if_permanent(exc)
                    raise

        @task(**_limits("validate"))
        def validate(plan: dict, extracted: dict) -> dict:
            """Keep one version per key, run the source's expectation suite inside PostgreSQL; quarantine or fail."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                return runner.check(ses, source, plan)

        @task(**_limits("publish"), outlets=[outlet])
        def publish(plan: dict, validated: dict, **context) -> dict:
            """Quarantine, merge, audit ledger and watermark in one transaction; publish the Asset."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                result = runner.publish(ses, source, plan)
            context["outlet_events"][outlet].extra = {"as_of_date": plan["as_of_date"], "source_code": source.code,
                                                      "batch_id": plan["batch_id"], **result}
            return result

        @task(**_limits("cleanup"))
        def cleanup(plan: dict) -> None:
            """Drop the batch's staging tables, whatever the outcome (teardown)."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                runner.cleanup(ses, plan)

        planned = begin()
        extracted = extract(planned)
        validated = validate(planned, extracted)
        published = publish(planned, validated)
        published >> cleanup(planned).as_teardown(setups=planned)
    return dag


def _views_deadline() -> DeadlineAlert | None:
    """Airflow 3's DeadlineAlert: the scheduler marks the nightly run missed at 06:00 local and the
    triggerer sends the notice (notify.IocNotifier; manual runs and backfills are only logged).

    Not under `airflow dags test` (make run, make demo): Airflow 3.3.2 fails a succeeding test run
    of a DAG with a deadline (its in-memory DAG holds the alerts where DagRun.update_state looks
    up their database ids), and no scheduler evaluates deadlines there anyway."""
    if sys.argv[1:3] == ["dags", "test"]:
        return None
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE, interval=REFRESH_DEADLINE,
                         callback=AsyncCallback(IocNotifier), name="views_by_0600")


def build_refresh_dag(sources: list[Source]) -> DAG:
    assets = [asset_for(s) for s in sources]
    condition = assets[0]
    for a in assets[1:]:
        condition = condition | a
    with DAG(
        dag_id="refresh_ioc_views",
        description="Recompute the ioc.* indicator views for an as-of date",
        schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(REFRESH_CRON, timezone=LOCAL_TZ), assets=condition),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args={**_default_args(), "retries": 1, "retry_delay": dt.timedelta(minutes=1)},
        dagrun_timeout=REFRESH_RUN_TIMEOUT,
        deadline=_views_deadline(),
        params={"as_of_date": AS_OF_PARAM},
        tags=["ioc", "views"],
        doc_md=dag_docs.refresh_doc(REFRESH_CRON),
    ) as dag:

        @task(**_limits("refresh_views"))
        def refresh_views(**context) -> dict:
            """Recompute every indicator for the as-of date in one transaction."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline import config, warehouse
            from ioc_pipeline.views import refresh

            as_of = asof.from_context(context)
            conn = warehouse.connect()
            try:
                warehouse.check_migrated(conn)
                return refresh.refresh(conn, as_of, config.province_code())
            finally:
                conn.close()

        @task(**_limits("reconcile"))
        def reconcile(**context) -> dict:
            """Cross-source warnings (deaths before payments and visits) per commune; flags never fail it."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline import config, warehouse
            from ioc_pipeline.views import reconciliation

            conn = warehouse.connect()
            try:
                return reconciliation.reconcile(conn, asof.from_context(context), config.province_code())
            finally:
                conn.close()

        @task(**_limits("build_data_docs"))
        def build_data_docs() -> str:
            """Rebuild the data-quality report (Data Docs), also after a failed refresh. A teardown:
            its failure is red and notified, but the run's state stays that of the views."""
            from ioc_pipeline.quality import data_docs
            from ioc_pipeline import warehouse

            conn = warehouse.connect()
            try:
                return str(data_docs.build(conn))
            finally:
                conn.close()

        @task(**_limits("notify_freshness"), trigger_rule="all_done")
        def notify_freshness(**context) -> list:
            """A notice when a source turns stale in ioc.source_freshness, and when it recovers (once each)."""
            from ioc_pipeline import warehouse
            from ioc_pipeline.orchestration import freshness

            conn = warehouse.connect()
            try:
                return freshness.notify_turns(conn, context["run_id"])
            finally:
                conn.close()

        refreshed = refresh_views()
        refreshed >> reconcile() >> build_data_docs().as_teardown()   # teardown: runs when all done
        refreshed >> notify_freshness()
    return dag


def build_all() -> dict[str, DAG]:
    sources = list(catalog.load().values())
    dags = {s.dag_id: (build_file_ingest_dag(s) if s.kind == "file" else build_ingest_dag(s)) for s in sources}
    dags["refresh_ioc_views"] = build_refresh_dag(sources)
    return dags
