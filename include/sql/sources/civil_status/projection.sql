-- civil_status: staging row s -> core.civil_status columns (the merge around it: ingest/merge.py).
-- The commune scheme is the one in force on registered_on.
s.record_id                                                 AS record_id,
s.registration_type                                         AS registration_type,
s.registered_on::date                                       AS registered_on,
s.commune_code                                              AS commune_code,
util.current_commune(s.commune_code, s.registered_on::date) AS commune_code_2025,
s.subject_cccd_hash                                         AS subject_cccd_hash,
s.subject_birth_date::date                                  AS subject_birth_date,
s.subject_sex                                               AS subject_sex,
s.book_digitized::boolean                                   AS book_digitized,
s.synced_to_ministry::boolean                               AS synced_to_ministry,
s.updated_at::timestamptz                                   AS updated_at
