-- public_services: staging row s -> core.public_services columns (the merge around it: ingest/merge.py).
-- The commune scheme is chosen by the Asia/Ho_Chi_Minh calendar date of submitted_at.
s.dossier_id                                                                       AS dossier_id,
s.procedure_code                                                                   AS procedure_code,
s.essential_service::boolean                                                       AS essential_service,
s.commune_code                                                                     AS commune_code,
util.current_commune(s.commune_code, util.local_date(s.submitted_at::timestamptz)) AS commune_code_2025,
s.receiving_agency                                                                 AS receiving_agency,
s.channel                                                                          AS channel,
s.submitted_at::timestamptz                                                        AS submitted_at,
util.local_date(s.submitted_at::timestamptz)                                       AS submitted_on,
s.due_at::timestamptz                                                              AS due_at,
s.status                                                                           AS status,
s.completed_at::timestamptz                                                        AS completed_at,
util.local_date(s.completed_at::timestamptz)                                       AS completed_on,
s.result_digitized::boolean                                                        AS result_digitized,
s.updated_at::timestamptz                                                          AS updated_at
