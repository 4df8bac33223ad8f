-- Sources whose ioc.source_freshness.stale differs from the state last notified; records the new
-- state in the same statement (orchestration/freshness.py sends one notice per row returned).
WITH current_state AS (
    SELECT f.source_code, f.stale, f.last_success_at, f.last_status, f.last_error
      FROM ioc.source_freshness f
), turned AS (
    SELECT c.*
      FROM current_state c
      LEFT JOIN audit.freshness_notice n USING (source_code)
     WHERE c.stale IS DISTINCT FROM coalesce(n.stale, false)
), recorded AS (
    INSERT INTO audit.freshness_notice (source_code, stale, changed_at, run_id)
    SELECT source_code, stale, clock_timestamp(), %(run_id)s FROM turned
    ON CONFLICT (source_code) DO UPDATE
       SET stale = excluded.stale, changed_at = excluded.changed_at, run_id = excluded.run_id
)
SELECT source_code, stale, last_success_at, last_status, last_error
  FROM turned
 ORDER BY source_code
