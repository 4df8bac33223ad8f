"""Failure notification: one line naming the source, the run and the reason, to the task log
and to a configurable webhook (Airflow variable `ioc_alert_webhook` or env IOC_ALERT_WEBHOOK).

Reasons come from our own exceptions, which never carry row values, so no personal data
reaches the webhook. A webhook that fails is logged, never raised: the alert must not mask
the original failure.
"""
from __future__ import annotations

import json
import logging
import os

log = logging.getLogger(__name__)


def failure_line(dag_id: str, run_id: str, task_id: str, reason: str) -> str:
    """One line: every reason that fits in the short form (failure_text), then "(+N more)"."""
    from ioc_pipeline import failure_text

    reason = failure_text.short(reason) or "unknown error"
    return f"{dag_id} run {run_id} failed in task {task_id}: {reason}"


def webhook_url() -> str | None:
    url = os.environ.get("IOC_ALERT_WEBHOOK")
    if url:
        return url
    from ioc_pipeline.config import get_variable

    return get_variable("ioc_alert_webhook")


def send(line: str, payload: dict) -> None:
    log.error(line)
    url = webhook_url()
    if not url:
        return
    import requests

    try:
        resp = requests.post(url, data=json.dumps({"text": line, **payload}),
                             headers={"Content-Type": "application/json"}, timeout=10)
        resp.raise_for_status()
    except Exception as exc:  # noqa: BLE001 - never hide the original failure
        log.warning("alert webhook did not accept the notification: %s", type(exc).__name__)
