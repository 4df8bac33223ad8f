"""The process the crash tests kill: `python -m tests.reliability.worker '<json spec>'`.

It does what an Airflow worker does for one task chain, with the package's own code:
- mode "batch": one civil_status batch (begin, extract into staging with COPY, dedupe,
  validate, publish, cleanup) of the deterministic day's items below;
- mode "refresh": refresh.refresh for an as-of date.
`pause_after` (batch mode) makes the source stall after that many items, after writing the
file `signal`: the extraction is then in the middle of staging, with COPY data sent.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from tests.integration.test_batch_civil_status import rec

D1 = dt.date(2026, 11, 19)
D2 = dt.date(2026, 11, 20)
BAD_EVERY = 40  # one record in 40 has an unknown registration type: 2.5 % quarantined


def civil_items(day: str, n: int) -> list[dict]:
    """Day 1: n records. Day 2: the first half of them changed (newer updated_at), n/2 new.
    Both days carry quarantined records, so a publish writes quarantine rows before the merge."""
    def one(i: int, stamp: str, **over) -> dict:
        bad = {"registration_type": "adoption"} if i % BAD_EVERY == 7 else {}
        return rec(f"R{i:06d}", subject_cccd=f"048225{i:06d}", commune_code=("20194", "20197", "20200")[i % 3],
                   updated_at=stamp, **{**over, **bad})

    if day == "d1":
        return [one(i, "2026-11-19T08:00:00+07:00", book_digitized=i % 2 == 0) for i in range(n)]
    changed = [one(i, "2026-11-20T09:00:00+07:00", book_digitized=True, synced_to_ministry=True)
               for i in range(n // 2)]
    new = [one(i, "2026-11-20T10:00:00+07:00", book_digitized=i % 4 == 0) for i in range(n, n + n // 2)]
    return changed + new


def stalling(items: list[dict], pause_after: int, signal_file: str):
    for n, item in enumerate(items):
        if n == pause_after:
            Path(signal_file).write_text("staging")
            time.sleep(600)  # the source stalls: the test kills us here
        yield item


def main(spec: dict) -> None:
    from ioc_pipeline.ingest import row_workers, runner
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline.views import refresh
    from ioc_pipeline import warehouse
    from tests.integration.warehouse_helpers import KEY, PROVINCE, sqlalchemy_url

    conn = warehouse.connect(spec["dsn"], application_name=os.environ["PGAPPNAME"])
    as_of = dt.date.fromisoformat(spec["as_of"])
    if spec["mode"] == "refresh":
        print(refresh.refresh(conn, as_of, PROVINCE), flush=True)
        return
    # chunks small against pause_after: at the pause all but the few in flight are in COPY
    row_workers.CHUNK_ROWS = 1000
    source = catalog.get("civil_status")
    items = civil_items(spec["day"], spec["n"])
    if spec.get("pause_after") is not None:
        items = stalling(items, spec["pause_after"], spec["signal"])
    # step by step, as the DAG's tasks call the runner: a test kills the worker between two steps
    ses = runner.Session(conn, key=KEY, province_code=PROVINCE, sqlalchemy_url=sqlalchemy_url(spec["dsn"]))
    plan = runner.open_window(ses, source, spec["run_id"], as_of)
    print("batch", plan.batch_id, flush=True)
    try:
        runner.stage(ses, source, plan, lambda: (iter(items), lambda: None))
        runner.check(ses, source, plan)
        print("publishing", flush=True)
        print(runner.publish(ses, source, plan), flush=True)
    finally:
        runner.cleanup(ses, plan)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
