-- Merge the validated population snapshot batch into core.population_snapshot.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- A snapshot has no updated_at: a later delivery for the same (commune, as_of) replaces the
-- earlier one (sources.md §2), i.e. the row of the later batch wins. Quarantined rows are
-- not merged, so they never replace a row loaded earlier.
INSERT INTO core.population_snapshot AS p (
    commune_code, as_of, residents, residents_14_plus, cccd_issued, vneid_level2_active,
    records_verified, bhyt_holders, bhyt_linked_vneid, batch_id)
SELECT s.commune_code,
       util.try_date(s.as_of),
       util.try_count(s.residents),
       util.try_count(s.residents_14_plus),
       util.try_count(s.cccd_issued),
       util.try_count(s.vneid_level2_active),
       util.try_count(s.records_verified),
       util.try_count(s.bhyt_holders),
       util.try_count(s.bhyt_linked_vneid),
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (commune_code, as_of) DO UPDATE SET
    residents           = EXCLUDED.residents,
    residents_14_plus   = EXCLUDED.residents_14_plus,
    cccd_issued         = EXCLUDED.cccd_issued,
    vneid_level2_active = EXCLUDED.vneid_level2_active,
    records_verified    = EXCLUDED.records_verified,
    bhyt_holders        = EXCLUDED.bhyt_holders,
    bhyt_linked_vneid   = EXCLUDED.bhyt_linked_vneid,
    batch_id            = EXCLUDED.batch_id
WHERE p.batch_id <= EXCLUDED.batch_id;
