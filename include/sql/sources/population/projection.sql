-- population: staging row s -> core.population columns (the merge around it: ingest/merge.py).
-- Counts are typed by util.try_count; a malformed one was quarantined by the suite.
s.commune_code                        AS commune_code,
util.try_date(s.as_of)                AS as_of,
util.try_count(s.residents)           AS residents,
util.try_count(s.residents_14_plus)   AS residents_14_plus,
util.try_count(s.cccd_issued)         AS cccd_issued,
util.try_count(s.vneid_level2_active) AS vneid_level2_active,
util.try_count(s.records_verified)    AS records_verified,
util.try_count(s.bhyt_holders)        AS bhyt_holders,
util.try_count(s.bhyt_linked_vneid)   AS bhyt_linked_vneid
