"""Indicators of the three file sources against core rows written by hand (ioc_views.md).

Rows go straight into the core tables of a migrated database, with commune_code_2025 set here
(the legacy -> 2025 mapping through the merge is tested in test_file_source_merges.py), then
refresh.refresh runs every indicator file and the assembler. Every expected value is worked out
by hand in the comments: half-up rounding, the year window's edges in Asia/Ho_Chi_Minh, legacy
records counted under their 2025 commune, no_data communes, the tracker's counts, the overdue
edge, and count indicators that are no_data only while their source never loaded.
"""
import datetime as dt
from decimal import Decimal

import pytest

from ioc_pipeline.views import refresh
from ioc_pipeline import warehouse
from tests.integration.test_refresh_civil_status import values
from tests.integration.warehouse_helpers import migrated

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
LOADED_AT = dt.datetime(2026, 11, 21, 1, 0, tzinfo=dt.UTC)
P06_COUNTS = ("P06_TASKS_OVERDUE", "P06_MODELS_DONE", "P06_MODELS_IN_PROGRESS", "P06_MODELS_NOT_STARTED")


def loaded(cur, code: str, kind: str = "file", finished_at: dt.datetime = LOADED_AT) -> None:
    """Record one successful run of `code`, as ioc.source_freshness reads it."""
    cur.execute("""INSERT INTO audit.source (source_code, kind, sector, cadence_days, quarantine_threshold)
                   VALUES (%s, %s, 'test', 1, 0.05) ON CONFLICT DO NOTHING""", (code, kind))
    cur.execute("""INSERT INTO audit.source_run (run_key, source_code, dag_run_id, as_of_date, status,
                                                 started_at, finished_at)
                   VALUES (%s, %s, 'manual', %s, 'success', %s, %s)""",
                (f"{code}/manual", code, AS_OF, finished_at - dt.timedelta(minutes=5), finished_at))


def add_visits(cur, visits) -> None:
    """visits: (visit_id, commune_code as delivered, its 2025 commune, local wall-clock time, identification).
    visit_on is the local date of visit_at, as the merge stores it; the session runs in UTC so a
    UTC cast would land on the wrong day for the early-morning visits."""
    cur.execute("SET LOCAL TimeZone = 'UTC'")
    for visit_id, commune, commune_2025, local, identification in visits:
        cur.execute(
            """INSERT INTO core.health_visits (visit_id, facility_code, commune_code, commune_code_2025, visit_at,
                   visit_on, patient_cccd_hash, bhyt_card_no_hash, identification, source_file, file_date, batch_id)
               SELECT %(id)s, '48-BV01', %(c)s, %(c25)s, t.at, util.local_date(t.at), 'h-' || %(id)s, NULL,
                      %(ident)s, 'health/bhyt_visits_48-BV01_' || to_char(util.local_date(t.at), 'YYYYMMDD') || '.csv',
                      util.local_date(t.at), 1
                 FROM (SELECT (%(local)s::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') AS at) t""",
            {"id": visit_id, "c": commune, "c25": commune_2025, "local": local, "ident": identification})


def add_payments(cur, payments) -> None:
    """payments: (payment_id, commune_code as delivered, its 2025 commune, paid_on, channel)."""
    for payment_id, commune, commune_2025, paid_on, channel in payments:
        cur.execute(
            """INSERT INTO core.social_payments (payment_id, beneficiary_cccd_hash, commune_code, commune_code_2025,
                   program, period, amount_vnd, channel, paid_on, source_file, file_date, batch_id)
               VALUES (%s, 'h-' || %s, %s, %s, 'elderly_allowance', to_char(%s::date, 'YYYY-MM'), 500000, %s, %s,
                       'social/social_payments_' || to_char(%s::date, 'YYYYMM') || '.xlsx',
                       (date_trunc('month', %s::date) + interval '1 month - 1 day')::date, 1)""",
            (payment_id, payment_id, commune, commune_2025, paid_on, channel, paid_on, paid_on, paid_on))


