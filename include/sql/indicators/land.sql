-- Land indicators (stock, by issued_on): one row per current commune.
-- LAND_CERT_CLEANED_PCT counts only certificates of owner_kind = person (ioc_views.md).
SELECT 'LAND_CERT_DIGITIZED_PCT' AS indicator_code,
       commune_code_2025 AS commune_code,
       count(*) FILTER (WHERE digitized) AS numerator,
       count(*) AS denominator
  FROM core.land
 WHERE issued_on <= %(as_of)s
 GROUP BY commune_code_2025
UNION ALL
SELECT 'LAND_CERT_CLEANED_PCT',
       commune_code_2025,
       count(*) FILTER (WHERE cleaned),
       count(*)
  FROM core.land
 WHERE issued_on <= %(as_of)s AND owner_kind = 'person'
 GROUP BY commune_code_2025
