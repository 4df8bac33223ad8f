-- Merge the validated land batch into core.land_certificate.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- The commune code is mapped by the scheme in force on issued_on; the owner's ID is kept as
-- its keyed hash only. A stored version is replaced only by one with updated_at >= its own.
INSERT INTO core.land_certificate AS c (
    certificate_no, parcel_id, commune_code, commune_code_2025, owner_cccd_hash, owner_kind,
    issued_on, digitized, cleaned, updated_at, batch_id)
SELECT s.certificate_no,
       s.parcel_id,
       s.commune_code,
       util.current_commune(s.commune_code, s.issued_on::date),
       s.owner_cccd_hash,
       s.owner_kind,
       s.issued_on::date,
       s.digitized::boolean,
       s.cleaned::boolean,
       s.updated_at::timestamptz,
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (certificate_no) DO UPDATE SET
    parcel_id         = EXCLUDED.parcel_id,
    commune_code      = EXCLUDED.commune_code,
    commune_code_2025 = EXCLUDED.commune_code_2025,
    owner_cccd_hash   = EXCLUDED.owner_cccd_hash,
    owner_kind        = EXCLUDED.owner_kind,
    issued_on         = EXCLUDED.issued_on,
    digitized         = EXCLUDED.digitized,
    cleaned           = EXCLUDED.cleaned,
    updated_at        = EXCLUDED.updated_at,
    batch_id          = EXCLUDED.batch_id
WHERE c.updated_at <= EXCLUDED.updated_at;
