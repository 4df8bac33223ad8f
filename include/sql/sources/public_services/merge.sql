-- Merge the validated public_services batch into core.public_services.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- A stored version is replaced only by one with updated_at >= its own (sources.md).
-- The commune scheme is chosen by the Asia/Ho_Chi_Minh calendar date of submitted_at.
INSERT INTO core.public_services AS c (
    dossier_id, procedure_code, essential_service, commune_code, commune_code_2025,
    receiving_agency, channel, submitted_at, submitted_on, due_at, status, completed_at,
    completed_on, result_digitized, updated_at, batch_id)
SELECT s.dossier_id,
       s.procedure_code,
       s.essential_service::boolean,
       s.commune_code,
       util.current_commune(s.commune_code, util.local_date(s.submitted_at::timestamptz)),
       s.receiving_agency,
       s.channel,
       s.submitted_at::timestamptz,
       util.local_date(s.submitted_at::timestamptz),
       s.due_at::timestamptz,
       s.status,
       s.completed_at::timestamptz,
       util.local_date(s.completed_at::timestamptz),
       s.result_digitized::boolean,
       s.updated_at::timestamptz,
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (dossier_id) DO UPDATE SET
    procedure_code    = EXCLUDED.procedure_code,
    essential_service = EXCLUDED.essential_service,
    commune_code      = EXCLUDED.commune_code,
    commune_code_2025 = EXCLUDED.commune_code_2025,
    receiving_agency  = EXCLUDED.receiving_agency,
    channel           = EXCLUDED.channel,
    submitted_at      = EXCLUDED.submitted_at,
    submitted_on      = EXCLUDED.submitted_on,
    due_at            = EXCLUDED.due_at,
    status            = EXCLUDED.status,
    completed_at      = EXCLUDED.completed_at,
    completed_on      = EXCLUDED.completed_on,
    result_digitized  = EXCLUDED.result_digitized,
    updated_at        = EXCLUDED.updated_at,
    batch_id          = EXCLUDED.batch_id
WHERE c.updated_at <= EXCLUDED.updated_at;
