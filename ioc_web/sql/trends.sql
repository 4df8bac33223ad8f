-- One administrative unit's values over (%(since)s, %(as_of)s], one row per indicator (all, or
-- %(indicator_code)s) with its dates and values as arrays: the trend lines, in few rows. The
-- subquery's order (the index's, mart.indicator_history_by_unit) is the arrays' order.
SELECT indicator_code, array_agg(day) AS dates, array_agg(value) AS trend_values
  FROM (SELECT indicator_code, as_of_date::text AS day, value::float8 AS value
          FROM ioc.indicator_history
         WHERE admin_level = %(admin_level)s AND admin_code = %(admin_code)s
           AND (%(indicator_code)s::text IS NULL OR indicator_code = %(indicator_code)s)
           AND as_of_date > %(since)s AND as_of_date <= %(as_of)s
         ORDER BY indicator_code, as_of_date) t
 GROUP BY indicator_code
 ORDER BY indicator_code;
