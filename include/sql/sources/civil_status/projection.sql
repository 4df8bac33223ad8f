-- civil_status: staging row s -> core.civil_status columns (the merge around it: ingest/merge.py).
-- The commune scheme is the one in force on registered_on.
s.record_id                   AS record_id,
s.registration_type           AS registration_type,
s._registered_on              AS registered_on,
s.commune_code                AS commune_code,
s._commune_code_2025          AS commune_code_2025,
s.subject_cccd_hash           AS subject_cccd_hash,
s._subject_birth_date         AS subject_birth_date,
s.subject_sex                 AS subject_sex,
s.book_digitized::boolean     AS book_digitized,
s.synced_to_ministry::boolean AS synced_to_ministry,
s._updated_at                 AS updated_at
