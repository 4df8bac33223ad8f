-- tuition (sources.md §5): current valid version of every school-fee payment.
-- No personal data: student_ref is the school's own pupil number. paid_at is the record date;
-- its Asia/Ho_Chi_Minh calendar date chooses the commune scheme (legacy before 2025-07-01)
-- and is kept as paid_on for the indicator window.
CREATE TABLE IF NOT EXISTS core.tuition_payment (
    payment_id         text PRIMARY KEY,
    school_code        text NOT NULL,
    commune_code       text NOT NULL,           -- as delivered (scheme of paid_on)
    commune_code_2025  text NOT NULL,           -- current unit the IOC reports by
    student_ref        text NOT NULL,
    school_year        text NOT NULL CHECK (school_year ~ '^[0-9]{4}-[0-9]{4}$'),
    amount_vnd         bigint NOT NULL CHECK (amount_vnd > 0),
    channel            text NOT NULL CHECK (channel IN ('bank_transfer', 'qr', 'card', 'e_wallet', 'cash')),
    paid_at            timestamptz NOT NULL,
    paid_on            date NOT NULL,           -- util.local_date(paid_at)
    updated_at         timestamptz NOT NULL,
    batch_id           bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tuition_payment_by_paid ON core.tuition_payment (paid_on, commune_code_2025);
