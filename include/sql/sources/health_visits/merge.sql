-- Merge one validated health_visits file into core.health_visit.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- Params: batch_id, file_name, file_date (the file's named day).
-- visit_at is local wall-clock text (Asia/Ho_Chi_Minh); its local date picks the commune scheme.
-- A stored row is replaced only by a correction of its own file or by a file with a named
-- date on or after its own (docs/file_sources.md); a quarantined row never gets here.
INSERT INTO core.health_visit AS c (
    visit_id, facility_code, commune_code, commune_code_2025, visit_at, visit_on,
    patient_cccd_hash, bhyt_card_no_hash, identification, source_file, file_date, batch_id)
SELECT s.visit_id,
       s.facility_code,
       s.commune_code,
       util.current_commune(s.commune_code, util.local_date(v.at)),
       v.at,
       util.local_date(v.at),
       s.patient_cccd_hash,
       s.bhyt_card_no_hash,
       s.identification,
       %(file_name)s,
       %(file_date)s::date,
       %(batch_id)s
  FROM {staging} s
 CROSS JOIN LATERAL (SELECT util.try_local_timestamp(s.visit_at) AS at) v
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (visit_id) DO UPDATE SET
    facility_code     = EXCLUDED.facility_code,
    commune_code      = EXCLUDED.commune_code,
    commune_code_2025 = EXCLUDED.commune_code_2025,
    visit_at          = EXCLUDED.visit_at,
    visit_on          = EXCLUDED.visit_on,
    patient_cccd_hash = EXCLUDED.patient_cccd_hash,
    bhyt_card_no_hash = EXCLUDED.bhyt_card_no_hash,
    identification    = EXCLUDED.identification,
    source_file       = EXCLUDED.source_file,
    file_date         = EXCLUDED.file_date,
    batch_id          = EXCLUDED.batch_id
WHERE c.source_file = EXCLUDED.source_file OR c.file_date <= EXCLUDED.file_date;
