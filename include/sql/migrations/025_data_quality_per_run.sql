-- ioc.data_quality, per source and as-of date, from the LATEST RUN of that date that read data
-- (replaces 016's "latest batch"): a file source's run has one batch per file, so the day's
-- figures add up all of them; a re-run whose window is empty reads nothing and must not blank
-- the day's figures. Same columns and types as before (the IOC's contract: never rename).
CREATE OR REPLACE VIEW ioc.data_quality AS
WITH judged AS (            -- batches that read data, or failed trying
    SELECT b.* FROM audit.batch b
     WHERE b.status = 'failed' OR (b.status = 'committed' AND b.rows_read IS NOT NULL)
), runs AS (
    SELECT DISTINCT ON (r.source_code, r.as_of_date) r.run_key, r.source_code, r.as_of_date
      FROM audit.source_run r
     WHERE EXISTS (SELECT 1 FROM judged j WHERE j.run_key = r.run_key)
     ORDER BY r.source_code, r.as_of_date, r.started_at DESC
)
SELECT r.source_code,
       r.as_of_date                                                        AS date,
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
  FROM runs r
  JOIN judged j USING (run_key)
  LEFT JOIN LATERAL (
        SELECT count(*) AS evaluated, count(*) FILTER (WHERE x.success) AS passed
          FROM audit.validation_result x WHERE x.batch_id = j.batch_id) v ON true
 GROUP BY r.source_code, r.as_of_date;

GRANT SELECT ON ioc.data_quality TO ioc_reader;

-- Repeated rejections of the same key are collapsed at publish (batch.publish): look them up fast.
CREATE INDEX IF NOT EXISTS rejected_row_by_key ON quarantine.rejected_row (source_code, business_key);
