-- The file ledger of file sources (sources.md, "File delivery rules"; docs/file_sources.md):
-- one row per attempt to load a delivered file. A file is processed once per content: a
-- (source, name, checksum) with a committed row is never loaded again; a failed one is tried
-- again at every run until it loads; the same name with another checksum is a correction.
CREATE TABLE IF NOT EXISTS audit.file_delivery (
    source_code   text NOT NULL REFERENCES audit.source,
    file_name     text NOT NULL,              -- relative to the landing folder
    checksum      text NOT NULL,              -- SHA-256 of the file's bytes
    size_bytes    bigint NOT NULL,
    modified_at   timestamptz NOT NULL,
    named_date    date,                       -- the day or month-end the name names; NULL: undated
    batch_id      bigint NOT NULL REFERENCES audit.batch,
    status        text NOT NULL CHECK (status IN ('running', 'committed', 'failed')),
    seen_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    committed_at  timestamptz,
    PRIMARY KEY (batch_id)
);
CREATE INDEX IF NOT EXISTS file_delivery_by_name ON audit.file_delivery (source_code, file_name, checksum);
