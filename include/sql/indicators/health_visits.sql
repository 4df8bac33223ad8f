-- Health-insurance visit indicator (flow, ioc_views.md): window January 1 of the as-of date's
-- year (year_start) to the as-of date, both inclusive, by the Asia/Ho_Chi_Minh calendar date
-- of visit_at (visit_on, computed at merge). Numerator: patients identified by chip citizen
-- ID or VNeID QR code. Params: as_of, year_start.
SELECT 'BHYT_CHIP_ID_VISITS_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE identification IN ('chip_cccd', 'vneid_qr')) AS numerator,
       count(*) AS denominator
  FROM core.health_visits
 WHERE visit_on BETWEEN %(year_start)s AND %(as_of)s
 GROUP BY commune_code_2025
