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

import pendulum
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from ioc_pipeline.declaration import catalog
from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.config import LOCAL_TZ

log = logging.getLogger(__name__)

OWNER = "ioc-data-engineering"
START = pendulum.datetime(2025, 1, 1, tz=LOCAL_TZ)
INGEST_CRON = "30 0 * * *"    # 00:30 local: the night after day D reports day D
REFRESH_CRON = "30 2 * * *"   # fallback when no ingest published
AS_OF_PARAM = Param(None, type=["null", "string"], format="date",
                    description="As-of date D (YYYY-MM-DD); empty: the run's own date rule")
REPLAY_PARAM = Param(None, type=["null", "integer"], minimum=1,
                     description="Read again the window of this earlier batch (audit.batch.batch_id), e.g. after "
                                 "the source fixed rows that were quarantined; empty: the normal window")


def asset_for(source: Source) -> Asset:
    return Asset(name=f"warehouse_{source.code}", uri=source.asset_uri, group="ioc_warehouse")


def landing_asset(source: Source) -> Asset:
    """A file source's deliveries, watched by the triggerer: a new or changed settled file in the
    landing folder starts the ingest DAG without waiting for the night (triggers.py)."""
    from airflow.sdk import AssetWatcher

    from ioc_pipeline.orchestration.triggers import LandingDeliveryTrigger

    return Asset(name=f"landing_{source.code}", uri=f"ioc://landing/{source.code}", group="ioc_landing",
                 watchers=[AssetWatcher(name=f"landing_{source.code}_watcher",
                                        trigger=LandingDeliveryTrigger(source_code=source.code))])


def _on_failure(context) -> None:
    """Task failure callback: record the failed batch, then notify in one line."""
    from ioc_pipeline.ingest import batch, runner
    from ioc_pipeline.orchestration import notify
    from ioc_pipeline import warehouse

    ti = context["ti"]
    dag_id = ti.dag_id
    reason = str(context.get("exception") or "see the task log")
    if dag_id.startswith("ingest_"):
        plan = ti.xcom_pull(task_ids="begin")
        if plan:
            with runner.session() as ses:
                if "batch_id" in plan:
                    runner.fail(ses, plan, f"{ti.task_id}: {reason}")
                else:  # a file source's run: its batches recorded their own outcome
                    with warehouse.transaction(ses.conn) as cur:
                        batch.fail_run(cur, plan["run_key"], f"{ti.task_id}: {reason}"[:500])
    line = notify.failure_line(dag_id, context["run_id"], ti.task_id, reason)
    notify.send(line, {"dag_id": dag_id, "run_id": context["run_id"], "task_id": ti.task_id,
                       "source": dag_id.removeprefix("ingest_") if dag_id.startswith("ingest_") else None,
                       "reason": line.split(": ", 1)[-1]})


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
        "on_failure_callback": _on_failure,
    }


def _doc(source: Source) -> str:
    return f"""### ingest_{source.code} — {source.title} ({source.owner})

**Reads** the `{source.code}` source through connection `{source.connection}` ({source.kind}
source{f", `{source.path}`" if source.path else ""}), see `shared/spec/sources.md`.
Incremental by `{source.watermark}` from the last committed watermark up to D+1 00:00 +07:00
(the as-of date D comes from the `as_of_date` param, else the run's own date rule).

**Writes** `{source.core_table}` (latest valid version per key {', '.join(source.key)}),
`quarantine.rejected_row` (failing rows with reasons, personal IDs masked), `audit.batch`,
`audit.validation_result`, `audit.watermark`; publishes the Asset `{source.asset_uri}`,
which triggers `refresh_ioc_views`.

**Checks** `include/expectations/{source.code}.json` (GX suite, run inside PostgreSQL).
Critical row-level failures quarantine rows; more than {source.quarantine_threshold:.0%} of the
batch's keys quarantined, or a critical batch-level failure, fails the whole batch.

**When it fails** nothing was published: the warehouse and the IOC views keep the last good
data, and `ioc.source_freshness` shows the failure. The failed task's log and
`audit.batch.error` hold one line naming the problem:
- *token refused / connection missing*: fix connection `{source.connection}`;
- *gave up after N attempts*: the source is down or overloaded; clear the task later;
- *failed validation*: look at `audit.validation_result` for the batch, and at
  `quarantine.rejected_row`; fix the source or the suite, then re-run the same date
  (re-runs are idempotent).
{_replay_doc(source) if source.watermark else ""}"""


