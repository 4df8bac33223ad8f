"""The file extractor on real files in a temporary landing folder: which deliveries a run takes
(docs/file_sources.md) and how CSV and workbook cells become staged text (sources.md §6-8)."""
from __future__ import annotations

import datetime as dt
import os
import time

import openpyxl
import pytest

from ioc_pipeline.declaration.catalog import get
from ioc_pipeline.extract import file_source
from ioc_pipeline.extract.file_source import FileUnreadable

AS_OF = dt.date(2026, 11, 20)
VISITS = get("health_visits")
SOCIAL = get("social_payments")
TRACKER = get("project06_tracker")
HEADER = "visit_id,facility_code,commune_code,visit_at,patient_cccd,bhyt_card_no,identification\n"


def write(root, rel, data: bytes | str, age: float = 600) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    past = time.time() - age
    os.utime(path, (past, past))
    return rel


def names(deliveries):
    return [d.name for d in deliveries]


def test_discover_takes_settled_files_named_on_or_before_the_as_of_date_in_named_order(tmp_path):
    write(tmp_path, "health/bhyt_visits_48002_20261120.csv", HEADER)
    write(tmp_path, "health/bhyt_visits_48001_20261119.csv", HEADER)
    write(tmp_path, "health/bhyt_visits_48001_20261121.csv", HEADER)          # a later day: its own run
    write(tmp_path, "health/bhyt_visits_48003_20261120.csv", HEADER, age=10)  # still being written
    write(tmp_path, "health/bhyt_visits_48001_20261340.csv", HEADER)          # no such day
    write(tmp_path, "health/visits_48001_20261120.csv", HEADER)               # not the contract's name
    write(tmp_path, "health/bhyt_visits_48001_20261120.csv.part", HEADER)
    found = file_source.discover(tmp_path, VISITS.files, AS_OF)
    assert names(found) == ["health/bhyt_visits_48001_20261119.csv", "health/bhyt_visits_48002_20261120.csv"]
    assert found[0].named_date == "2026-11-19" and found[0].size == len(HEADER)
    assert found[0].checksum == file_source.sha256_of(tmp_path / found[0].name)
    assert names(file_source.discover(tmp_path, VISITS.files, AS_OF, settle_seconds=0))[-1] == \
        "health/bhyt_visits_48003_20261120.csv"


