"""A source turning stale in ioc.source_freshness is notified once, and its recovery once, however
many refresh runs see the same state (audit.freshness_notice), to a real local HTTP endpoint."""
from __future__ import annotations

import pytest

from ioc_pipeline.orchestration import freshness
from tests.alert_endpoint import AlertEndpoint
from tests.integration.warehouse_helpers import migrated

pytestmark = pytest.mark.integration


def add_run(conn, source: str, run_id: str, status: str, finished_ago: str, error: str | None = None) -> None:
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO audit.source (source_code, kind, sector, cadence_days, quarantine_threshold)
                       VALUES (%s, 'sql', 'test', 1, 0.05) ON CONFLICT DO NOTHING""", (source,))
        cur.execute("""INSERT INTO audit.source_run (run_key, source_code, dag_run_id, as_of_date, started_at,
                                                     finished_at, status, error)
                       VALUES (%s, %s, %s, current_date, now() - %s::interval, now() - %s::interval, %s, %s)""",
                    (f"{source}/{run_id}", source, run_id, finished_ago, finished_ago, status, error))
    conn.commit()


def test_stale_then_recovered_is_notified_once_each(empty_db, monkeypatch):
    endpoint = AlertEndpoint()
    monkeypatch.setenv("AIRFLOW_CONN_IOC_ALERTS", endpoint.conn_json())
    conn = migrated(empty_db)
    try:
        add_run(conn, "land", "n1", "success", "3 days")
        add_run(conn, "land", "n2", "failed", "1 day", error="HTTP 503 from sector_land: gave up after 6 attempts")
        add_run(conn, "tuition", "n1", "success", "1 hour")

        assert freshness.notify_turns(conn, "refresh_1") == [{"source": "land", "stale": True}]
        assert freshness.notify_turns(conn, "refresh_2") == []          # still stale: no second notice
        add_run(conn, "land", "n3", "success", "5 minutes")
        assert freshness.notify_turns(conn, "refresh_3") == [{"source": "land", "stale": False}]
        assert freshness.notify_turns(conn, "refresh_4") == []
    finally:
        conn.close()
        endpoint.close()

    stale, recovered = endpoint.calls
    assert stale["event"] == "source_stale" and stale["source"] == "land" and stale["run_id"] == "refresh_1"
    assert stale["text"].startswith("land turned stale: no successful load since ")
    assert "last run failed: HTTP 503 from sector_land" in stale["text"]
    assert recovered["event"] == "source_recovered" and recovered["text"].startswith("land is fresh again: loaded")
