-- ioc.data_quality, per source and as-of date: the day's figures add up, for every batch the
-- date's runs tried (a window, a snapshot, a delivered file: audit.batch.batch_name), its LATEST
-- attempt that read data or failed. So a re-run that only tries the failed files again, or
-- reads an empty window, replaces those files' figures and keeps the others' (replaces the
-- "latest batch" of 016). Same columns and types (the IOC's contract: never rename).
CREATE OR REPLACE VIEW ioc.data_quality AS
WITH latest AS (
    SELECT DISTINCT ON (b.source_code, b.as_of_date, b.batch_name) b.*
      FROM audit.batch b
     WHERE b.status = 'failed' OR (b.status = 'committed' AND b.rows_read IS NOT NULL)
     ORDER BY b.source_code, b.as_of_date, b.batch_name, b.batch_id DESC
)
SELECT j.source_code,
       j.as_of_date                                                        AS date,
       CASE WHEN bool_or(j.status = 'failed') THEN 'failed' ELSE 'committed' END AS batch_status,
       coalesce(sum(v.evaluated), 0)::bigint                               AS expectations_evaluated,
       coalesce(sum(v.passed), 0)::bigint                                  AS expectations_passed,
       sum(j.rows_read)::bigint                                            AS rows_read,
       sum(j.rows_loaded)::bigint                                          AS rows_loaded,
       sum(j.rows_quarantined)::bigint                                     AS rows_quarantined,
       CASE WHEN sum(j.rows_loaded + j.rows_quarantined) FILTER (WHERE j.status = 'committed') > 0
            THEN round(sum(j.rows_loaded) FILTER (WHERE j.status = 'committed')::numeric
                       / sum(j.rows_loaded + j.rows_quarantined) FILTER (WHERE j.status = 'committed'), 4)
       END                                                                 AS share_valid,
       max(j.finished_at)                                                  AS finished_at
  FROM latest j
  LEFT JOIN LATERAL (
        SELECT count(*) AS evaluated, count(*) FILTER (WHERE x.success) AS passed
          FROM audit.validation_result x WHERE x.batch_id = j.batch_id) v ON true
 GROUP BY j.source_code, j.as_of_date;

GRANT SELECT ON ioc.data_quality TO ioc_reader;

-- Repeated rejections of the same key are collapsed at publish (batch.publish): look them up fast.
CREATE INDEX IF NOT EXISTS rejected_row_by_key ON quarantine.rejected_row (source_code, business_key);