def _replay_doc(source: Source) -> str:
    return f"""
**Replay** rows that were quarantined, once the source fixed them without touching their
`{source.watermark}`: trigger with the `replay_batch` param = the batch id of the quarantine
(`make quarantine SOURCE={source.code}` lists them); its window is read again and merged (a
stored version is replaced only by one at least as recent; the watermark never moves back).
"""


def _file_doc(source: Source) -> str:
    return f"""### ingest_{source.code} — {source.title} ({source.owner})

**Reads** the files `{source.files.pattern}` of the landing folder of connection
`{source.connection}` (type fs, extra `path`), see `shared/spec/sources.md` and
`docs/file_sources.md`: every delivery named on or before the as-of date D (undated files
always) that has settled for 60 s and whose (name, checksum) has not loaded yet. Each file is
one batch; a file delivered again under the same name is a correction that replaces its rows.

**Runs** nightly (as-of date D = yesterday), when the triggerer sees a new or changed settled
file in the landing folder (Asset `ioc://landing/{source.code}`; D = yesterday too: a file named
today waits for the night), or by hand with the `as_of_date` param.

**Writes** `{source.core_table}`, `quarantine.rejected_row` (failing rows with reasons,
personal IDs masked), `audit.file_delivery` (the file ledger), `audit.batch`,
`audit.validation_result`; publishes the Asset `{source.asset_uri}` when files loaded.

**Checks** `include/expectations/{source.code}.json` (GX suite, run inside PostgreSQL) on each
file. More than {source.quarantine_threshold:.0%} of a file's keys quarantined, or a critical
batch-level failure, fails that file only.

**When it fails** the `finish` task lists the files that failed, one line each (also in
`audit.batch.error` and `ioc.source_freshness.last_error`); the other files loaded. Nothing of a
failed file was published:
- *cannot be read* (truncated, not UTF-8, wrong sheet, column missing): ask the department to
  deliver the file again (same name); the next run loads it;
- *failed validation*: see `audit.validation_result` and `quarantine.rejected_row` for the batch;
  fix the file or the suite; a failed file is tried again at every run until it loads;
- *landing path missing*: fix connection `{source.connection}`.
"""


def _ingest_dag(source: Source, **kwargs) -> DAG:
    """What every ingest DAG shares (operations.md: owner, tags, one run at a time, callback)."""
    return DAG(dag_id=source.dag_id, start_date=START, catchup=False, max_active_runs=1,
               default_args=_default_args(), tags=[f"sector:{source.sector}", f"kind:{source.kind}", "ingest"],
               **kwargs)


def build_file_ingest_dag(source: Source) -> DAG:
    """begin (discover deliveries) -> load_files (one batch per file) -> finish (fail if any file failed)."""
    outlet = asset_for(source)
    with _ingest_dag(
        source,
        description=f"Load the delivered files of {source.title} into the warehouse",
        # nightly, and on arrival of a delivery (asset watcher on the landing folder)
        schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(INGEST_CRON, timezone=LOCAL_TZ),
                                     assets=landing_asset(source)),
        params={"as_of_date": AS_OF_PARAM},
        doc_md=_file_doc(source),
    ) as dag:

        @task
        def begin(**context) -> dict:
            """Migrate, resolve the as-of date, open the run, list the deliveries to load."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline.ingest import batch, file_batches, runner
            from ioc_pipeline import warehouse
            from ioc_pipeline.extract import file_source

            as_of = asof.from_context(context)
            with runner.session() as ses:
                try:
                    warehouse.migrate(ses.conn)
                    run_key = batch.open_run(ses.conn, source, context["run_id"], as_of, key=ses.key)
                    todo = file_batches.pending(ses.conn, source, file_source.landing_root(source), as_of)
                except Exception as exc:  # e.g. no landing folder: the run failed, say so in freshness
                    _record_begin_failure(ses.conn, source, context["run_id"], as_of, exc)
                    _fail_now_if_permanent(exc)
                    raise
            return {"run_key": run_key, "as_of_date": as_of.isoformat(), "deliveries": [d.to_xcom() for d in todo]}

        @task(outlets=[outlet], retries=2, retry_delay=dt.timedelta(minutes=1), retry_exponential_backoff=True)
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

        @task
        def finish(result: dict) -> None:
            """Fail the run, naming every file that failed, if any did (the others loaded)."""
            from airflow.sdk.exceptions import AirflowFailException

            if result["failures"]:
                raise AirflowFailException(
                    f"{source.code}: {len(result['failures'])} of {result['files']} file(s) failed: "
                    + " | ".join(result["failures"]))

        finish(load_files(begin()))
    return dag


def build_ingest_dag(source: Source) -> DAG:
    outlet = asset_for(source)
    with _ingest_dag(
        source,
        description=f"Extract, validate and load {source.title} into the warehouse",
        schedule=CronTriggerTimetable(INGEST_CRON, timezone=LOCAL_TZ),
        params={"as_of_date": AS_OF_PARAM, **({"replay_batch": REPLAY_PARAM} if source.watermark else {})},
        doc_md=_doc(source),
    ) as dag:

        @task
        def begin(**context) -> dict:
            """Migrate, resolve the as-of date, open the run and its batch, create staging."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline.ingest import runner
            from ioc_pipeline import warehouse

            as_of = asof.from_context(context)
            replay = (context.get("params") or {}).get("replay_batch")
            with runner.session() as ses:
                try:
                    warehouse.migrate(ses.conn)
                    plan = runner.open_window(ses, source, context["run_id"], as_of,
                                              replay_batch=int(replay) if replay not in (None, "") else None)
                except Exception as exc:  # a refused key, a bad setting: freshness must show the failure
                    _record_begin_failure(ses.conn, source, context["run_id"], as_of, exc)
                    _fail_now_if_permanent(exc)
                    raise
            return plan.to_xcom()

        @task(retries=2, retry_delay=dt.timedelta(minutes=1), retry_exponential_backoff=True,
              max_retry_delay=dt.timedelta(minutes=10))
        def extract(plan: dict) -> dict:
            """Extract the window into staging and dedupe it (retried with backoff: network step)."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                try:
                    return runner.stage(ses, source, plan)
                except Exception as exc:
                    _fail_now_if_permanent(exc)
                    raise

        @task
        def validate(plan: dict, extracted: dict) -> dict:
            """Run the source's expectation suite inside PostgreSQL; quarantine or fail."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                return runner.check(ses, source, plan)

        @task(outlets=[outlet])
        def publish(plan: dict, validated: dict, **context) -> dict:
            """Quarantine, merge, audit ledger and watermark in one transaction; publish the Asset."""
            from ioc_pipeline.ingest import runner

            with runner.session() as ses:
                result = runner.publish(ses, source, plan)
            context["outlet_events"][outlet].extra = {"as_of_date": plan["as_of_date"], "source_code": source.code,
                                                      "batch_id": plan["batch_id"], **result}
            return result

        @task
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


