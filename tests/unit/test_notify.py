"""Notices through Airflow's notifier interface (notify.IocNotifier) to a real local HTTP endpoint:
one line naming source or DAG, run and reason; no secret; a broken endpoint never raises."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from types import SimpleNamespace

import pytest

from ioc_pipeline.orchestration import notify
from tests.alert_endpoint import AlertEndpoint

TOKEN = "alert-token-9c1e"


@pytest.fixture
def endpoint(monkeypatch):
    ep = AlertEndpoint()
    monkeypatch.setenv("AIRFLOW_CONN_IOC_ALERTS", ep.conn_json(token=TOKEN))
    monkeypatch.delenv(notify.LEGACY_ENV, raising=False)
    yield ep
    ep.close()


def failed_task_context(reason: str) -> dict:
    ti = SimpleNamespace(dag_id="ingest_civil_status", task_id="extract", run_id="manual__2026-11-20")
    return {"ti": ti, "run_id": "manual__2026-11-20", "exception": RuntimeError(reason)}


def test_failed_task_is_one_line_with_source_run_and_reason(endpoint):
    notify.IocNotifier()(failed_task_context("HTTP 401: token refused\nsecond reason"))

    (call,) = endpoint.calls
    assert call["text"].startswith("ingest_civil_status run manual__2026-11-20 failed in task extract: "
                                   "HTTP 401: token refused")
    assert call["reason"].startswith("HTTP 401: token refused") and "\n" not in call["text"] + call["reason"]
    assert (call["event"], call["source"], call["dag_id"], call["task_id"]) == (
        "task_failed", "civil_status", "ingest_civil_status", "extract")
    assert "\n" not in json.dumps(call["text"]) and TOKEN not in json.dumps(call)
    assert endpoint.headers[0]["Authorization"] == f"Bearer {TOKEN}"


def deadline_context(run_type: str) -> dict:
    """What Deadline.handle_miss hands the triggerer: the run as JSON and the deadline."""
    return {"dag_run": {"dag_id": "refresh_ioc_views", "dag_run_id": "scheduled__2026-11-20T19:30:00+00:00",
                        "run_type": run_type, "state": "running"},
            "deadline": {"id": "0193", "deadline_time": dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)}}


def test_missed_deadline_of_the_nightly_run_is_sent_by_the_triggerer_path(endpoint):
    # the triggerer awaits the notifier class called with the callback kwargs and context
    asyncio.run(_await(notify.IocNotifier(context=deadline_context("scheduled"))))

    (call,) = endpoint.calls
    assert call["event"] == "deadline_missed" and call["dag_id"] == "refresh_ioc_views"
    assert call["text"] == ("refresh_ioc_views run scheduled__2026-11-20T19:30:00+00:00 missed its deadline: "
                            "not succeeded by 2026-11-21 06:00 +07 (state running)")


async def _await(notifier):
    await notifier


@pytest.mark.parametrize("run_type", ["manual", "backfill"])
def test_deadline_of_a_manual_or_backfill_run_is_only_logged(endpoint, run_type):
    asyncio.run(_await(notify.IocNotifier(context=deadline_context(run_type))))
    assert endpoint.calls == []


def test_source_event(endpoint):
    notify.IocNotifier(event="source_stale", source="land", run_id="r1",
                       reason="no successful load since 2026-11-18 00:40 +07").notify({})
    (call,) = endpoint.calls
    assert call["text"] == "land turned stale: no successful load since 2026-11-18 00:40 +07 (run r1)"
    assert call["source"] == "land" and call["event"] == "source_stale"


def test_endpoint_down_or_refusing_never_raises(monkeypatch):
    refusing = AlertEndpoint(status=500)
    monkeypatch.setenv("AIRFLOW_CONN_IOC_ALERTS", refusing.conn_json())
    notify.IocNotifier()(failed_task_context("boom"))
    assert len(refusing.calls) == 1
    refusing.close()
    notify.IocNotifier()(failed_task_context("boom"))   # nothing listens any more: logged only


def test_without_connection_the_line_is_logged_only(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_IOC_ALERTS", raising=False)
    monkeypatch.delenv(notify.LEGACY_ENV, raising=False)
    assert notify.endpoint() is None
    notify.IocNotifier()(failed_task_context("boom"))
    assert "failed in task extract: boom" in caplog.text


def test_legacy_webhook_variable_still_works(monkeypatch):
    ep = AlertEndpoint()
    monkeypatch.delenv("AIRFLOW_CONN_IOC_ALERTS", raising=False)
    monkeypatch.setenv(notify.LEGACY_ENV, ep.url)
    notify.IocNotifier()(failed_task_context("boom"))
    ep.close()
    assert [c["source"] for c in ep.calls] == ["civil_status"]
