-- business_registrations: staging row s -> core.business_registrations columns (the merge
-- around it: ingest/merge.py). The commune scheme is the one in force on registered_on.
s.registration_id                                                     AS registration_id,
s.commune_code                                                        AS commune_code,
util.current_commune(s.commune_code, util.try_date(s.registered_on)) AS commune_code_2025,
util.try_date(s.registered_on)                                        AS registered_on,
s.owner_cccd_hash                                                     AS owner_cccd_hash,
s.online::boolean                                                     AS online,
s.updated_at::timestamptz                                             AS updated_at
