-- Least privilege (operations.md, "Roles and migrations"). The role that runs the migrations
-- owns every object (docker compose: ioc_owner; the embedded server: its superuser). The DAGs
-- log in as a member of ioc_loader, which holds exactly what loading, the views refresh, the
-- reconciliation and the data-quality report need: rows, not structure.
--   - USAGE on the schemas; CREATE on staging only (per-batch UNLOGGED tables, owned by the
--     login that loads and dropped by it);
--   - SELECT, INSERT, UPDATE, DELETE on the tables of core, quarantine, audit and
--     mart.indicator_history (the refresh deletes and inserts a date's rows: no ownership);
--   - SELECT only on the reference data (core.admin_unit, core.commune_map_legacy_2025), the
--     indicator catalog and audit.schema_migration: migrate writes those, as the owner;
--   - SELECT on the ioc views, EXECUTE on util's functions, the sequences behind the serial keys.
-- It cannot DROP, ALTER, TRUNCATE or CREATE anything outside staging, nor grant. ioc_reader is
-- unchanged. DEFAULT PRIVILEGES give the same rights on the tables later migrations create (they
-- apply to objects created by the role running this migration: run every migration as the owner).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ioc_loader') THEN
        CREATE ROLE ioc_loader NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA staging, core, quarantine, audit, mart, util, ioc TO ioc_loader;
GRANT CREATE ON SCHEMA staging TO ioc_loader;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA core, quarantine, audit TO ioc_loader;
REVOKE INSERT, UPDATE, DELETE ON core.admin_unit, core.commune_map_legacy_2025, audit.schema_migration
    FROM ioc_loader;
GRANT SELECT ON ALL TABLES IN SCHEMA mart, ioc TO ioc_loader;
GRANT INSERT, UPDATE, DELETE ON mart.indicator_history TO ioc_loader;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA core, quarantine, audit, mart TO ioc_loader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA util TO ioc_loader;

ALTER DEFAULT PRIVILEGES IN SCHEMA core, quarantine, audit
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ioc_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA mart, ioc GRANT SELECT ON TABLES TO ioc_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA core, quarantine, audit, mart
    GRANT USAGE, SELECT ON SEQUENCES TO ioc_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA util GRANT EXECUTE ON FUNCTIONS TO ioc_loader;
