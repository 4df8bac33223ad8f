-- land: staging row s -> core.land columns (the merge around it: ingest/merge.py).
-- The commune code is mapped by the scheme in force on issued_on; the owner's ID is kept as
-- its keyed hash only.
s.certificate_no                                        AS certificate_no,
s.parcel_id                                             AS parcel_id,
s.commune_code                                          AS commune_code,
util.current_commune(s.commune_code, s.issued_on::date) AS commune_code_2025,
s.owner_cccd_hash                                       AS owner_cccd_hash,
s.owner_kind                                            AS owner_kind,
s.issued_on::date                                       AS issued_on,
s.digitized::boolean                                    AS digitized,
s.cleaned::boolean                                      AS cleaned,
s.updated_at::timestamptz                               AS updated_at
