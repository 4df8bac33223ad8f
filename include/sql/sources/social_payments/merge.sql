-- Merge one validated social_payments workbook into core.social_payment.
-- {staging}: the deduplicated staging table; {rejects}: its quarantined row ids.
-- Params: batch_id, file_name, file_date (last day of the file's named month).
-- Workbook cells arrive as text: numbers as digits, dates as YYYY-MM-DD; paid_on picks the
-- commune scheme. A stored row is replaced only by a correction of its own file or by a file
-- with a named date on or after its own (docs/file_sources.md).
INSERT INTO core.social_payment AS c (
    payment_id, beneficiary_cccd_hash, commune_code, commune_code_2025, program, period,
    amount_vnd, channel, paid_on, source_file, file_date, batch_id)
SELECT s.payment_id,
       s.beneficiary_cccd_hash,
       s.commune_code,
       util.current_commune(s.commune_code, util.try_date(s.paid_on)),
       s.program,
       s.period,
       s.amount_vnd::bigint,
       s.channel,
       util.try_date(s.paid_on),
       %(file_name)s,
       %(file_date)s::date,
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (payment_id) DO UPDATE SET
    beneficiary_cccd_hash = EXCLUDED.beneficiary_cccd_hash,
    commune_code          = EXCLUDED.commune_code,
    commune_code_2025     = EXCLUDED.commune_code_2025,
    program               = EXCLUDED.program,
    period                = EXCLUDED.period,
    amount_vnd            = EXCLUDED.amount_vnd,
    channel               = EXCLUDED.channel,
    paid_on               = EXCLUDED.paid_on,
    source_file           = EXCLUDED.source_file,
    file_date             = EXCLUDED.file_date,
    batch_id              = EXCLUDED.batch_id
WHERE c.source_file = EXCLUDED.source_file OR c.file_date <= EXCLUDED.file_date;
