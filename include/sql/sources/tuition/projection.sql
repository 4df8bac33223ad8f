-- tuition: staging row s -> core.tuition columns (the merge around it: ingest/merge.py).
-- The commune scheme is chosen by the Asia/Ho_Chi_Minh calendar date of paid_at.
s.payment_id                                                                  AS payment_id,
s.school_code                                                                 AS school_code,
s.commune_code                                                                AS commune_code,
util.current_commune(s.commune_code, util.local_date(s.paid_at::timestamptz)) AS commune_code_2025,
s.student_ref                                                                 AS student_ref,
s.school_year                                                                 AS school_year,
s.amount_vnd::bigint                                                          AS amount_vnd,
s.channel                                                                     AS channel,
s.paid_at::timestamptz                                                        AS paid_at,
util.local_date(s.paid_at::timestamptz)                                       AS paid_on,
s.updated_at::timestamptz                                                     AS updated_at
