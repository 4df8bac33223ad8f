-- population (sources.md §2): the valid daily snapshot rows per commune, one per (commune, as_of).
-- Snapshots are kept by date (not only the latest): a stock indicator for D takes, per commune,
-- the latest valid snapshot on or before D, so a commune missing or quarantined on D falls
-- back to its previous day. Counts only; the source carries no personal data.
CREATE TABLE IF NOT EXISTS core.population_snapshot (
    commune_code        text NOT NULL,       -- always the current (2025) scheme
    as_of               date NOT NULL,
    residents           bigint NOT NULL CHECK (residents >= 0),
    residents_14_plus   bigint NOT NULL CHECK (residents_14_plus BETWEEN 0 AND residents),
    cccd_issued         bigint NOT NULL CHECK (cccd_issued BETWEEN 0 AND residents_14_plus),
    vneid_level2_active bigint NOT NULL CHECK (vneid_level2_active BETWEEN 0 AND residents_14_plus),
    records_verified    bigint NOT NULL CHECK (records_verified BETWEEN 0 AND residents),
    bhyt_holders        bigint NOT NULL CHECK (bhyt_holders BETWEEN 0 AND residents),
    bhyt_linked_vneid   bigint NOT NULL CHECK (bhyt_linked_vneid BETWEEN 0 AND bhyt_holders),
    batch_id            bigint NOT NULL,
    PRIMARY KEY (commune_code, as_of)
);

-- Staged count -> bigint, or NULL unless it is the text of a non-negative JSON integer of at
-- most 15 digits (a JSON string '"12"', a float '1.5', a sign or an overflow all give NULL).
-- Plain SQL with CASE (never casts a non-matching value), so it inlines and runs in parallel.
CREATE OR REPLACE FUNCTION util.try_count(p text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p ~ '^[0-9]{1,15}$' THEN p::bigint END
$$;
