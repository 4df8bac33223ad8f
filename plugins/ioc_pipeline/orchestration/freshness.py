"""Notices when a source turns stale in `ioc.source_freshness`, and when it is fresh again.

The view computes `stale` from the clock (no success within the source's cadence + 6 h), so the
same state is seen by every refresh run. `audit.freshness_notice` keeps the state last notified
per source: one notice per turn, never one per run.
"""
from __future__ import annotations

import datetime as dt
import logging

from ioc_pipeline import warehouse
from ioc_pipeline.orchestration.notify import IocNotifier

log = logging.getLogger(__name__)

_FRESHNESS_LOCK = 0x10C_08  # one checker at a time: two runs must not both notify a turn
_LOCAL = dt.timezone(dt.timedelta(hours=7))


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M +07") if moment else "never"


def reason(stale: bool, last_success_at, last_status, last_error) -> str:
    if not stale:
        return f"loaded successfully at {_when(last_success_at)}"
    last = f"; last run {last_status}" + (f": {last_error}" if last_error else "") if last_status else ""
    return f"no successful load since {_when(last_success_at)}{last}"


def notify_turns(conn, run_id: str | None = None) -> list[dict]:
    """Record and notify every source whose stale state changed since its last notice.

    The notices go out before the commit: if the commit failed, the next run notifies again
    (a notice twice rather than never)."""
    notices = []
    with warehouse.transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_FRESHNESS_LOCK,))
        cur.execute(warehouse.read_sql("ioc/freshness_turns.sql"), {"run_id": run_id})
        for source_code, stale, last_success_at, last_status, last_error in cur.fetchall():
            notifier = IocNotifier(event="source_stale" if stale else "source_recovered", source=source_code,
                                   run_id=run_id, reason=reason(stale, last_success_at, last_status, last_error))
            notifier.notify({})
            notices.append({"source": source_code, "stale": stale})
    if not notices:
        log.info("source freshness: no source turned stale or fresh again")
    return notices
