-- Turn the raw counts (temp table indicator_counts) into the row set of one as-of date:
-- every commune of the province for every commune-level indicator (no_data where nothing was
-- counted), province rows summed from the records (never averaged percentages), values
-- rounded half-up to 2 decimals in exact numeric arithmetic, statuses and ranks.
-- Params: as_of, province, refreshed_at.
WITH communes AS (
    SELECT code, name FROM core.admin_unit
     WHERE scheme = '2025' AND level = 'commune' AND province_code = %(province)s
), province AS (
    SELECT code, name FROM core.admin_unit
     WHERE scheme = '2025' AND level = 'province' AND code = %(province)s
), catalog AS (
    SELECT c.*, string_to_array(c.source_codes, ',') AS sources FROM mart.indicator_catalog c
), freshness AS (
    -- oldest last successful load among the indicator's sources; NULL if one never loaded
    SELECT c.indicator_code,
           CASE WHEN bool_and(f.last_success_at IS NOT NULL) THEN min(f.last_success_at) END AS fresh_at,
           bool_and(f.last_success_at IS NOT NULL) AS all_loaded
      FROM catalog c
      CROSS JOIN LATERAL unnest(c.sources) AS s(source_code)
      LEFT JOIN ioc.source_freshness f ON f.source_code = s.source_code
     GROUP BY c.indicator_code
), raw AS (
    SELECT c.indicator_code, 'commune' AS admin_level, m.code AS admin_code, m.name AS admin_name,
           coalesce(sum(k.numerator), 0) AS numerator, coalesce(sum(k.denominator), 0) AS denominator
      FROM catalog c
      CROSS JOIN communes m
      LEFT JOIN indicator_counts k ON k.indicator_code = c.indicator_code AND k.commune_code = m.code
     WHERE c.levels = 'province,commune'
     GROUP BY c.indicator_code, m.code, m.name
    UNION ALL
    SELECT c.indicator_code, 'province', p.code, p.name,
           coalesce(sum(k.numerator), 0), coalesce(sum(k.denominator), 0)
      FROM catalog c
      CROSS JOIN province p
      LEFT JOIN indicator_counts k ON k.indicator_code = c.indicator_code
           AND (k.commune_code IS NULL OR k.commune_code IN (SELECT code FROM communes))
     GROUP BY c.indicator_code, p.code, p.name
), valued AS (
    SELECT r.*, c.unit, c.kind, c.target_value, f.fresh_at, f.all_loaded,
           CASE WHEN c.unit = 'count' THEN r.numerator
                WHEN r.denominator > 0 THEN round(100 * r.numerator / r.denominator, 2)
           END AS value
      FROM raw r
      JOIN catalog c USING (indicator_code)
      JOIN freshness f USING (indicator_code)
), statused AS (
    SELECT v.*,
           CASE WHEN v.unit = 'count' AND NOT v.all_loaded THEN 'no_data'
                WHEN v.unit = 'count' THEN 'no_target'
                WHEN v.value IS NULL THEN 'no_data'
                WHEN v.target_value IS NULL THEN 'no_target'
                WHEN v.value >= v.target_value THEN 'met'
                ELSE 'below_target'
           END AS status
      FROM valued v
)
INSERT INTO mart.indicator_history (
    indicator_code, admin_level, admin_code, admin_name, as_of_date, period_start,
    numerator, denominator, value, target_value, status, rank_in_province,
    source_fresh_at, refreshed_at)
SELECT s.indicator_code, s.admin_level, s.admin_code, s.admin_name, %(as_of)s::date,
       CASE WHEN s.kind = 'flow' THEN date_trunc('year', %(as_of)s::date)::date END,
       s.numerator,
       CASE WHEN s.unit = 'percent' THEN s.denominator END,
       CASE WHEN s.status = 'no_data' THEN NULL ELSE s.value END,
       s.target_value,
       s.status,
       CASE WHEN s.admin_level = 'commune' AND s.status <> 'no_data' THEN
            dense_rank() OVER (PARTITION BY s.indicator_code, s.admin_level, (s.status = 'no_data')
                               ORDER BY s.value DESC)
       END,
       s.fresh_at,
       %(refreshed_at)s
  FROM statused s
