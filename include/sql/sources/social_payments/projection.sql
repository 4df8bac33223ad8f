-- social_payments: staging row s -> core.social_payments columns (the merge around it: ingest/merge.py).
-- Workbook cells arrive as text: numbers as digits, dates as YYYY-MM-DD; paid_on picks the
-- commune scheme.
s.payment_id                                                   AS payment_id,
s.beneficiary_cccd_hash                                        AS beneficiary_cccd_hash,
s.commune_code                                                 AS commune_code,
util.current_commune(s.commune_code, util.try_date(s.paid_on)) AS commune_code_2025,
s.program                                                      AS program,
s.period                                                       AS period,
s.amount_vnd::bigint                                           AS amount_vnd,
s.channel                                                      AS channel,
util.try_date(s.paid_on)                                       AS paid_on
