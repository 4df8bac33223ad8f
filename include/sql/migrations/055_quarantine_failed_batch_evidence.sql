-- A batch that fails validation (quarantine share over the threshold, a critical batch-level
-- expectation) keeps its failing rows here as evidence, so the source can fix them row by row.
-- They are marked: nothing of that batch was published, and they are not quarantined rows in
-- the contract's sense (audit.batch.rows_quarantined stays NULL for a failed batch, so
-- ioc.data_quality and ioc.source_freshness count them nowhere, as before).
ALTER TABLE quarantine.rejected_row ADD COLUMN IF NOT EXISTS batch_failed boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN quarantine.rejected_row.batch_failed IS
    'true: a row of a batch that failed validation, kept as evidence (its batch published nothing)';