REFRESH_DOC = """### refresh_ioc_views — recompute the IOC's indicators

**Reads** the core tables (`core.*`), `core.admin_unit` and the audit ledger.
**Writes** `mart.indicator_history` for the as-of date D, in one transaction: the `ioc.*` views
(`indicator_values`, `indicator_history`, `indicator_catalog`, `source_freshness`) show the
old or the new row set, never a mix, and readers are never blocked.

**Runs** when an ingest DAG publishes its Asset (D = the greatest `as_of_date` in the
triggering events), nightly as a fallback (D = yesterday in Asia/Ho_Chi_Minh), or by hand
with the `as_of_date` param. Sources whose last batch failed count with their last good data.

Then `reconcile` stores the cross-source warnings of D (deaths registered before a social
payment or a health visit, per commune, joined on the pseudonymised ID) in
`audit.reconciliation_result` (`ioc.data_quality_reconciliation`); a flagged row never fails it.
Last, `build_data_docs` rebuilds the data-quality report (`make docs` prints where), also after a
failed refresh.

**When it fails** the views keep the previous row set. Look at the task log: a SQL error names
the indicator file in `include/sql/indicators/`; re-run the same date once fixed (idempotent).
A failed `build_data_docs` leaves the views as refreshed: fix it (disk, permissions of
`IOC_DATA_DOCS_DIR`) and run `make docs`.
"""


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
        params={"as_of_date": AS_OF_PARAM},
        tags=["ioc", "views"],
        doc_md=REFRESH_DOC,
    ) as dag:

        @task
        def refresh_views(**context) -> dict:
            """Recompute every indicator for the as-of date in one transaction."""
            from ioc_pipeline.orchestration import asof
            from ioc_pipeline import config, warehouse
            from ioc_pipeline.views import refresh

            as_of = asof.from_context(context)
            conn = warehouse.connect()
            try:
                warehouse.migrate(conn)
                return refresh.refresh(conn, as_of, config.province_code())
            finally:
                conn.close()

        @task
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

        @task
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

        refresh_views() >> reconcile() >> build_data_docs().as_teardown()   # teardown: runs when all done
    return dag


def build_all() -> dict[str, DAG]:
    sources = list(catalog.load().values())
    dags = {s.dag_id: (build_file_ingest_dag(s) if s.kind == "file" else build_ingest_dag(s)) for s in sources}
    dags["refresh_ioc_views"] = build_refresh_dag(sources)
    return dags
