-- public_services: staging row s -> core.public_services columns (the merge around it: ingest/merge.py).
-- The commune scheme is chosen by the Asia/Ho_Chi_Minh calendar date of submitted_at.
s.dossier_id                     AS dossier_id,
s.procedure_code                 AS procedure_code,
s.essential_service::boolean     AS essential_service,
s.commune_code                   AS commune_code,
s._commune_code_2025             AS commune_code_2025,
s.receiving_agency               AS receiving_agency,
s.channel                        AS channel,
s._submitted_at                  AS submitted_at,
s._record_date                   AS submitted_on,
s._due_at                        AS due_at,
s.status                         AS status,
s._completed_at                  AS completed_at,
util.local_date(s._completed_at) AS completed_on,
s.result_digitized::boolean      AS result_digitized,
s._updated_at                    AS updated_at
