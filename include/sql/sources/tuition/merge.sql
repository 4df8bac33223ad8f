-- Merge the validated tuition batch into core.tuition_payment.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- A stored version is replaced only by one with updated_at >= its own (sources.md).
-- The commune scheme is chosen by the Asia/Ho_Chi_Minh calendar date of paid_at.
INSERT INTO core.tuition_payment AS c (
    payment_id, school_code, commune_code, commune_code_2025, student_ref, school_year,
    amount_vnd, channel, paid_at, paid_on, updated_at, batch_id)
SELECT s.payment_id,
       s.school_code,
       s.commune_code,
       util.current_commune(s.commune_code, util.local_date(s.paid_at::timestamptz)),
       s.student_ref,
       s.school_year,
       s.amount_vnd::bigint,
       s.channel,
       s.paid_at::timestamptz,
       util.local_date(s.paid_at::timestamptz),
       s.updated_at::timestamptz,
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (payment_id) DO UPDATE SET
    school_code       = EXCLUDED.school_code,
    commune_code      = EXCLUDED.commune_code,
    commune_code_2025 = EXCLUDED.commune_code_2025,
    student_ref       = EXCLUDED.student_ref,
    school_year       = EXCLUDED.school_year,
    amount_vnd        = EXCLUDED.amount_vnd,
    channel           = EXCLUDED.channel,
    paid_at           = EXCLUDED.paid_at,
    paid_on           = EXCLUDED.paid_on,
    updated_at        = EXCLUDED.updated_at,
    batch_id          = EXCLUDED.batch_id
WHERE c.updated_at <= EXCLUDED.updated_at;
