-- Merge the validated civil_status batch into core.civil_status.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- A stored version is replaced only by one with updated_at >= its own (sources.md).
INSERT INTO core.civil_status AS c (
    record_id, registration_type, registered_on, commune_code, commune_code_2025,
    subject_cccd_hash, subject_birth_date, subject_sex, book_digitized, synced_to_ministry,
    updated_at, batch_id)
SELECT s.record_id,
       s.registration_type,
       s.registered_on::date,
       s.commune_code,
       util.current_commune(s.commune_code, s.registered_on::date),
       s.subject_cccd_hash,
       s.subject_birth_date::date,
       s.subject_sex,
       s.book_digitized::boolean,
       s.synced_to_ministry::boolean,
       s.updated_at::timestamptz,
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (record_id) DO UPDATE SET
    registration_type  = EXCLUDED.registration_type,
    registered_on      = EXCLUDED.registered_on,
    commune_code       = EXCLUDED.commune_code,
    commune_code_2025  = EXCLUDED.commune_code_2025,
    subject_cccd_hash  = EXCLUDED.subject_cccd_hash,
    subject_birth_date = EXCLUDED.subject_birth_date,
    subject_sex        = EXCLUDED.subject_sex,
    book_digitized     = EXCLUDED.book_digitized,
    synced_to_ministry = EXCLUDED.synced_to_ministry,
    updated_at         = EXCLUDED.updated_at,
    batch_id           = EXCLUDED.batch_id
WHERE c.updated_at <= EXCLUDED.updated_at;
