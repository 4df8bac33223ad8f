-- Population and e-ID indicators (stock, ioc_views.md): per commune the latest valid snapshot
-- on or before the as-of date (a commune missing or quarantined on D counts with its previous
-- snapshot); the province rows are the sums of those (assemble_indicators.sql).
-- Output: indicator_code, commune_code, numerator, denominator. Params: as_of.
WITH latest AS (
    SELECT DISTINCT ON (commune_code) *
      FROM core.population
     WHERE as_of <= %(as_of)s
     ORDER BY commune_code, as_of DESC
)
SELECT 'CCCD_ISSUED_PCT' AS indicator_code, commune_code, cccd_issued AS numerator,
       residents_14_plus AS denominator
  FROM latest
UNION ALL
SELECT 'VNEID_L2_ACTIVE_PCT', commune_code, vneid_level2_active, residents_14_plus FROM latest
UNION ALL
SELECT 'POPULATION_VERIFIED_PCT', commune_code, records_verified, residents FROM latest
UNION ALL
SELECT 'BHYT_VNEID_LINKED_PCT', commune_code, bhyt_linked_vneid, bhyt_holders FROM latest
