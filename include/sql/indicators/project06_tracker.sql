-- Project 06 tracker indicators (stock, province level only: commune_code NULL), over the
-- current tracker with no record-date filter; only "overdue" reads the as-of date. Each
-- query returns one row even on an empty table, so a loaded but empty tracker counts 0
-- (a count is no_data only when the source never loaded). Params: as_of, year_start.
SELECT 'P06_TASKS_DONE_PCT' AS indicator_code,
       NULL::text AS commune_code,
       count(*) FILTER (WHERE status = 'done') AS numerator,
       count(*) AS denominator
  FROM core.project06_tracker
 WHERE sheet = 'tasks'
UNION ALL
SELECT 'P06_TASKS_OVERDUE', NULL, count(*), NULL
  FROM core.project06_tracker
 WHERE sheet = 'tasks' AND status <> 'done' AND deadline < %(as_of)s
UNION ALL
SELECT 'P06_MODELS_DONE', NULL, count(*), NULL
  FROM core.project06_tracker
 WHERE sheet = 'models' AND status = 'done'
UNION ALL
SELECT 'P06_MODELS_IN_PROGRESS', NULL, count(*), NULL
  FROM core.project06_tracker
 WHERE sheet = 'models' AND status = 'in_progress'
UNION ALL
SELECT 'P06_MODELS_NOT_STARTED', NULL, count(*), NULL
  FROM core.project06_tracker
 WHERE sheet = 'models' AND status = 'not_started'
