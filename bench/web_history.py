"""A year of indicator history and source runs in a migrated warehouse, for the IOC page's
benchmark (bench_web.py) and its tests: the real refresh writes one date's rows (the catalog's
indicators for the province and all its communes, with their real names), which serve as the
template of `days` synthetic dates ending on `until`; every source gets one run and batch a day
with validation results. Values drift towards the target with per-commune offsets, so ranks,
trends and statuses vary the way real ones do. Synthetic: never in a production warehouse."""
from __future__ import annotations

import datetime as dt

from ioc_pipeline import warehouse
from ioc_pipeline.declaration import catalog
from ioc_pipeline.ingest import batch
from ioc_pipeline.views import refresh

HISTORY_SQL = """
CREATE TEMP TABLE template ON COMMIT DROP AS
    SELECT h.*, c.unit, c.kind, c.levels FROM mart.indicator_history h JOIN mart.indicator_catalog c USING (indicator_code)
     WHERE h.as_of_date = %(until)s;
DELETE FROM mart.indicator_history WHERE as_of_date > %(until)s - %(days)s AND as_of_date <= %(until)s;
-- communes: denominator fixed per commune and indicator, share drifting up over the year
CREATE TEMP TABLE synth ON COMMIT DROP AS
WITH d AS (SELECT generate_series(0, %(days)s - 1) AS back)
SELECT t.indicator_code, t.admin_code, t.admin_name, %(until)s::date - d.back AS as_of_date, t.kind, t.target_value,
       200 + (hashtext(t.admin_code || t.indicator_code) & 1023) AS den,
       least(1.0, greatest(0.0, 0.55 + 0.4 * (1 - d.back::numeric / %(days)s)
             + ((hashtext(t.admin_code) & 127) / 127.0 - 0.5) * 0.35
             + ((hashtext(t.admin_code || t.indicator_code || d.back) & 255) / 255.0 - 0.5) * 0.04)) AS share
  FROM template t CROSS JOIN d
 WHERE t.admin_level = 'commune';
INSERT INTO mart.indicator_history (indicator_code, admin_level, admin_code, admin_name, as_of_date, period_start,
       numerator, denominator, value, target_value, status, rank_in_province, source_fresh_at, refreshed_at)
SELECT indicator_code, 'commune', admin_code, admin_name, as_of_date,
       CASE WHEN kind = 'flow' THEN date_trunc('year', as_of_date)::date END,
       num, den, value, target_value,
       CASE WHEN value >= target_value THEN 'met' ELSE 'below_target' END,
       dense_rank() OVER (PARTITION BY as_of_date, indicator_code ORDER BY value DESC),
       now(), now()
  FROM (SELECT s.*, floor(den * share) AS num, round(100 * floor(den * share) / den, 2) AS value FROM synth s) x;
-- the province: sums of the communes' numerators and denominators (never an average of percents)
INSERT INTO mart.indicator_history (indicator_code, admin_level, admin_code, admin_name, as_of_date, period_start,
       numerator, denominator, value, target_value, status, rank_in_province, source_fresh_at, refreshed_at)
SELECT t.indicator_code, 'province', t.admin_code, t.admin_name, c.as_of_date, min(c.period_start),
       sum(c.numerator), sum(c.denominator), round(100 * sum(c.numerator) / sum(c.denominator), 2), t.target_value,
       CASE WHEN round(100 * sum(c.numerator) / sum(c.denominator), 2) >= t.target_value THEN 'met' ELSE 'below_target' END,
       NULL, now(), now()
  FROM template t JOIN mart.indicator_history c
    ON c.indicator_code = t.indicator_code AND c.admin_level = 'commune'
   AND c.as_of_date > %(until)s - %(days)s AND c.as_of_date <= %(until)s
 WHERE t.admin_level = 'province' AND t.levels = 'province,commune'
 GROUP BY t.indicator_code, t.admin_code, t.admin_name, t.target_value, c.as_of_date;
-- province-only indicators (the Project 06 tracker)
INSERT INTO mart.indicator_history (indicator_code, admin_level, admin_code, admin_name, as_of_date, period_start,
       numerator, denominator, value, target_value, status, rank_in_province, source_fresh_at, refreshed_at)
SELECT t.indicator_code, 'province', t.admin_code, t.admin_name, %(until)s::date - d.back, NULL,
       n, CASE WHEN t.unit = 'percent' THEN 120 END,
       CASE WHEN t.unit = 'percent' THEN round(100 * n / 120.0, 2) ELSE n END, t.target_value,
       CASE WHEN t.unit = 'count' THEN 'no_target' WHEN round(100 * n / 120.0, 2) >= t.target_value THEN 'met'
            ELSE 'below_target' END, NULL, now(), now()
  FROM template t CROSS JOIN generate_series(0, %(days)s - 1) AS d(back)
 CROSS JOIN LATERAL (SELECT 5 + ((hashtext(t.indicator_code) & 31) + (%(days)s - d.back) / 10) %% 100 AS n) v
 WHERE t.admin_level = 'province' AND t.levels = 'province';
"""

