-- health_visits (sources.md §6): current valid version of every health-insurance examination.
-- Personal IDs only as their keyed hashes. visit_at arrives as local wall-clock text without
-- offset: it is read in Asia/Ho_Chi_Minh (util.try_local_timestamp), and its local calendar
-- date (visit_on) chooses the commune scheme and the indicator window.
-- source_file / file_date: the delivery the row came from (docs/file_sources.md): a row is
-- replaced only by a correction of the same file or by a file with a named date on or after it.
CREATE TABLE IF NOT EXISTS core.health_visit (
    visit_id           text PRIMARY KEY,
    facility_code      text NOT NULL,
    commune_code       text NOT NULL,           -- as delivered (scheme of visit_on)
    commune_code_2025  text NOT NULL,           -- current unit the IOC reports by
    visit_at           timestamptz NOT NULL,
    visit_on           date NOT NULL,           -- util.local_date(visit_at)
    patient_cccd_hash  text,
    bhyt_card_no_hash  text,
    identification     text NOT NULL CHECK (identification IN ('chip_cccd', 'vneid_qr', 'bhyt_card', 'paper')),
    source_file        text NOT NULL,
    file_date          date,                    -- the file's named day
    batch_id           bigint NOT NULL,
    CHECK (patient_cccd_hash IS NOT NULL OR bhyt_card_no_hash IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS health_visit_by_visit ON core.health_visit (visit_on, commune_code_2025);
