-- ioc.data_quality: a data-quality score per source per as-of date that the IOC can show
-- ("correct, complete, clean and live", per source, over time). One row per source and date:
-- the latest batch of that source for that date (a re-run replaces the day's figures).
CREATE OR REPLACE VIEW ioc.data_quality AS
WITH latest AS (
    SELECT DISTINCT ON (b.source_code, b.as_of_date) b.*
      FROM audit.batch b
     WHERE b.status IN ('committed', 'failed')
     ORDER BY b.source_code, b.as_of_date, b.batch_id DESC
)
SELECT l.source_code,
       l.as_of_date                                       AS date,
       l.status                                           AS batch_status,
       coalesce(v.evaluated, 0)                           AS expectations_evaluated,
       coalesce(v.passed, 0)                              AS expectations_passed,
       l.rows_read,
       l.rows_loaded,
       l.rows_quarantined,
       CASE WHEN l.status = 'committed' AND l.rows_loaded + l.rows_quarantined > 0
            THEN round(l.rows_loaded::numeric / (l.rows_loaded + l.rows_quarantined), 4)
       END                                                AS share_valid,
       l.finished_at
  FROM latest l
  LEFT JOIN LATERAL (
        SELECT count(*) AS evaluated, count(*) FILTER (WHERE r.success) AS passed
          FROM audit.validation_result r WHERE r.batch_id = l.batch_id) v ON true;

GRANT SELECT ON ioc.data_quality TO ioc_reader;
