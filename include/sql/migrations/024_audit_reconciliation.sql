-- Cross-source reconciliation (include/sql/reconciliation/*.sql): warnings counted per commune
-- and as-of date, joined on the pseudonymised ID. Counts only: no hash, no key, no clear ID,
-- so the IOC may read them (ioc.data_quality_reconciliation).
CREATE TABLE IF NOT EXISTS audit.reconciliation_result (
    as_of_date      date NOT NULL,
    check_code      text NOT NULL,
    commune_code    text NOT NULL,              -- 2025-scheme commune of the flagged rows
    rows_flagged    bigint NOT NULL CHECK (rows_flagged > 0),
    persons_flagged bigint NOT NULL CHECK (persons_flagged BETWEEN 1 AND rows_flagged),
    computed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (as_of_date, check_code, commune_code)
);

CREATE OR REPLACE VIEW ioc.data_quality_reconciliation AS
SELECT as_of_date, check_code, commune_code, rows_flagged
  FROM audit.reconciliation_result;

GRANT SELECT ON ioc.data_quality_reconciliation TO ioc_reader;
