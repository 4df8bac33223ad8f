-- Each source's data-quality figures of its latest date on or before %(as_of)s, looked for
-- within %(days)s days and among %(sources)s (null: every source), so that a year of history
-- is not aggregated for each page (pages.sources looks back further only for the sources it
-- did not find: the longest cadence, social_payments', is 31 days).
SELECT DISTINCT ON (source_code) source_code, date, batch_status, expectations_evaluated,
       expectations_passed, rows_read, rows_loaded, rows_quarantined, share_valid
  FROM ioc.data_quality
 WHERE date <= %(as_of)s AND date > %(as_of)s - %(days)s
   AND (%(sources)s::text[] IS NULL OR source_code = ANY(%(sources)s::text[]))
 ORDER BY source_code, date DESC;