def add_tracker(cur, tasks, models) -> None:
    """tasks: (task_id, status, deadline); models: (model_id, status)."""
    for task_id, status, deadline in tasks:
        cur.execute(
            """INSERT INTO core.project06_tracker (sheet, item_id, group_no, title, owner_unit, deadline, status,
                   completed_on, source_file, batch_id)
               VALUES ('tasks', %s, 1, 'Nhiệm vụ', 'Công an tỉnh', %s, %s,
                       CASE WHEN %s = 'done' THEN DATE '2026-05-01' END, 'project06/project06_tracker.xlsx', 1)""",
            (task_id, deadline, status, status))
    for model_id, status in models:
        cur.execute(
            """INSERT INTO core.project06_tracker (sheet, item_id, name, owner_unit, status, source_file, batch_id)
               VALUES ('models', %s, 'Mô hình', 'Công an tỉnh', %s, 'project06/project06_tracker.xlsx', 1)""",
            (model_id, status))


VISITS = [
    # 20194: 32 visits in 2026, one by chip ID -> 1/32 = 3.125 -> 3.13 (half up)
    ("A0", "20194", "20194", "2026-03-02 09:00:00", "chip_cccd"),
    *[(f"A{i}", "20194", "20194", "2026-03-02 09:00:00", "bhyt_card" if i % 2 else "paper") for i in range(1, 32)],
    # 20197: the window's edges in Asia/Ho_Chi_Minh
    ("E_in", "20197", "20197", "2026-01-01 00:30:00", "vneid_qr"),     # Dec 31 17:30 UTC: in 2026
    ("E_out", "20197", "20197", "2025-12-31 23:59:00", "chip_cccd"),   # Dec 31 local: out
    ("E_last", "20197", "20197", "2026-11-20 23:59:59", "paper"),      # on the as-of date: in
    ("E_after", "20197", "20197", "2026-11-21 00:10:00", "chip_cccd"),  # after the as-of date: out
    # 20350: one 2026 visit by chip; two legacy Quang Nam 20344 visits of 2025 (mapped to 20350)
    ("N1", "20350", "20350", "2026-05-05 10:00:00", "vneid_qr"),
    ("L1", "20344", "20350", "2025-03-10 08:00:00", "chip_cccd"),
    ("L2", "20344", "20350", "2025-06-30 23:59:00", "paper"),
    # 20333 exists only in the 2025 scheme: first day of the reform, local time
    ("R1", "20333", "20333", "2025-07-01 00:30:00", "chip_cccd"),
]
PAYMENTS = [
    # 20194: bank + e-wallet non-cash, postal cash + cash are cash -> 2/4 = 50.00
    ("S1", "20194", "20194", "2026-02-05", "bank_transfer"),
    ("S2", "20194", "20194", "2026-03-05", "e_wallet"),
    ("S3", "20194", "20194", "2026-04-05", "postal_cash"),
    ("S4", "20194", "20194", "2026-05-05", "cash"),
    # 20197: edges of the window -> S_first bank, S_last bank, S_mid cash = 2/3 = 66.67
    ("S_first", "20197", "20197", "2026-01-01", "bank_transfer"),
    ("S_last", "20197", "20197", "2026-11-20", "bank_transfer"),
    ("S_mid", "20197", "20197", "2026-06-15", "cash"),
    ("S_before", "20197", "20197", "2025-12-31", "e_wallet"),          # out
    ("S_after", "20197", "20197", "2026-11-21", "e_wallet"),           # out
    # legacy 20344 -> 20350, paid before the reform: only in a 2025 refresh
    ("SL1", "20344", "20350", "2025-02-01", "postal_cash"),
    ("SL2", "20344", "20350", "2025-06-30", "e_wallet"),
]
TASKS = [
    ("T1", "done", "2026-06-30"),
    ("T2", "in_progress", "2026-11-19"),   # overdue: deadline before the as-of date
    ("T3", "not_started", "2026-11-20"),   # deadline = as-of date: not overdue
    ("T4", "in_progress", "2026-12-31"),
    ("T5", "done", "2026-01-31"),          # done late: not overdue
    ("T6", "not_started", "2025-03-01"),   # overdue
]
# the 2024 reference figures of ioc_views.md: 38 models, 6 done, 20 in progress, 12 not started
MODELS = ([(f"MD{i}", "done") for i in range(6)] + [(f"MP{i}", "in_progress") for i in range(20)]
          + [(f"MN{i}", "not_started") for i in range(12)])


