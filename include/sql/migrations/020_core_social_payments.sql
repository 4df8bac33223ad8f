-- social_payments (sources.md §7): current valid version of every social allowance payment.
-- The beneficiary's citizen ID only as its keyed hash. paid_on is the record date: it chooses
-- the commune scheme (legacy before 2025-07-01) and the indicator window.
-- source_file / file_date: the monthly workbook the row came from and the last day of its
-- named month (docs/file_sources.md, "the later file wins").
CREATE TABLE IF NOT EXISTS core.social_payment (
    payment_id             text PRIMARY KEY,
    beneficiary_cccd_hash  text NOT NULL,
    commune_code           text NOT NULL,       -- as delivered (scheme of paid_on)
    commune_code_2025      text NOT NULL,       -- current unit the IOC reports by
    program                text NOT NULL CHECK (program IN ('meritorious_people', 'social_protection',
                                                            'elderly_allowance', 'disability_allowance')),
    period                 text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    amount_vnd             bigint NOT NULL CHECK (amount_vnd > 0),
    channel                text NOT NULL CHECK (channel IN ('bank_transfer', 'e_wallet', 'postal_cash', 'cash')),
    paid_on                date NOT NULL,
    source_file            text NOT NULL,
    file_date              date,
    batch_id               bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS social_payment_by_paid ON core.social_payment (paid_on, commune_code_2025);