def test_discover_never_follows_links_or_leaves_the_landing_folder(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text(HEADER)
    root = tmp_path / "landing"
    (root / "health").mkdir(parents=True)
    os.symlink(outside, root / "health" / "bhyt_visits_48001_20261119.csv")
    write(root, "health/bhyt_visits_..%2F_20261119.csv", HEADER)
    assert file_source.discover(root, VISITS.files, AS_OF) == []


def test_month_files_are_named_by_their_last_day_and_the_tracker_is_always_taken(tmp_path):
    write(tmp_path, "social/social_payments_202610.xlsx", b"x")
    write(tmp_path, "social/social_payments_202611.xlsx", b"x")   # November ends after Nov 20
    write(tmp_path, "project06/project06_tracker.xlsx", b"x")
    found = file_source.discover(tmp_path, SOCIAL.files, AS_OF)
    assert [(d.name, d.named_date) for d in found] == [("social/social_payments_202610.xlsx", "2026-10-31")]
    tracker = file_source.discover(tmp_path, TRACKER.files, AS_OF)
    assert [(d.name, d.named_date) for d in tracker] == [("project06/project06_tracker.xlsx", None)]
    assert file_source.discover(tmp_path, SOCIAL.files, dt.date(2026, 11, 30))[-1].named_date == "2026-11-30"


def read(root, source, rel):
    (delivery,) = [d for d in file_source.discover(root, source.files, dt.date(2099, 1, 1)) if d.name == rel]
    return list(file_source.read_items(root, source, delivery))


def test_csv_is_read_as_text_with_or_without_bom(tmp_path):
    row = "V1,48001,20194,2026-11-19 08:30:00,048095000123,DN4480123456789,chip_cccd\n"
    write(tmp_path, "health/bhyt_visits_48001_20261119.csv", "\ufeff" + HEADER + row + "\n" + row.replace("V1", "V2"))
    items = read(tmp_path, VISITS, "health/bhyt_visits_48001_20261119.csv")
    assert [i["visit_id"] for i in items] == ["V1", "V2"]
    assert items[0]["patient_cccd"] == "048095000123" and items[0]["visit_at"] == "2026-11-19 08:30:00"
    assert "_cell_errors" not in items[0]


def test_csv_missing_column_bad_utf8_and_ragged_rows(tmp_path):
    write(tmp_path, "health/bhyt_visits_48001_20261101.csv", HEADER.replace(",identification", "") + "V1,a,b,c,d,e\n")
    with pytest.raises(FileUnreadable, match=r"bhyt_visits_48001_20261101.csv: column\(s\) missing .*identification"):
        read(tmp_path, VISITS, "health/bhyt_visits_48001_20261101.csv")
    write(tmp_path, "health/bhyt_visits_48001_20261102.csv", HEADER.encode() + b"V1,48001,20194,x,\xff\xfe,,paper\n")
    with pytest.raises(FileUnreadable, match="not valid UTF-8 on line 2 "):
        read(tmp_path, VISITS, "health/bhyt_visits_48001_20261102.csv")
    write(tmp_path, "health/bhyt_visits_48001_20261103.csv", HEADER + "V1,48001\n")
    (item,) = read(tmp_path, VISITS, "health/bhyt_visits_48001_20261103.csv")
    assert item["_cell_errors"] == "row has 2 fields, header has 7" and item["visit_id"] == "V1"
    write(tmp_path, "health/bhyt_visits_48001_20261104.csv", "")
    with pytest.raises(FileUnreadable, match="empty file"):
        read(tmp_path, VISITS, "health/bhyt_visits_48001_20261104.csv")


def test_csv_hostile_values_stay_inert_text(tmp_path):
    evil = "'; DROP TABLE core.health_visits; --"
    write(tmp_path, "health/bhyt_visits_48001_20261105.csv",
          HEADER + f'"{evil}",=1+1,"a\r\nb",x,,,paper,extra\n'.replace(",extra", ""))
    (item,) = read(tmp_path, VISITS, "health/bhyt_visits_48001_20261105.csv")
    assert item["visit_id"] == evil and item["facility_code"] == "=1+1" and item["commune_code"] == "a\r\nb"


def test_a_file_changed_after_discovery_is_not_read(tmp_path):
    rel = write(tmp_path, "health/bhyt_visits_48001_20261106.csv", HEADER)
    (delivery,) = file_source.discover(tmp_path, VISITS.files, AS_OF)
    (tmp_path / rel).write_text(HEADER + "V9,1,2,3,,,paper\n")
    with pytest.raises(FileUnreadable, match="changed since it was discovered"):
        list(file_source.read_items(tmp_path, VISITS, delivery))


def workbook(path, sheets: dict[str, list[list]]):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    past = time.time() - 600
    os.utime(path, (past, past))


SOCIAL_HEADER = ["payment_id", "beneficiary_cccd", "commune_code", "program", "period", "amount_vnd", "channel", "paid_on"]


def test_workbook_cells_become_contract_text(tmp_path):
    workbook(tmp_path / "social/social_payments_202610.xlsx", {"payments": [
        SOCIAL_HEADER,
        ["P1", "048095000123", "20194", "elderly_allowance", "2026-10", 500000, "bank_transfer", dt.date(2026, 10, 5)],
        # IDs and codes as number cells lost their leading zeros; the amount a float; the date as text
        [1234, 48095000124, 4669, "social_protection", "2026-10", 750000.0, "cash", "2026-10-06"],
        ["P3", 48095000.5, 20194.0, "meritorious_people", "2026-10", "=A1*2", "e_wallet",
         dt.datetime(2026, 10, 7, 9, 30)],
        [None, None, None, None, None, None, None, None],   # formatted blank row
    ]})
    items = read(tmp_path, SOCIAL, "social/social_payments_202610.xlsx")
    assert len(items) == 3
    assert items[0]["amount_vnd"] == "500000" and items[0]["paid_on"] == "2026-10-05"
    assert items[1]["payment_id"] == "000000001234" and items[1]["beneficiary_cccd"] == "048095000124"
    assert items[1]["commune_code"] == "04669" and items[1]["amount_vnd"] == "750000"
    assert items[2]["beneficiary_cccd"] is None and items[2]["commune_code"] == "20194"
    assert items[2]["_cell_errors"] == "beneficiary_cccd: number cell that is not a whole number"
    assert items[2]["amount_vnd"] == "=A1*2"                      # a formula stays inert text
    assert items[2]["paid_on"] == "2026-10-07 09:30:00"          # not a date: the suite rejects it
    assert "48095000.5" not in repr(items)


def test_workbook_wrong_sheet_missing_column_and_truncation(tmp_path):
    workbook(tmp_path / "social/social_payments_202601.xlsx", {"Sheet1": [SOCIAL_HEADER]})
    with pytest.raises(FileUnreadable, match=r"sheet 'payments' not found \(sheets: Sheet1\)"):
        read(tmp_path, SOCIAL, "social/social_payments_202601.xlsx")
    workbook(tmp_path / "social/social_payments_202602.xlsx", {"payments": [SOCIAL_HEADER[:-1]]})
    with pytest.raises(FileUnreadable, match=r"column\(s\) missing from the header: paid_on"):
        read(tmp_path, SOCIAL, "social/social_payments_202602.xlsx")
    workbook(tmp_path / "social/social_payments_202603.xlsx", {"payments": [SOCIAL_HEADER] + [
        [f"P{i}", "048095000123", "20194", "elderly_allowance", "2026-03", 1000, "cash", "2026-03-01"] for i in range(2000)]})
    path = tmp_path / "social/social_payments_202603.xlsx"
    data = path.read_bytes()
    write(tmp_path, "social/social_payments_202603.xlsx", data[: len(data) // 2])
    with pytest.raises(FileUnreadable, match="social_payments_202603.xlsx: .*(truncated|damaged)"):
        read(tmp_path, SOCIAL, "social/social_payments_202603.xlsx")


def test_tracker_stages_both_sheets_with_sheet_and_item_id(tmp_path):
    workbook(tmp_path / "project06/project06_tracker.xlsx", {
        "models": [["model_id", "name", "owner_unit", "status", "started_on"],
                   ["M1", "Mô hình điểm", "CA tỉnh", "done", dt.date(2025, 3, 1)]],
        "tasks": [["task_id", "group_no", "title", "owner_unit", "deadline", "status", "completed_on"],
                  ["T1", 3, "Số hóa hộ tịch", "Sở Tư pháp", dt.date(2026, 6, 30), "done", dt.date(2026, 6, 1)]],
    })
    items = read(tmp_path, TRACKER, "project06/project06_tracker.xlsx")
    task, model = items
    assert (task["sheet"], task["item_id"], task["group_no"], task["deadline"]) == ("tasks", "T1", "3", "2026-06-30")
    assert task["model_id"] is None and task["name"] is None
    assert (model["sheet"], model["item_id"], model["started_on"]) == ("models", "M1", "2025-03-01")
    assert model["task_id"] is None and model["deadline"] is None
