-- Failures in two lengths (plugins/ioc_pipeline/failure_text.py): `error` is the short text
-- (at most 500 characters, whole reasons then "(+N more)") that ioc.source_freshness shows as
-- `last_error`; `error_detail` keeps every reason, one per line, for the data-quality report
-- and the engineer.
ALTER TABLE audit.source_run ADD COLUMN IF NOT EXISTS error_detail text;
ALTER TABLE audit.batch      ADD COLUMN IF NOT EXISTS error_detail text;
UPDATE audit.source_run SET error_detail = error WHERE error IS NOT NULL AND error_detail IS NULL;
UPDATE audit.batch      SET error_detail = error WHERE error IS NOT NULL AND error_detail IS NULL;
COMMENT ON COLUMN audit.source_run.error IS 'short failure text (<= 500 characters), shown as ioc.source_freshness.last_error';
COMMENT ON COLUMN audit.source_run.error_detail IS 'every failure reason of the run, one per line';
COMMENT ON COLUMN audit.batch.error IS 'short failure text (<= 500 characters)';
COMMENT ON COLUMN audit.batch.error_detail IS 'every failure reason of the batch, one per line';
