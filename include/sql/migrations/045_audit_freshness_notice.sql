-- The stale state of each source as last notified (orchestration/freshness.py): a source turning
-- stale in ioc.source_freshness is notified once per turn, and its recovery once, however many
-- refresh runs see the same state. No row yet = fresh.
CREATE TABLE IF NOT EXISTS audit.freshness_notice (
    source_code text PRIMARY KEY,
    stale       boolean NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_id      text
);
