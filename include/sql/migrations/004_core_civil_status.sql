-- civil_status (sources.md §1): current valid version of every civil-status record.
-- No name is kept; the citizen ID only as its keyed hash.
CREATE TABLE IF NOT EXISTS core.civil_status (
    record_id           text PRIMARY KEY,
    registration_type   text NOT NULL,
    registered_on       date NOT NULL,
    commune_code        text NOT NULL,          -- as delivered (scheme of registered_on)
    commune_code_2025   text NOT NULL,          -- current unit the IOC reports by
    subject_cccd_hash   text,
    subject_birth_date  date,
    subject_sex         text NOT NULL,
    book_digitized      boolean NOT NULL,
    synced_to_ministry  boolean NOT NULL,
    updated_at          timestamptz NOT NULL,
    batch_id            bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS civil_status_by_commune ON core.civil_status (commune_code_2025, registered_on);
