"""Operator notices through Airflow's notifier interface (`IocNotifier`, a BaseNotifier).

One notice is one line naming the source (or DAG), the run and the reason, written to the log
and POSTed as JSON to the HTTP connection `ioc_alerts` (host, port, schema http/https, extra
`{"endpoint": "/path"}`, password = optional bearer token). Without that connection the line is
only logged. The same notifier serves the task failure callbacks, the deadline alert of
`refresh_ioc_views` (run by the triggerer) and the stale/recovered notices of
`ioc.source_freshness` (orchestration/freshness.py).

Reasons come from our own exceptions and ledger, which never carry row values, so no personal
data reaches the endpoint; the connection's password is never part of a message. A failing
endpoint is logged, never raised: a notice must not mask the failure it reports.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)

ALERT_CONN_ID = "ioc_alerts"
LEGACY_ENV = "IOC_ALERT_WEBHOOK"   # deprecated: a bare URL, before the ioc_alerts connection
TIMEOUT_S = 10
SOURCE_EVENTS = {"source_stale": "turned stale", "source_recovered": "is fresh again"}


def one_line(text: Any, limit: int = 300) -> str:
    text = str(text or "").strip()
    return (text.splitlines()[0] if text else "unknown reason")[:limit]


def failure_line(dag_id: str, run_id: str, task_id: str, reason: str) -> str:
    """One line: every reason that fits in the short form (failure_text), then "(+N more)"."""
    from ioc_pipeline import failure_text

    reason = failure_text.short(reason) or "unknown error"
    return f"{dag_id} run {run_id} failed in task {task_id}: {reason}"


def failure_reason(context) -> str:
    """Why a task failed, in one line; a task stopped by its execution_timeout says so and its limit
    (Airflow's own message is only "Timeout, PID: n")."""
    exc = context.get("exception")
    if type(exc).__name__ == "AirflowTaskTimeout":
        limit = getattr(context.get("task"), "execution_timeout", None)
        return f"exceeded its time limit (execution_timeout {limit})" if limit else "exceeded its time limit"
    return str(exc or "see the task log")


def source_of(dag_id: str | None) -> str | None:
    return dag_id.removeprefix("ingest_") if dag_id and dag_id.startswith("ingest_") else None


class IocNotifier(BaseNotifier):
    """A notice in one line to the `ioc_alerts` connection.

    Without `event`, the notice is read from the callback context: a failed task (context has
    `ti`) or a missed deadline (context has `deadline`, as the triggerer passes it). With
    `event` (e.g. `source_stale`), `source`, `run_id` and `reason` are the notice.
    """

    def __init__(self, *, event: str | None = None, source: str | None = None, run_id: str | None = None,
                 reason: str | None = None, conn_id: str = ALERT_CONN_ID, context: dict | None = None):
        super().__init__(context=context)
        self.event, self.source, self.run_id, self.reason = event, source, run_id, reason
        self.conn_id = conn_id

    def notify(self, context) -> None:
        notice = self.describe(context or {})
        if notice:
            send(notice, self.conn_id)

    async def async_notify(self, context) -> None:
        """The triggerer's way (deadline alerts): the same notice, the blocking POST in a thread."""
        import asyncio

        notice = self.describe(context or {})
        if notice:
            await asyncio.to_thread(send, notice, self.conn_id)

    def describe(self, context) -> dict | None:
        """The notice as a JSON payload whose `text` is the one line; None when there is nothing to say."""
        if self.event:
            what = SOURCE_EVENTS.get(self.event, self.event)
            return _payload(self.event, self.source, None, self.run_id, None, self.reason,
                            f"{self.source} {what}: {one_line(self.reason)}" + (f" (run {self.run_id})" if self.run_id else ""))
        if "deadline" in context:
            return _deadline_notice(context)
        ti = context.get("ti") or context.get("task_instance")
        if ti is not None:
            dag_id, run_id = ti.dag_id, context.get("run_id") or getattr(ti, "run_id", None)
            line = failure_line(dag_id, run_id, ti.task_id, failure_reason(context))
            return _payload("task_failed", source_of(dag_id), dag_id, run_id, ti.task_id,
                            line.split(": ", 1)[-1], line)
        log.warning("notice without a failed task, a deadline or an event: nothing sent")
        return None


def _deadline_notice(context) -> dict | None:
    """A missed DeadlineAlert (context as Deadline.handle_miss builds it: dag_run as JSON).

    Only a nightly (scheduled) run has a deadline that means something: a manual run or a
    backfill of a past date is late by construction, so its miss is logged, not sent."""
    run = context.get("dag_run") or {}
    deadline = context["deadline"].get("deadline_time")
    if isinstance(deadline, str):
        deadline = dt.datetime.fromisoformat(deadline)
    local = deadline.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m-%d %H:%M +07") if deadline else "?"
    dag_id, run_id, run_type = run.get("dag_id"), run.get("dag_run_id") or run.get("run_id"), run.get("run_type")
    if run_type != "scheduled":
        log.info("deadline of %s run %s (%s) passed: only nightly runs are alerted", dag_id, run_id, run_type)
        return None
    state = run.get("state") or "not finished"
    reason = f"not succeeded by {local} (state {state})"
    return _payload("deadline_missed", None, dag_id, run_id, None, reason, f"{dag_id} run {run_id} missed its deadline: {reason}")


def _payload(event, source, dag_id, run_id, task_id, reason, text) -> dict:
    return {"text": one_line(text, 500), "event": event, "source": source, "dag_id": dag_id,
            "run_id": run_id, "task_id": task_id, "reason": one_line(reason)}


def endpoint(conn_id: str = ALERT_CONN_ID) -> tuple[str, str | None] | None:
    """(URL, bearer token or None) of the alert connection; None when no endpoint is configured."""
    from ioc_pipeline.config import ConfigError, get_connection

    try:
        conn = get_connection(conn_id)
    except ConfigError:
        url = os.environ.get(LEGACY_ENV)
        if url:
            log.warning("%s is deprecated: define the connection %s instead", LEGACY_ENV, conn_id)
        return (url, None) if url else None
    host = (conn.host or "").strip()
    path = str((conn.extra_dejson or {}).get("endpoint") or "")
    if "://" in host:  # a whole URL in host
        return host.rstrip("/") + (("/" + path.lstrip("/")) if path else ""), conn.password or None
    if not host:
        log.warning("connection %s has no host: notices are logged only", conn_id)
        return None
    scheme = (conn.schema or "https").strip().lower()
    port = f":{int(conn.port)}" if conn.port else ""
    return f"{scheme}://{host}{port}/{path.lstrip('/')}", conn.password or None


def send(notice: dict, conn_id: str = ALERT_CONN_ID) -> None:
    """Log the notice's line and POST it; never raises."""
    log.warning(notice["text"])
    try:
        target = endpoint(conn_id)
    except Exception as exc:  # noqa: BLE001 - a broken setting must not hide the notice's cause
        log.warning("alert connection %s unusable: %s", conn_id, type(exc).__name__)
        return
    if not target:
        return
    import requests

    url, token = target
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        resp = requests.post(url, data=json.dumps(notice), headers=headers, timeout=TIMEOUT_S, allow_redirects=False)
        resp.raise_for_status()
    except Exception as exc:  # noqa: BLE001 - never hide the original failure
        log.warning("alert endpoint did not accept the notice: %s", type(exc).__name__)
