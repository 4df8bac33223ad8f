-- Tuition indicator (flow, ioc_views.md): window January 1 of the as-of date's year
-- (year_start) to the as-of date, both inclusive, by the Asia/Ho_Chi_Minh calendar date of
-- paid_at (paid_on, computed with util.local_date at merge). Every payment row counts in the
-- denominator; the numerator is every channel other than cash. Params: as_of, year_start.
SELECT 'TUITION_NONCASH_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE channel <> 'cash') AS numerator,
       count(*) AS denominator
  FROM core.tuition
 WHERE paid_on BETWEEN %(year_start)s AND %(as_of)s
 GROUP BY commune_code_2025
