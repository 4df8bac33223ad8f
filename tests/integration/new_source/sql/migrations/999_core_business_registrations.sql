-- business_registrations: current valid version of every household business registration.
-- The owner's ID only as its keyed hash.
CREATE TABLE IF NOT EXISTS core.business_registrations (
    registration_id    text PRIMARY KEY,
    commune_code       text NOT NULL,           -- as delivered (scheme of registered_on)
    commune_code_2025  text NOT NULL,           -- current unit the IOC reports by
    registered_on      date NOT NULL,
    owner_cccd_hash    text,
    online             boolean NOT NULL,
    updated_at         timestamptz NOT NULL,
    batch_id           bigint NOT NULL
);
