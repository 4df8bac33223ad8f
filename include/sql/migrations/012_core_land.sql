-- land (sources.md §4): current valid version of every land-use right certificate.
-- The owner's citizen ID only as its keyed hash (NULL for organisations).
-- issued_on is the record date: it chooses the commune scheme (legacy before 2025-07-01).
CREATE TABLE IF NOT EXISTS core.land_certificate (
    certificate_no     text PRIMARY KEY,
    parcel_id          text NOT NULL,
    commune_code       text NOT NULL,          -- as delivered (scheme of issued_on)
    commune_code_2025  text NOT NULL,          -- current unit the IOC reports by
    owner_cccd_hash    text,
    owner_kind         text NOT NULL,
    issued_on          date NOT NULL,
    digitized          boolean NOT NULL,
    cleaned            boolean NOT NULL,
    updated_at         timestamptz NOT NULL,
    batch_id           bigint NOT NULL,
    CHECK (owner_kind IN ('person', 'organisation')),
    CHECK ((owner_kind = 'person') = (owner_cccd_hash IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS land_certificate_by_commune ON core.land_certificate (commune_code_2025, issued_on);
