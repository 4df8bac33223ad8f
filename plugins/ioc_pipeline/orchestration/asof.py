"""The as-of date D of a run, resolved once by the kind of run (operations.md, "DAGs").

Never from data_interval_* or ds: asset-triggered runs have no data interval, and a
nightly run (and a backfill run standing for one) reports the day before it ran.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum

from ioc_pipeline.config import LOCAL_TZ

LOCAL = pendulum.timezone(LOCAL_TZ)


class AsOfError(Exception):
    pass


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise AsOfError(f"as_of_date must be YYYY-MM-DD, got {value!r}") from None


def local_date(moment: dt.datetime) -> dt.date:
    return pendulum.instance(moment).in_timezone(LOCAL).date()


def resolve(run_type: str, *, param: Any = None, logical_date: dt.datetime | None = None,
            run_after: dt.datetime | None = None, asset_event_extras: list[dict] | None = None) -> dt.date:
    """Pure rule; see `from_context` for the Airflow side."""
    if param not in (None, ""):
        return parse_date(param)
    run_type = str(getattr(run_type, "value", run_type))
    if run_type == "asset_triggered":
        # an ingest DAG's own events carry as_of_date; an asset watcher's carry it in its payload
        extras = [e.get("payload") if isinstance(e.get("payload"), dict) else e for e in (asset_event_extras or []) if e]
        dates = [parse_date(e["as_of_date"]) for e in extras if e.get("as_of_date")]
        if not dates:
            raise AsOfError("asset-triggered run without an as_of_date in its triggering asset events")
        return max(dates)
    if run_type in ("scheduled", "backfill"):
        # a backfill run stands for the nightly run of its schedule slot (`airflow backfill create`
        # gives it that slot's run_after): it reports the same day the scheduled run would have
        if run_after is None:
            raise AsOfError(f"{run_type} run without run_after")
        return local_date(run_after) - dt.timedelta(days=1)
    moment = logical_date or run_after
    if moment is None:
        raise AsOfError("manual run without logical date: pass the as_of_date param")
    return local_date(moment)


def from_context(context: dict) -> dt.date:
    dag_run = context["dag_run"]
    extras: list[dict] = []
    events = context.get("triggering_asset_events") or {}
    for asset_events in events.values():
        for event in asset_events:
            extras.append(dict(getattr(event, "extra", None) or {}))
    return resolve(
        dag_run.run_type,
        param=(context.get("params") or {}).get("as_of_date"),
        logical_date=getattr(dag_run, "logical_date", None),
        run_after=getattr(dag_run, "run_after", None),
        asset_event_extras=extras,
    )


def window_end(as_of: dt.date) -> dt.datetime:
    """A run for D reads source changes up to D+1 00:00 +07:00 (exclusive)."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=7)))
