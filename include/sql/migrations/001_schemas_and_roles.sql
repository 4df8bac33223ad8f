-- Schemas: staging (per-batch UNLOGGED tables, emptied after each batch), core (the
-- warehouse's current valid version of every record), quarantine, audit (batches,
-- watermarks, validation results), mart (indicator tables behind the ioc views) and
-- ioc (views only: the IOC's contract, ioc_views.md).
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS mart;
CREATE SCHEMA IF NOT EXISTS ioc;
CREATE SCHEMA IF NOT EXISTS util;

-- The IOC's read-only role: SELECT on schema ioc and nothing else (operations.md, Roles).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        CREATE ROLE ioc_reader NOLOGIN;
    END IF;
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA staging, core, quarantine, audit, mart, util FROM PUBLIC;
GRANT USAGE ON SCHEMA ioc TO ioc_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA ioc GRANT SELECT ON TABLES TO ioc_reader;
