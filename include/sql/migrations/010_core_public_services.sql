-- public_services (sources.md §3): current valid version of every administrative dossier.
-- submitted_at is the record date; its Asia/Ho_Chi_Minh calendar date chooses the commune
-- scheme (legacy before 2025-07-01) and is kept as submitted_on for the indicator windows.
CREATE TABLE IF NOT EXISTS core.public_services (
    dossier_id         text PRIMARY KEY,
    procedure_code     text NOT NULL,
    essential_service  boolean NOT NULL,
    commune_code       text,                    -- as delivered; NULL = province-level agency
    commune_code_2025  text,                    -- current unit; NULL = counts at province level only
    receiving_agency   text NOT NULL,
    channel            text NOT NULL,
    submitted_at       timestamptz NOT NULL,
    submitted_on       date NOT NULL,           -- util.local_date(submitted_at)
    due_at             timestamptz NOT NULL,
    status             text NOT NULL,
    completed_at       timestamptz,
    completed_on       date,                    -- util.local_date(completed_at)
    result_digitized   boolean NOT NULL,
    updated_at         timestamptz NOT NULL,
    batch_id           bigint NOT NULL,
    CHECK ((commune_code IS NULL) = (commune_code_2025 IS NULL)),
    CHECK (status <> 'completed' OR completed_at IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS public_services_by_submitted ON core.public_services (submitted_on, commune_code_2025);
CREATE INDEX IF NOT EXISTS public_services_by_completed ON core.public_services (completed_on, commune_code_2025)
    WHERE status = 'completed';
