-- Business registrations indicator (stock): every registration on or before the as-of date.
SELECT 'BUSINESS_ONLINE_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE online) AS numerator,
       count(*) AS denominator
  FROM core.business_registrations
 WHERE registered_on <= %(as_of)s
 GROUP BY commune_code_2025
