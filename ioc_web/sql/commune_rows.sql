-- Commune rows on %(as_of)s: of one indicator (ranked) or of one commune (every indicator).
SELECT indicator_code, admin_code, admin_name, as_of_date, period_start, numerator, denominator,
       value, target_value, status, rank_in_province, source_fresh_at
  FROM ioc.indicator_history
 WHERE as_of_date = %(as_of)s AND admin_level = 'commune'
   AND (%(indicator_code)s::text IS NULL OR indicator_code = %(indicator_code)s)
   AND (%(admin_code)s::text IS NULL OR admin_code = %(admin_code)s)
 ORDER BY indicator_code, rank_in_province NULLS LAST, admin_name, admin_code;
