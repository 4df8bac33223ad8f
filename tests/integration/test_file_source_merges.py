"""The merges of the three file sources, driven through real deliveries in a landing folder
(warehouse_helpers.run_file_deliveries: discover, read, stage, validate, publish per file).

Per source, by hand: a correction (the same file name delivered again) replaces that file's
rows and removes the keys it no longer contains; a quarantined row never replaces a loaded
one; the same key in two files: the later named date wins, whatever the delivery order; legacy
commune codes are mapped by the record date (local date of visit_at, paid_on). Each file carries
a few clean filler rows of its own so one quarantined row stays under the 5 % threshold.
"""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from ioc_pipeline.personal_data import pii
from tests.integration.warehouse_helpers import KEY, all_text_values, find_leaks, migrated, run_file_deliveries

pytestmark = pytest.mark.integration

FILLERS = 30


def core_rows(conn, query: str, params=None) -> dict:
    """{first column: the other columns} of a query, with the session in UTC (no local casts)."""
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute(query, params)
        out = {r[0]: tuple(r[1:]) for r in cur.fetchall()}
    conn.commit()
    return out


def deliver(root: Path, code: str, as_of: dt.date, conn, dsn: str, run: str, *, files: int, removed: int = 0,
            quarantined: int = 0) -> dict:
    result = run_file_deliveries(conn, dsn, code, as_of, root, run_id=run)
    assert result["failures"] == [], result
    assert (result["files_committed"], result["rows_removed"], result["rows_quarantined"]) == (
        files, removed, quarantined), result
    return result


# --------------------------------------------------------------------------- health_visits

HEALTH_HEADER = ["visit_id", "facility_code", "commune_code", "visit_at", "patient_cccd", "bhyt_card_no",
                 "identification"]
CCCD_V1 = "048095000123"


def visit(visit_id, identification="chip_cccd", commune="20194", at="2026-03-02 09:00:00", cccd=CCCD_V1,
          card="DN4480123456789"):
    return [visit_id, "48-BV01", commune, at, cccd, card, identification]


def write_csv(root: Path, day: str, rows: list[list]) -> str:
    name = f"health/bhyt_visits_48-BV01_{day}.csv"
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEALTH_HEADER)
        out.writerows(rows + [visit(f"F{day}-{i}", "paper") for i in range(FILLERS)])
    return name


