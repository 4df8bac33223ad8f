"""The file sources' on-arrival schedule: the landing trigger fires for deliveries that arrive
after it started (not for its baseline), only once they settled, and the run it starts resolves
the as-of date from the event's payload."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time

import pytest

from ioc_pipeline.orchestration import asof
from ioc_pipeline.orchestration.triggers import LandingDeliveryTrigger, yesterday_local


@pytest.fixture
def landing(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_LANDING", json.dumps({"conn_type": "fs", "extra": {"path": str(tmp_path)}}))
    (tmp_path / "health").mkdir()
    return tmp_path


def deliver(root, name, age=600):
    path = root / "health" / name
    path.write_text("visit_id\n")
    os.utime(path, (time.time() - age, time.time() - age))


async def _events(trigger, actions, polls, monkeypatch):
    """Run the trigger for `polls` polls, doing actions[i] right before poll i (in step with the
    trigger's own polls, so a slow machine cannot reorder them); collect its events."""
    from ioc_pipeline.orchestration import triggers

    events = []
    calls = 0
    real = triggers.settled_files

    def polled(*args):
        nonlocal calls
        if calls < len(actions) and actions[calls]:
            actions[calls]()
        calls += 1
        return real(*args)

    monkeypatch.setattr(triggers, "settled_files", polled)

    async def consume():
        async for event in trigger.run():
            events.append(event.payload)

    task = asyncio.create_task(consume())
    deadline = time.monotonic() + 60
    while calls <= polls and time.monotonic() < deadline:
        await asyncio.sleep(trigger.poll_seconds / 4)
    task.cancel()
    assert calls > polls, f"the trigger polled {calls} times in 60 s"
    return events


def test_fires_for_new_settled_deliveries_only(landing, monkeypatch):
    deliver(landing, "bhyt_visits_48001_20261118.csv")                       # baseline: no event
    trigger = LandingDeliveryTrigger("health_visits", poll_seconds=0.2, settle_seconds=60)
    actions = [
        None,
        lambda: deliver(landing, "bhyt_visits_48001_20261119.csv"),         # settled: fires
        lambda: deliver(landing, "bhyt_visits_48002_20261119.csv", age=1),  # still being written: waits
        lambda: (landing / "health" / "notes.txt").write_text("x"),         # not a delivery
    ]
    events = asyncio.run(_events(trigger, actions, polls=5, monkeypatch=monkeypatch))
    assert [e["files"] for e in events] == [["health/bhyt_visits_48001_20261119.csv"]]
    assert events[0]["source_code"] == "health_visits"
    assert events[0]["as_of_date"] == yesterday_local().isoformat()


def test_serializes_for_the_triggerer():
    path, kwargs = LandingDeliveryTrigger("social_payments", poll_seconds=30).serialize()
    assert path == "ioc_pipeline.orchestration.triggers.LandingDeliveryTrigger"
    assert LandingDeliveryTrigger(**kwargs).serialize() == (path, kwargs)


def test_watcher_events_carry_the_as_of_date_in_their_payload():
    extras = [{"from_trigger": True, "payload": {"as_of_date": "2026-11-19", "files": ["x"]}}]
    assert asof.resolve("asset_triggered", asset_event_extras=extras) == dt.date(2026, 11, 19)


def test_yesterday_is_the_local_calendar_day_before():
    # 2026-11-20 18:30 UTC is 2026-11-21 01:30 in Asia/Ho_Chi_Minh: yesterday is the 20th
    assert yesterday_local(dt.datetime(2026, 11, 20, 18, 30, tzinfo=dt.UTC)) == dt.date(2026, 11, 20)


def test_a_second_copy_of_the_same_bytes_starts_nothing(landing, monkeypatch):
    trigger = LandingDeliveryTrigger("health_visits", poll_seconds=0.2, settle_seconds=60)
    name = "bhyt_visits_48001_20261119.csv"

    def recopy(content):
        def act():
            deliver(landing, name)
            (landing / "health" / name).write_text(content)
            os.utime(landing / "health" / name, (time.time() - 300, time.time() - 300))
        return act

    actions = [None, lambda: deliver(landing, name), recopy("visit_id\n"), recopy("visit_id\nv2\n")]
    events = asyncio.run(_events(trigger, actions, polls=5, monkeypatch=monkeypatch))
    # the first delivery fires; the same bytes again (new mtime) do not; new bytes do
    assert [e["files"] for e in events] == [[f"health/{name}"], [f"health/{name}"]]
