-- The province's row of every indicator (or of %(indicator_code)s) on %(as_of)s, with the value on the latest refreshed
-- date on or before 7 and 30 days earlier, and how many communes meet the target.
SELECT h.indicator_code, h.admin_code, h.admin_name, h.as_of_date, h.period_start, h.numerator,
       h.denominator, h.value, h.target_value, h.status, h.source_fresh_at, h.refreshed_at,
       w.as_of_date AS week_date, w.value AS week_value,
       m.as_of_date AS month_date, m.value AS month_value,
       c.communes, c.communes_met, c.communes_no_data
  FROM ioc.indicator_history h
  LEFT JOIN LATERAL (
        SELECT p.as_of_date, p.value FROM ioc.indicator_history p
         WHERE p.admin_level = 'province' AND p.admin_code = h.admin_code
           AND p.indicator_code = h.indicator_code AND p.as_of_date <= h.as_of_date - 7
         ORDER BY p.as_of_date DESC LIMIT 1) w ON true
  LEFT JOIN LATERAL (
        SELECT p.as_of_date, p.value FROM ioc.indicator_history p
         WHERE p.admin_level = 'province' AND p.admin_code = h.admin_code
           AND p.indicator_code = h.indicator_code AND p.as_of_date <= h.as_of_date - 30
         ORDER BY p.as_of_date DESC LIMIT 1) m ON true
  LEFT JOIN LATERAL (
        SELECT count(*) AS communes,
               count(*) FILTER (WHERE x.status = 'met') AS communes_met,
               count(*) FILTER (WHERE x.status = 'no_data') AS communes_no_data
          FROM ioc.indicator_history x
         WHERE x.as_of_date = h.as_of_date AND x.indicator_code = h.indicator_code
           AND x.admin_level = 'commune') c ON true
 WHERE h.as_of_date = %(as_of)s AND h.admin_level = 'province'
   AND (%(indicator_code)s::text IS NULL OR h.indicator_code = %(indicator_code)s)
 ORDER BY h.indicator_code;
