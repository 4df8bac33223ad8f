-- What Data Docs show per expectation besides its outcome (as GX's own Data Docs do): the
-- kwargs the batch was judged with (value sets, bounds, the query), and up to five failing rows,
-- each its business key and the judged field as quarantine shows it (personal IDs by their
-- mask only). Rows validated before this migration have neither.
ALTER TABLE audit.validation_result ADD COLUMN IF NOT EXISTS kwargs jsonb;
ALTER TABLE audit.validation_result ADD COLUMN IF NOT EXISTS sample_rows jsonb;  -- [{"key": ..., "value": ...}]