RUNS_SQL = """
-- one run and one committed batch per source and day, 20 expectations each (a few failing)
INSERT INTO audit.source_run (run_key, source_code, dag_run_id, as_of_date, started_at, finished_at, status,
                              rows_loaded, rows_quarantined)
SELECT s.source_code || '/synthetic__' || d.day, s.source_code, 'synthetic__' || d.day, d.day,
       d.day + time '19:00' + interval '1 day', d.day + time '19:05' + interval '1 day', 'success', 5000, 20
  FROM audit.source s CROSS JOIN generate_series(%(until)s::date - %(days)s + 1, %(until)s::date, '1 day') AS d(day)
ON CONFLICT DO NOTHING;
INSERT INTO audit.batch (source_code, run_key, as_of_date, batch_name, status, rows_read, distinct_keys, rows_loaded,
                         rows_quarantined, started_at, finished_at)
SELECT r.source_code, r.run_key, r.as_of_date, 'synthetic ' || r.as_of_date, 'committed', 5020, 5020, 5000, 20,
       r.started_at, r.finished_at
  FROM audit.source_run r WHERE r.dag_run_id LIKE 'synthetic\\_\\_%%';
INSERT INTO audit.validation_result (batch_id, source_code, expectation_index, expectation_type, severity,
                                     row_level, success)
SELECT b.batch_id, b.source_code, i, 'expect_column_values_to_not_be_null', 'critical', true, i %% 7 <> 0
  FROM audit.batch b CROSS JOIN generate_series(1, 20) AS i WHERE b.batch_name LIKE 'synthetic %%'
 ORDER BY b.batch_id, i;
"""


def fill(dsn: str, until: dt.date, days: int, province_code: str = "48") -> dict:
    """Migrate, refresh `until` on whatever the warehouse holds, then write `days` synthetic
    dates ending on `until` and a run per source and day. Returns row counts."""
    conn = warehouse.connect(dsn)
    try:
        warehouse.migrate(conn)
        with warehouse.transaction(conn) as cur:
            for source in catalog.load().values():
                batch.register_source(cur, source)
        refresh.refresh(conn, until, province_code)
        with warehouse.transaction(conn) as cur:
            cur.execute(HISTORY_SQL, {"until": until, "days": days})
            cur.execute(RUNS_SQL, {"until": until, "days": days})
        # what autovacuum does to a history that no longer changes: statistics, and the
        # visibility map that lets the trend reads use the index alone
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE mart.indicator_history, audit.batch, audit.source_run, audit.validation_result")
        return counts(dsn)
    finally:
        conn.close()


def counts(dsn: str) -> dict:
    conn = warehouse.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT as_of_date) FROM mart.indicator_history")
            rows, dates = cur.fetchone()
        return {"history_rows": rows, "dates": dates}
    finally:
        conn.close()
