"""Cross-source reconciliation against a real warehouse: deaths loaded through a real civil_status
batch (so the join runs on the pipeline's own keyed hashes), payments and visits hand-built with
the same keyed hash; expected counts per commune worked out by hand below."""
import datetime as dt

import psycopg2
import pytest

from ioc_pipeline.personal_data import pii
from ioc_pipeline.views import reconciliation
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import KEY, PROVINCE, all_text_values, migrated, run_batch

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 20)
DN_A, DN_B = "20194", "20197"        # Da Nang communes (2025 scheme)
HANOI = "00004"                      # a ward of another province
# clear IDs (1900s, male: century digit 0); only their keyed hashes reach the warehouse
CCCD = {p: f"048050{i:06d}" for i, p in enumerate("ABCDEF", start=1)}

# Core tables of the file sources: created by their own migrations (018/020) when present; the
# test creates them with the contract's columns otherwise, so this test does not depend on them.
CORE_TABLES = """
CREATE TABLE IF NOT EXISTS core.social_payments (
    payment_id text PRIMARY KEY, beneficiary_cccd_hash text NOT NULL, commune_code text NOT NULL,
    commune_code_2025 text NOT NULL, program text NOT NULL, period text NOT NULL, amount_vnd bigint NOT NULL,
    channel text NOT NULL, paid_on date NOT NULL, source_file text NOT NULL, file_date date, batch_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS core.health_visits (
    visit_id text PRIMARY KEY, facility_code text NOT NULL, commune_code text NOT NULL,
    commune_code_2025 text NOT NULL, visit_at timestamptz NOT NULL, visit_on date NOT NULL,
    patient_cccd_hash text, bhyt_card_no_hash text, identification text NOT NULL, source_file text NOT NULL,
    file_date date, batch_id bigint NOT NULL);
"""


def h(person):
    return pii.keyed_hash(KEY, CCCD[person])


def death(record_id, person, on):
    return rec(record_id, registration_type="death", registered_on=on.isoformat(), subject_cccd=CCCD[person],
               subject_birth_date="1950-01-01", subject_sex="M", updated_at=f"{on.isoformat()}T10:00:00+07:00")


DEATHS = [
    death("DA", "A", dt.date(2026, 11, 10)),
    death("DA2", "A", dt.date(2026, 11, 12)),     # a second registration of A's death: no double count
    death("DB", "B", D - dt.timedelta(days=1)),
    death("DE", "E", dt.date(2026, 10, 1)),
    rec("BD", registration_type="marriage", registered_on="2026-01-05", subject_cccd=CCCD["D"],
        subject_birth_date="1950-01-01", subject_sex="M"),   # D is alive: not a death
]

PAYMENTS = [  # (payment_id, person, commune, paid_on)
    ("P1", "A", DN_A, dt.date(2026, 11, 11)),     # flagged: day after A's death
    ("P2", "A", DN_A, dt.date(2026, 11, 15)),     # flagged: same person again
    ("P3", "A", DN_A, dt.date(2026, 11, 10)),     # same day as the death: not flagged
    ("P4", "A", DN_B, dt.date(2026, 11, 5)),      # before the death: not flagged
    ("P5", "A", DN_B, D + dt.timedelta(days=1)),  # after the as-of date: only from D+1
    ("P6", "B", DN_B, D),                         # death on D-1, paid on D: flagged
    ("P7", "C", DN_A, D),                         # no death registered: not flagged
    ("P8", "D", DN_A, D),                         # a marriage, not a death: not flagged
    ("P9", "E", HANOI, D),                        # outside the IOC's province: not counted
]

VISITS = [  # (visit_id, person or None, commune, visit_at local)
    ("V1", "A", DN_B, "2026-11-12 08:00:00"),     # flagged
    ("V2", "A", DN_B, "2026-11-10 23:30:00"),     # same local day as the death: not flagged
    ("V3", "B", DN_B, "2026-11-20 00:10:00"),     # flagged (visit on D, UTC still D-1)
    ("V4", "C", DN_A, "2026-11-18 09:00:00"),     # alive: not flagged
    ("V5", None, DN_A, "2026-11-18 09:00:00"),    # insurance card only: cannot be matched
    ("V6", "E", DN_A, "2026-11-21 09:00:00"),     # after the as-of date
]


def load(conn, dsn):
    run_batch(conn, dsn, "civil_status", D, [DEATHS])
    with conn.cursor() as cur:
        cur.execute(CORE_TABLES)
        for pid, person, commune, paid_on in PAYMENTS:
            cur.execute(
                """INSERT INTO core.social_payments VALUES (%s, %s, %s, %s, 'social_protection', %s, 500000,
                       'bank_transfer', %s, 'social/social_payments_202611.xlsx', '2026-11-30', 1)""",
                (pid, h(person), commune, commune, paid_on.strftime("%Y-%m"), paid_on))
        for vid, person, commune, local in VISITS:
            cur.execute(
                """INSERT INTO core.health_visits VALUES (%s, 'BV01', %s, %s, (%s::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'),
                       (%s::timestamp)::date, %s, %s, %s, 'health/bhyt_visits_BV01_20261120.csv', '2026-11-20', 1)""",
                (vid, commune, commune, local, local, h(person) if person else None,
                 None if person else pii.keyed_hash(KEY, "DN4480012345678"), "chip_cccd" if person else "bhyt_card"))
    conn.commit()


