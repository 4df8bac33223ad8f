"""Recompute the ioc views' row set for one as-of date.

Every indicator file in include/sql/indicators/ adds raw counts to a temporary table; one
SQL file assembles them into mart.indicator_history. The old rows of that date are deleted
and the new ones inserted in ONE transaction: readers of the ioc views (plain views over
that table) see the old or the new row set, never a mix and never an error, and are never
blocked (MVCC). A source whose last batch failed still counts with its last committed data.
"""
from __future__ import annotations

import datetime as dt
import logging

from ioc_pipeline import config, warehouse

log = logging.getLogger(__name__)

INDICATORS_DIR = config.SQL_DIR / "indicators"
_REFRESH_LOCK = 0x10C_07


def refresh(conn, as_of: dt.date, province_code: str) -> dict:
    started = dt.datetime.now(dt.UTC)
    params = {"as_of": as_of, "year_start": as_of.replace(month=1, day=1), "province": province_code,
              "refreshed_at": started}
    with warehouse.transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_REFRESH_LOCK,))  # one refresh at a time
        cur.execute("SELECT 1 FROM core.admin_unit WHERE scheme = '2025' AND level = 'province' AND code = %s",
                    (province_code,))
        if cur.fetchone() is None:
            raise config.ConfigError(f"province {province_code!r} is not a province of the 2025 scheme")
        cur.execute(
            """CREATE TEMP TABLE indicator_counts (
                   indicator_code text NOT NULL, commune_code text,
                   numerator numeric NOT NULL, denominator numeric) ON COMMIT DROP"""
        )
        for path in sorted(INDICATORS_DIR.glob("*.sql")):
            cur.execute("INSERT INTO indicator_counts " + path.read_text(encoding="utf-8"), params)
            log.info("indicators from %s: %d count rows", path.name, cur.rowcount)
        cur.execute("DELETE FROM mart.indicator_history WHERE as_of_date = %s", (as_of,))
        cur.execute(warehouse.read_sql("ioc/assemble_indicators.sql"), params)
        rows = cur.rowcount
    took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    log.info("refreshed %d indicator rows for %s in %.2fs", rows, as_of, took)
    return {"as_of_date": as_of.isoformat(), "rows": rows, "seconds": round(took, 2)}
