-- Civil-status indicators (stock, by registered_on): one row per current commune.
-- Output contract of every file in this folder: indicator_code, commune_code (NULL = province
-- level only), numerator, denominator (NULL for count indicators). Params: as_of, year_start.
SELECT 'CIVIL_BOOK_DIGITIZED_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE book_digitized) AS numerator,
       count(*) AS denominator
  FROM core.civil_status
 WHERE registered_on <= %(as_of)s
 GROUP BY commune_code_2025
UNION ALL
SELECT 'CIVIL_SYNCED_PCT',
       commune_code_2025,
       count(*) FILTER (WHERE synced_to_ministry),
       count(*)
  FROM core.civil_status
 WHERE registered_on <= %(as_of)s
 GROUP BY commune_code_2025