def test_health_visits_merge(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    root = tmp_path
    a = write_csv(root, "20260302", [
        visit("V1"), visit("V2", "paper"), visit("V3", "bhyt_card", cccd=""),
        # legacy Quang Nam 20344, 23:30 local on the reform's eve -> 2025 commune 20350
        visit("L1", commune="20344", at="2025-06-30 23:30:00"),
        # 20333 exists only in the 2025 scheme: 00:30 local on 2025-07-01 (June 30 in UTC)
        visit("R1", commune="20333", at="2025-07-01 00:30:00"),
    ])
    deliver(root, "health_visits", dt.date(2026, 3, 2), conn, warehouse_db, "r1", files=1)
    got = core_rows(conn, """SELECT visit_id, commune_code, commune_code_2025, visit_on, visit_at, source_file,
                                    file_date, patient_cccd_hash, bhyt_card_no_hash FROM core.health_visits
                              WHERE visit_id IN ('V1', 'L1', 'R1')""")
    assert got["L1"][:4] == ("20344", "20350", dt.date(2025, 6, 30), dt.datetime(2025, 6, 30, 16, 30, tzinfo=dt.UTC))
    assert got["R1"][:4] == ("20333", "20333", dt.date(2025, 7, 1), dt.datetime(2025, 6, 30, 17, 30, tzinfo=dt.UTC))
    assert got["V1"][4:] == (a, dt.date(2026, 3, 2), pii.keyed_hash(KEY, CCCD_V1),
                             pii.keyed_hash(KEY, "DN4480123456789"))

    # correction of the same file: V1 now by VNeID, V2 gone, V3 broken (its loaded version stays)
    write_csv(root, "20260302", [visit("V1", "vneid_qr"), visit("V3", "CCCD", cccd=""),
                                 visit("L1", commune="20344", at="2025-06-30 23:30:00"),
                                 visit("R1", commune="20333", at="2025-07-01 00:30:00")])
    deliver(root, "health_visits", dt.date(2026, 3, 3), conn, warehouse_db, "r2", files=1, removed=1, quarantined=1)
    q = "SELECT visit_id, identification, source_file FROM core.health_visits WHERE visit_id IN ('V1','V2','V3')"
    assert core_rows(conn, q) == {"V1": ("vneid_qr", a), "V3": ("bhyt_card", a)}

    # a later day's file with V1 wins over the earlier day's file
    b = write_csv(root, "20260304", [visit("V1", "bhyt_card")])
    deliver(root, "health_visits", dt.date(2026, 3, 4), conn, warehouse_db, "r3", files=1)
    # an earlier day's file delivered last loses, and so does a new correction of the first file
    write_csv(root, "20260301", [visit("V1", "paper")])
    write_csv(root, "20260302", [visit("V1", "chip_cccd"), visit("V3", "bhyt_card", cccd=""),
                                 visit("L1", commune="20344", at="2025-06-30 23:30:00"),
                                 visit("R1", commune="20333", at="2025-07-01 00:30:00")])
    deliver(root, "health_visits", dt.date(2026, 3, 5), conn, warehouse_db, "r4", files=2)
    assert core_rows(conn, q) == {"V1": ("bhyt_card", b), "V3": ("bhyt_card", a)}
    assert core_rows(conn, "SELECT source_file, count(*) FROM core.health_visits GROUP BY 1") == {
        a: (3 + FILLERS,), b: (1 + FILLERS,), "health/bhyt_visits_48-BV01_20260301.csv": (FILLERS,)}
    assert find_leaks(all_text_values(conn), {CCCD_V1, "DN4480123456789"}, []) == []


# --------------------------------------------------------------------------- social_payments

SOCIAL_HEADER = ["payment_id", "beneficiary_cccd", "commune_code", "program", "period", "amount_vnd", "channel",
                 "paid_on"]
D = dt.date


def payment(payment_id, channel="bank_transfer", commune=20194, paid_on=D(2026, 3, 5), amount=1500000,
            cccd=48055000123):
    """Cells as a workbook gives them: the ID and commune code as number cells (leading zeros
    lost), the amount a number, paid_on a date cell."""
    return [payment_id, cccd, commune, "elderly_allowance", paid_on.strftime("%Y-%m"), amount, channel, paid_on]


def write_xlsx(root: Path, name: str, sheets: dict[str, tuple[list, list[list]]]) -> str:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, (header, rows) in sheets.items():
        ws = book.create_sheet(title)
        ws.append(header)
        for row in rows:
            ws.append(row)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return name


def write_payments(root: Path, month: str, rows: list[list]) -> str:
    fillers = [payment(f"F{month}-{i}", "cash") for i in range(FILLERS)]
    return write_xlsx(root, f"social/social_payments_{month}.xlsx", {"payments": (SOCIAL_HEADER, rows + fillers)})


def test_social_payments_merge(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    root = tmp_path
    originals = [
        payment("P1"), payment("P2", "cash"),
        payment("P3", "e_wallet", commune=20344, paid_on=D(2025, 6, 30)),   # legacy -> 20350
        payment("P4", "postal_cash", commune=20333, paid_on=D(2025, 7, 1)),  # 2025 scheme only
    ]
    march = write_payments(root, "202603", originals)
    deliver(root, "social_payments", D(2026, 3, 31), conn, warehouse_db, "r1", files=1)
    got = core_rows(conn, """SELECT payment_id, beneficiary_cccd_hash, commune_code, commune_code_2025, paid_on,
                                    amount_vnd, period, source_file, file_date FROM core.social_payments
                              WHERE payment_id IN ('P1', 'P3', 'P4')""")
    # the number cell 48055000123 is the ID 048055000123 (12 digits, zeros restored)
    assert got["P1"] == (pii.keyed_hash(KEY, "048055000123"), "20194", "20194", D(2026, 3, 5), 1500000, "2026-03",
                         march, D(2026, 3, 31))
    assert got["P3"][1:4] == ("20344", "20350", D(2025, 6, 30))
    assert got["P4"][1:4] == ("20333", "20333", D(2025, 7, 1))

    # correction: P1 by e-wallet, P2 gone, P3 with a negative amount (its loaded version stays)
    write_payments(root, "202603", [payment("P1", "e_wallet"), originals[2][:5] + [-5] + originals[2][6:],
                                    originals[3]])
    deliver(root, "social_payments", D(2026, 4, 1), conn, warehouse_db, "r2", files=1, removed=1, quarantined=1)
    q = "SELECT payment_id, channel, amount_vnd, source_file FROM core.social_payments WHERE payment_id LIKE 'P_'"
    assert core_rows(conn, q) == {"P1": ("e_wallet", 1500000, march), "P3": ("e_wallet", 1500000, march),
                                  "P4": ("postal_cash", 1500000, march)}

    # April's file names a later date: its P1 wins; February's, delivered afterwards, loses
    april = write_payments(root, "202604", [payment("P1", "cash", amount=700000)])
    deliver(root, "social_payments", D(2026, 4, 30), conn, warehouse_db, "r3", files=1)
    write_payments(root, "202602", [payment("P1", "postal_cash", amount=900000)])
    deliver(root, "social_payments", D(2026, 5, 1), conn, warehouse_db, "r4", files=1)
    assert core_rows(conn, q)["P1"] == ("cash", 700000, april)
    assert core_rows(conn, "SELECT file_date, count(*) FROM core.social_payments GROUP BY 1") == {
        D(2026, 3, 31): (2 + FILLERS,), D(2026, 4, 30): (1 + FILLERS,), D(2026, 2, 28): (FILLERS,)}
    assert find_leaks(all_text_values(conn), {"048055000123"}, []) == []


# --------------------------------------------------------------------------- project06_tracker

TASKS = ["task_id", "group_no", "title", "owner_unit", "deadline", "status", "completed_on"]
MODELS = ["model_id", "name", "owner_unit", "status", "started_on"]
TRACKER = "project06/project06_tracker.xlsx"


def write_tracker(root: Path, tasks: list[list], models: list[list]) -> None:
    fillers = [[f"F{i}", 2, "Nhiệm vụ", "Sở Y tế", D(2026, 12, 31), "in_progress", None] for i in range(FILLERS)]
    write_xlsx(root, TRACKER, {"tasks": (TASKS, tasks + fillers), "models": (MODELS, models)})


def test_project06_tracker_merge(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    root = tmp_path
    write_tracker(root, [
        ["T1", 3, "Số hóa sổ hộ tịch", "Sở Tư pháp", D(2026, 6, 30), "in_progress", None],
        ["T2", 10, "Thanh toán không dùng tiền mặt", "Sở Tài chính", D(2026, 9, 30), "done", D(2026, 2, 1)],
    ], [
        ["M1", "Chợ 4.0", "Sở Công Thương", "not_started", None],
        ["M2", "Bệnh viện không tiền mặt", "Sở Y tế", "in_progress", D(2025, 9, 1)],
    ])
    deliver(root, "project06_tracker", D(2026, 3, 1), conn, warehouse_db, "r1", files=1)
    q = """SELECT sheet || ':' || item_id, group_no, status, completed_on, started_on, source_file, file_date
             FROM core.project06_tracker WHERE item_id NOT LIKE 'F%'"""
    assert core_rows(conn, q) == {
        "tasks:T1": (3, "in_progress", None, None, TRACKER, None),
        "tasks:T2": (10, "done", D(2026, 2, 1), None, TRACKER, None),
        "models:M1": (None, "not_started", None, None, TRACKER, None),
        "models:M2": (None, "in_progress", None, D(2025, 9, 1), TRACKER, None),
    }

    # the whole workbook again: T1 done, T2 and M2 gone, M1 with a status outside the list (its
    # loaded version stays), M3 new
    write_tracker(root, [
        ["T1", 3, "Số hóa sổ hộ tịch", "Sở Tư pháp", D(2026, 6, 30), "done", D(2026, 3, 5)],
    ], [
        ["M1", "Chợ 4.0", "Sở Công Thương", "Started", D(2026, 3, 1)],
        ["M3", "Trường học không tiền mặt", "Sở Giáo dục và Đào tạo", "in_progress", D(2026, 3, 2)],
    ])
    deliver(root, "project06_tracker", D(2026, 3, 8), conn, warehouse_db, "r2", files=1, removed=2, quarantined=1)
    assert core_rows(conn, q) == {
        "tasks:T1": (3, "done", D(2026, 3, 5), None, TRACKER, None),
        "models:M1": (None, "not_started", None, None, TRACKER, None),
        "models:M3": (None, "in_progress", None, D(2026, 3, 2), TRACKER, None),
    }
    assert core_rows(conn, "SELECT title, owner_unit FROM core.project06_tracker WHERE item_id = 'T1'") == {
        "Số hóa sổ hộ tịch": ("Sở Tư pháp",)}
