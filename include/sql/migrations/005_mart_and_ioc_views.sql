-- Indicator tables behind the ioc views, and the views themselves (ioc_views.md).
-- The refresh DAG rewrites one as_of_date's rows of mart.indicator_history in a single
-- transaction; every ioc view is a plain view over it, so a reader sees the old or the new
-- row set (MVCC), never an error and never a mix, and is never blocked.

CREATE TABLE IF NOT EXISTS mart.indicator_catalog (
    indicator_code text PRIMARY KEY,
    name_vi        text NOT NULL,
    name_en        text NOT NULL,
    sector         text NOT NULL,
    unit           text NOT NULL CHECK (unit IN ('percent', 'count')),
    kind           text NOT NULL CHECK (kind IN ('stock', 'flow')),
    levels         text NOT NULL CHECK (levels IN ('province', 'province,commune')),
    target_value   numeric,
    source_codes   text NOT NULL,
    definition     text NOT NULL
);

CREATE TABLE IF NOT EXISTS mart.indicator_history (
    indicator_code   text NOT NULL REFERENCES mart.indicator_catalog,
    admin_level      text NOT NULL CHECK (admin_level IN ('province', 'commune')),
    admin_code       text NOT NULL,
    admin_name       text NOT NULL,
    as_of_date       date NOT NULL,
    period_start     date,
    numerator        numeric NOT NULL,
    denominator      numeric,
    value            numeric,
    target_value     numeric,
    status           text NOT NULL CHECK (status IN ('met', 'below_target', 'no_target', 'no_data')),
    rank_in_province integer,
    source_fresh_at  timestamptz,
    refreshed_at     timestamptz NOT NULL,
    PRIMARY KEY (as_of_date, indicator_code, admin_level, admin_code)
);

CREATE OR REPLACE VIEW ioc.indicator_catalog AS
SELECT indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value,
       source_codes, definition
  FROM mart.indicator_catalog;

CREATE OR REPLACE VIEW ioc.indicator_history AS
SELECT indicator_code, admin_level, admin_code, admin_name, as_of_date, period_start,
       numerator, denominator, value, target_value, status, rank_in_province,
       source_fresh_at, refreshed_at
  FROM mart.indicator_history;

CREATE OR REPLACE VIEW ioc.indicator_values AS
SELECT indicator_code, admin_level, admin_code, admin_name, as_of_date, period_start,
       numerator, denominator, value, target_value, status, rank_in_province,
       source_fresh_at, refreshed_at
  FROM mart.indicator_history
 WHERE as_of_date = (SELECT max(as_of_date) FROM mart.indicator_history);

-- last_success_at: end of the last run in which every batch of the source committed.
CREATE OR REPLACE VIEW ioc.source_freshness AS
SELECT s.source_code,
       ok.finished_at        AS last_success_at,
       last.started_at       AS last_attempt_at,
       last.status           AS last_status,
       last.rows_loaded      AS last_rows_loaded,
       last.rows_quarantined AS last_rows_quarantined,
       last.error            AS last_error,
       (ok.finished_at IS NULL
        OR now() - ok.finished_at > make_interval(days => s.cadence_days) + interval '6 hours') AS stale
  FROM audit.source s
  LEFT JOIN LATERAL (
        SELECT r.* FROM audit.source_run r
         WHERE r.source_code = s.source_code
         ORDER BY r.started_at DESC LIMIT 1) last ON true
  LEFT JOIN LATERAL (
        SELECT r.finished_at FROM audit.source_run r
         WHERE r.source_code = s.source_code AND r.status = 'success'
         ORDER BY r.finished_at DESC LIMIT 1) ok ON true;

GRANT SELECT ON ALL TABLES IN SCHEMA ioc TO ioc_reader;
