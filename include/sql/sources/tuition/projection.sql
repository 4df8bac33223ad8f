-- tuition: staging row s -> core.tuition columns (the merge around it: ingest/merge.py).
-- The commune scheme is chosen by the Asia/Ho_Chi_Minh calendar date of paid_at.
s.payment_id         AS payment_id,
s.school_code        AS school_code,
s.commune_code       AS commune_code,
s._commune_code_2025 AS commune_code_2025,
s.student_ref        AS student_ref,
s.school_year        AS school_year,
s.amount_vnd::bigint AS amount_vnd,
s.channel            AS channel,
s._paid_at           AS paid_at,
s._record_date       AS paid_on,
s._updated_at        AS updated_at