def stored(conn, as_of):
    with conn.cursor() as cur:
        cur.execute("""SELECT check_code, commune_code, rows_flagged, persons_flagged FROM audit.reconciliation_result
                        WHERE as_of_date = %s ORDER BY 1, 2""", (as_of,))
        rows = cur.fetchall()
    conn.commit()
    return rows


def test_deaths_before_payments_and_visits_counted_per_commune(warehouse_db):
    conn = migrated(warehouse_db)
    load(conn, warehouse_db)
    summary = reconciliation.reconcile(conn, D, PROVINCE)
    expected = [
        ("DEATH_BEFORE_HEALTH_VISIT", DN_B, 2, 2),      # V1 (A), V3 (B)
        ("DEATH_BEFORE_SOCIAL_PAYMENT", DN_A, 2, 1),    # P1, P2: one person
        ("DEATH_BEFORE_SOCIAL_PAYMENT", DN_B, 1, 1),    # P6
    ]
    assert stored(conn, D) == expected
    assert summary["checks"] == {
        "DEATH_BEFORE_SOCIAL_PAYMENT": {"rows_flagged": 3, "persons_flagged": 2, "communes": 2},
        "DEATH_BEFORE_HEALTH_VISIT": {"rows_flagged": 2, "persons_flagged": 2, "communes": 1},
    }
    assert summary["skipped"] == []

    # re-running the date replaces its rows (no duplicates); a fixed source lowers the count
    reconciliation.reconcile(conn, D, PROVINCE)
    assert stored(conn, D) == expected
    with conn.cursor() as cur:
        cur.execute("DELETE FROM core.social_payments WHERE payment_id = 'P2'")
    conn.commit()
    reconciliation.reconcile(conn, D, PROVINCE)
    assert stored(conn, D)[1] == ("DEATH_BEFORE_SOCIAL_PAYMENT", DN_A, 1, 1)

    # the next day also counts P5 (paid D+1) and leaves D's rows alone; V6 (E, commune 20194) too
    reconciliation.reconcile(conn, D + dt.timedelta(days=1), PROVINCE)
    assert stored(conn, D + dt.timedelta(days=1)) == [
        ("DEATH_BEFORE_HEALTH_VISIT", DN_A, 1, 1),
        ("DEATH_BEFORE_HEALTH_VISIT", DN_B, 2, 2),
        ("DEATH_BEFORE_SOCIAL_PAYMENT", DN_A, 1, 1),
        ("DEATH_BEFORE_SOCIAL_PAYMENT", DN_B, 2, 2),
    ]
    assert len(stored(conn, D)) == 3

    # counts only: no hash of any person in the stored results
    with conn.cursor() as cur:
        cur.execute("SELECT row_to_json(r)::text FROM audit.reconciliation_result r")
        texts = [r[0] for r in cur.fetchall()]
    conn.commit()
    assert not any(h(p) in t or CCCD[p] in t for p in CCCD for t in texts)
    assert not any(CCCD[p] in t for p in CCCD for t in all_text_values(conn))


def test_ioc_reader_sees_the_counts_not_the_audit_table(warehouse_db):
    conn = migrated(warehouse_db)
    load(conn, warehouse_db)
    reconciliation.reconcile(conn, D, PROVINCE)
    with conn.cursor() as cur:
        cur.execute("SET ROLE ioc_reader")
        cur.execute("SELECT as_of_date, check_code, commune_code, rows_flagged FROM ioc.data_quality_reconciliation"
                    " ORDER BY 2, 3")
        assert cur.fetchall() == [(D, "DEATH_BEFORE_HEALTH_VISIT", DN_B, 2), (D, "DEATH_BEFORE_SOCIAL_PAYMENT", DN_A, 2),
                                  (D, "DEATH_BEFORE_SOCIAL_PAYMENT", DN_B, 1)]
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT * FROM audit.reconciliation_result")
    conn.rollback()


def test_a_check_whose_source_table_is_missing_is_skipped_not_failed(warehouse_db):
    conn = migrated(warehouse_db)
    load(conn, warehouse_db)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE core.health_visits")
    conn.commit()
    summary = reconciliation.reconcile(conn, D, PROVINCE)
    assert summary["skipped"] == ["death_before_health_visit"]
    assert [r[0] for r in stored(conn, D)] == ["DEATH_BEFORE_SOCIAL_PAYMENT"] * 2


def test_every_check_file_follows_the_contract():
    found = reconciliation.checks()
    assert {c.code for c in found} >= {"DEATH_BEFORE_SOCIAL_PAYMENT", "DEATH_BEFORE_HEALTH_VISIT"}
    for c in found:
        text = c.path.read_text(encoding="utf-8")
        assert c.requires and f"'{c.code}' AS check_code" in text, c.path.name
        assert "%(as_of)s" in text and "%(province)s" in text, c.path.name