def fixture(dsn, *, tracker_loaded=True):
    conn = migrated(dsn)
    with warehouse.transaction(conn) as cur:
        add_visits(cur, VISITS)
        add_payments(cur, PAYMENTS)
        loaded(cur, "health_visits")
        loaded(cur, "social_payments")
        if tracker_loaded:
            add_tracker(cur, TASKS, MODELS)
            loaded(cur, "project06_tracker")
    return conn


def got(v, code, unit):
    r = v[(code, unit)]
    return r["numerator"], r["denominator"], r["value"], r["status"], r["rank_in_province"]


def test_visit_dates_are_local_calendar_dates(warehouse_db):
    conn = fixture(warehouse_db)
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute("SELECT visit_id, visit_on FROM core.health_visits WHERE visit_id IN ('E_in','E_out','R1') ORDER BY 1")
        assert cur.fetchall() == [("E_in", dt.date(2026, 1, 1)), ("E_out", dt.date(2025, 12, 31)),
                                  ("R1", dt.date(2025, 7, 1))]
    conn.rollback()


def test_chip_id_visits_by_hand(warehouse_db):
    conn = fixture(warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    code = "BHYT_CHIP_ID_VISITS_PCT"
    assert len([k for k in v if k[0] == code]) == 95                  # province + 94 communes
    prov = v[(code, "48")]
    assert (prov["period_start"], prov["target_value"], prov["source_fresh_at"]) == (dt.date(2026, 1, 1), 100, LOADED_AT)
    assert got(v, code, "20350") == (1, 1, Decimal("100.00"), "met", 1)             # N1 (L1, L2 are 2025)
    assert got(v, code, "20197") == (1, 2, Decimal("50.00"), "below_target", 2)     # E_in / E_in, E_last
    assert got(v, code, "20194") == (1, 32, Decimal("3.13"), "below_target", 3)     # 3.125 half up
    assert got(v, code, "20333") == (0, 0, None, "no_data", None)                   # R1 is 2025
    assert got(v, code, "20200") == (0, 0, None, "no_data", None)                   # nothing there
    # province from the records: (1 + 1 + 1) / (1 + 2 + 32) = 3/35 = 8.571 -> 8.57
    assert got(v, code, "48") == (3, 35, Decimal("8.57"), "below_target", None)


def test_noncash_social_payments_by_hand(warehouse_db):
    conn = fixture(warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    code = "SOCIAL_NONCASH_PCT"
    assert len([k for k in v if k[0] == code]) == 95
    assert v[(code, "48")]["period_start"] == dt.date(2026, 1, 1)
    assert got(v, code, "20197") == (2, 3, Decimal("66.67"), "below_target", 1)     # S_first, S_last / + S_mid
    assert got(v, code, "20194") == (2, 4, Decimal("50.00"), "below_target", 2)     # postal_cash is cash
    assert got(v, code, "20350") == (0, 0, None, "no_data", None)                   # SL1, SL2 are 2025
    # province: (2 + 2) / (4 + 3) = 4/7 = 57.142 -> 57.14
    assert got(v, code, "48") == (4, 7, Decimal("57.14"), "below_target", None)


def test_legacy_records_count_under_their_2025_commune_in_their_year(warehouse_db):
    conn = fixture(warehouse_db)
    as_of = dt.date(2025, 6, 30)          # the last day of the legacy scheme
    refresh.refresh(conn, as_of, "48")
    v = values(conn, as_of)
    # visits of 2025 up to June 30: L1 chip, L2 paper (23:59 local on June 30) -> 20350: 1/2;
    # R1 (July 1 00:30 local) is after the as-of date
    assert got(v, "BHYT_CHIP_ID_VISITS_PCT", "20350") == (1, 2, Decimal("50.00"), "below_target", 1)
    communes = [r for k, r in v.items() if k[0] == "BHYT_CHIP_ID_VISITS_PCT" and r["admin_level"] == "commune"]
    assert sum(r["denominator"] for r in communes) == 2                 # nowhere else, not under 20344
    assert got(v, "BHYT_CHIP_ID_VISITS_PCT", "48")[:3] == (1, 2, Decimal("50.00"))
    # payments: SL1 postal cash, SL2 e-wallet -> 1/2
    assert got(v, "SOCIAL_NONCASH_PCT", "20350") == (1, 2, Decimal("50.00"), "below_target", 1)
    assert v[("SOCIAL_NONCASH_PCT", "48")]["period_start"] == dt.date(2025, 1, 1)


def test_project06_tracker_by_hand(warehouse_db):
    conn = fixture(warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    for code in ("P06_TASKS_DONE_PCT", *P06_COUNTS):
        assert [k for k in v if k[0] == code] == [(code, "48")], code   # province level only
        assert v[(code, "48")]["period_start"] is None                    # stock
    # tasks done: T1, T5 of 6 -> 33.33
    assert got(v, "P06_TASKS_DONE_PCT", "48") == (2, 6, Decimal("33.33"), "below_target", None)
    # overdue: T2 (deadline the day before) and T6; not T3 (deadline = as-of date) nor T5 (done)
    assert got(v, "P06_TASKS_OVERDUE", "48") == (2, None, 2, "no_target", None)
    assert got(v, "P06_MODELS_DONE", "48") == (6, None, 6, "no_target", None)
    assert got(v, "P06_MODELS_IN_PROGRESS", "48") == (20, None, 20, "no_target", None)
    assert got(v, "P06_MODELS_NOT_STARTED", "48") == (12, None, 12, "no_target", None)
    assert v[("P06_MODELS_DONE", "48")]["target_value"] is None
    # a day later T3's deadline has passed too
    refresh.refresh(conn, AS_OF + dt.timedelta(days=1), "48")
    assert values(conn)[("P06_TASKS_OVERDUE", "48")]["value"] == 3


def test_counts_are_no_data_until_the_tracker_loads_then_zero_when_empty(warehouse_db):
    conn = fixture(warehouse_db, tracker_loaded=False)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    for code in P06_COUNTS:
        assert got(v, code, "48") == (0, None, None, "no_data", None), code
        assert v[(code, "48")]["source_fresh_at"] is None
    assert got(v, "P06_TASKS_DONE_PCT", "48") == (0, 0, None, "no_data", None)
    # loaded, but the tracker holds nothing: the counts are real zeros
    with warehouse.transaction(conn) as cur:
        loaded(cur, "project06_tracker")
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    for code in P06_COUNTS:
        assert got(v, code, "48") == (0, None, 0, "no_target", None), code
    assert got(v, "P06_TASKS_DONE_PCT", "48") == (0, 0, None, "no_data", None)


def test_catalog_rows_of_the_file_source_indicators(warehouse_db):
    import unicodedata

    conn = migrated(warehouse_db)
    with conn.cursor() as cur:
        cur.execute("""SELECT indicator_code, unit, kind, levels, target_value, source_codes, sector, name_vi, definition
                         FROM ioc.indicator_catalog
                        WHERE source_codes IN ('health_visits', 'social_payments', 'project06_tracker')
                        ORDER BY 1""")
        rows = cur.fetchall()
    conn.commit()
    assert [r[:7] for r in rows] == [
        ("BHYT_CHIP_ID_VISITS_PCT", "percent", "flow", "province,commune", 100, "health_visits", "health"),
        ("P06_MODELS_DONE", "count", "stock", "province", None, "project06_tracker", "project06"),
        ("P06_MODELS_IN_PROGRESS", "count", "stock", "province", None, "project06_tracker", "project06"),
        ("P06_MODELS_NOT_STARTED", "count", "stock", "province", None, "project06_tracker", "project06"),
        ("P06_TASKS_DONE_PCT", "percent", "stock", "province", 100, "project06_tracker", "project06"),
        ("P06_TASKS_OVERDUE", "count", "stock", "province", None, "project06_tracker", "project06"),
        ("SOCIAL_NONCASH_PCT", "percent", "flow", "province,commune", 100, "social_payments", "social"),
    ]
    for r in rows:
        assert unicodedata.is_normalized("NFC", r[7]) and r[7] != r[7].encode("ascii", "ignore").decode(), r[0]
        assert r[8].endswith(".") and r[8].count(". ") == 0, r[0]   # one sentence
