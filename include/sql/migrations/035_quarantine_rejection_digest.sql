-- publish keeps one row per repeated rejection (same source, key, record date, reasons and
-- failing values). Compared with IS NOT DISTINCT FROM on jsonb, that test could only run as a
-- nested loop of every quarantined row of the source against every new one (quadratic in the
-- quarantine: 160-180 s at 1M rows). The digest turns it into indexed equality; publish still
-- checks the full columns, so a digest collision can never remove a different rejection.
ALTER TABLE quarantine.rejected_row ADD COLUMN IF NOT EXISTS rejection_digest uuid GENERATED ALWAYS AS (
    md5(coalesce('k' || business_key, 'n') || '|' || coalesce('d' || record_date, 'n') || '|'
        || reasons::text || '|' || failing_values::text)::uuid) STORED;
CREATE INDEX IF NOT EXISTS rejected_row_by_digest ON quarantine.rejected_row (source_code, rejection_digest);
