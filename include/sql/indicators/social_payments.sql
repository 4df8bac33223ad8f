-- Social payment indicator (flow, ioc_views.md): window January 1 of the as-of date's year
-- (year_start) to the as-of date, both inclusive, by paid_on. Non-cash: bank_transfer and
-- e_wallet; postal_cash and cash are cash (sources.md §7). Params: as_of, year_start.
SELECT 'SOCIAL_NONCASH_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE channel IN ('bank_transfer', 'e_wallet')) AS numerator,
       count(*) AS denominator
  FROM core.social_payments
 WHERE paid_on BETWEEN %(year_start)s AND %(as_of)s
 GROUP BY commune_code_2025
