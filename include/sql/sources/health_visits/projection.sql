-- health_visits: staging row s -> core.health_visits columns (the merge around it: ingest/merge.py).
-- visit_at is local wall-clock text (Asia/Ho_Chi_Minh); its local date picks the commune scheme.
s.visit_id                                                                                  AS visit_id,
s.facility_code                                                                             AS facility_code,
s.commune_code                                                                              AS commune_code,
util.current_commune(s.commune_code, util.local_date(util.try_local_timestamp(s.visit_at))) AS commune_code_2025,
util.try_local_timestamp(s.visit_at)                                                        AS visit_at,
util.local_date(util.try_local_timestamp(s.visit_at))                                       AS visit_on,
s.patient_cccd_hash                                                                         AS patient_cccd_hash,
s.bhyt_card_no_hash                                                                         AS bhyt_card_no_hash,
s.identification                                                                            AS identification
