-- Each source's data-quality figures of its latest date on or before %(as_of)s, looked for
-- within 35 days (the longest cadence, social_payments, is 31) so a year of history is not
-- aggregated for each page.
SELECT DISTINCT ON (source_code) source_code, date, batch_status, expectations_evaluated,
       expectations_passed, rows_read, rows_loaded, rows_quarantined, share_valid
  FROM ioc.data_quality
 WHERE date <= %(as_of)s AND date > %(as_of)s - 35
 ORDER BY source_code, date DESC;
