SELECT source_code, last_success_at, last_attempt_at, last_status, last_rows_loaded,
       last_rows_quarantined, last_error, stale
  FROM ioc.source_freshness
 ORDER BY source_code;
