-- Public-service indicators (flow, ioc_views.md): window January 1 of the as-of date's year
-- (year_start) to the as-of date, both inclusive, by the Asia/Ho_Chi_Minh calendar date of the
-- named timestamp (submitted_on / completed_on, computed with util.local_date at merge).
-- Dossiers of province-level agencies (commune_code NULL) give commune_code NULL rows: the
-- assembler counts them in the province row only. Params: as_of, year_start.
SELECT 'PUBLIC_SERVICE_ONLINE_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE channel = 'online') AS numerator,
       count(*) AS denominator
  FROM core.public_services
 WHERE essential_service
   AND status <> 'withdrawn'                       -- withdrawn dossiers count in neither
   AND submitted_on BETWEEN %(year_start)s AND %(as_of)s
 GROUP BY commune_code_2025
UNION ALL
SELECT 'PUBLIC_SERVICE_ONTIME_PCT',
       commune_code_2025,
       count(*) FILTER (WHERE completed_at <= due_at),
       count(*)
  FROM core.public_services
 WHERE status = 'completed'
   AND completed_on BETWEEN %(year_start)s AND %(as_of)s
 GROUP BY commune_code_2025
UNION ALL
SELECT 'PUBLIC_SERVICE_RESULT_DIGITIZED_PCT',
       commune_code_2025,
       count(*) FILTER (WHERE result_digitized),
       count(*)
  FROM core.public_services
 WHERE status = 'completed'
   AND completed_on BETWEEN %(year_start)s AND %(as_of)s
 GROUP BY commune_code_2025
