-- The audit ledger: one row per batch (what commits or fails as a whole), one row per
-- source run (what ioc.source_freshness reports), watermarks, and every expectation result.

CREATE TABLE IF NOT EXISTS audit.source (
    source_code          text PRIMARY KEY,
    kind                 text NOT NULL,
    sector               text NOT NULL,
    cadence_days         integer NOT NULL,
    quarantine_threshold numeric NOT NULL
);

CREATE TABLE IF NOT EXISTS audit.source_run (
    run_key          text PRIMARY KEY,          -- <source_code>/<airflow run_id>
    source_code      text NOT NULL REFERENCES audit.source,
    dag_run_id       text NOT NULL,
    as_of_date       date NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    status           text NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    rows_loaded      bigint NOT NULL DEFAULT 0,
    rows_quarantined bigint NOT NULL DEFAULT 0,
    error            text
);
CREATE INDEX IF NOT EXISTS source_run_by_source ON audit.source_run (source_code, started_at DESC);

CREATE TABLE IF NOT EXISTS audit.batch (
    batch_id           bigserial PRIMARY KEY,
    source_code        text NOT NULL REFERENCES audit.source,
    run_key            text NOT NULL REFERENCES audit.source_run,
    as_of_date         date NOT NULL,
    batch_name         text NOT NULL,           -- window, snapshot date or file name
    window_start       timestamptz,
    window_end         timestamptz,
    status             text NOT NULL CHECK (status IN ('running', 'committed', 'failed')),
    rows_read          bigint,
    distinct_keys      bigint,
    rows_loaded        bigint,
    rows_quarantined   bigint,
    checksum           text,                    -- sha256 of the staged stream (hashed IDs only)
    extra_columns      text[],                  -- schema drift seen in the delivery
    started_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at        timestamptz,
    error              text
);
CREATE INDEX IF NOT EXISTS batch_by_source ON audit.batch (source_code, batch_id DESC);

CREATE TABLE IF NOT EXISTS audit.watermark (
    source_code text PRIMARY KEY REFERENCES audit.source,
    watermark   timestamptz NOT NULL,
    batch_id    bigint NOT NULL REFERENCES audit.batch,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS audit.validation_result (
    batch_id          bigint NOT NULL REFERENCES audit.batch,
    source_code       text NOT NULL,
    expectation_index integer NOT NULL,
    expectation_type  text NOT NULL,
    column_name       text,
    severity          text NOT NULL,
    row_level         boolean NOT NULL,
    success           boolean NOT NULL,
    observed_value    jsonb,
    element_count     bigint,
    unexpected_count  bigint,
    reason            text,                     -- the suite's meta.reason
    exception         text,
    validated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (batch_id, expectation_index)
);

-- Fingerprint of the pseudonymisation key: a changed key would silently split every person.
CREATE TABLE IF NOT EXISTS audit.pii_key (
    fingerprint text PRIMARY KEY,
    first_used  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Rows that failed a critical row-level expectation: enough to fix the source (key, reasons,
-- the failing fields masked), never a clear personal ID.
CREATE TABLE IF NOT EXISTS quarantine.rejected_row (
    source_code    text NOT NULL,
    batch_id       bigint NOT NULL REFERENCES audit.batch,
    business_key   text,
    record_date    text,
    reasons        jsonb NOT NULL,              -- [{"expectation": ..., "column": ..., "reason": ...}]
    failing_values jsonb NOT NULL,              -- {column: masked or plain non-personal value}
    quarantined_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS rejected_row_by_batch ON quarantine.rejected_row (source_code, batch_id);
