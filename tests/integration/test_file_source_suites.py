"""The three file-source suites against hand-staged rows: every rule names a row that breaks it
and never a clean one.

Rows are built like the extractor builds them (rows.row_builder: IDs hashed, derived parts)
and COPYed into a staging table of the exact layout (staging.create); the suite then runs in
PostgreSQL through validation.validate_table, as a batch does. Each fixture below is a list of
(reason of the rule, item that breaks it) written out by hand; the test checks that every
row-level rule of the suite file has at least one such item, so a rule added to a suite without
a failing example here fails the test.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.ingest import rows, staging, validation
from ioc_pipeline import warehouse
from tests.integration.warehouse_helpers import KEY, PROVINCE, migrated, sqlalchemy_url

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
CELL_ERRORS = "a cell could not be read as the contract says"
COLUMNS_REASON = "the staged batch lacks a column of the contract (a missing column fails the batch)"


def stage(conn, code: str, items: list[dict], batch_id: int = 1) -> str:
    """Stage items (row ids 1..n in list order) into a fresh staging table; return its name."""
    source = catalog.get(code)
    build = rows.row_builder(source, KEY, AS_OF.isoformat(), PROVINCE)
    with warehouse.transaction(conn) as cur:
        table = staging.create(cur, source, batch_id)
        writer = staging.CopyWriter(cur, table, rows.staging_columns(source))
        for row_id, item in enumerate(items, start=1):
            writer.write(build(row_id, item))
        writer.flush()
        staging.rebuild_typed(cur, source, table, dedupe=False)   # the typed columns a batch's dedupe adds
    return table


def check_suite(dsn: str, code: str, clean: list[dict], bad: list[tuple[str, dict]]) -> None:
    """Every row-level rule names its bad rows and none of the clean ones."""
    conn = migrated(dsn)
    items = clean + [item for _, item in bad]
    table = stage(conn, code, items)
    clean_ids = set(range(1, len(clean) + 1))
    expected: dict[str, set[int]] = {}
    for n, (reason, _) in enumerate(bad, start=len(clean) + 1):
        expected.setdefault(reason, set()).add(n)

    suite = validation.load_suite(catalog.get(code).suite_path)
    results = validation.validate_table(sqlalchemy_url(dsn), staging.SCHEMA, table, suite)
    reasons = [s.meta["reason"] for s in suite.specs]
    assert len(set(reasons)) == len(reasons), "each rule of a suite has its own reason"
    untested = {s.meta["reason"] for s in suite.specs if s.row_level} - set(expected)
    assert not untested, f"rules without a failing row in this test: {sorted(untested)}"
    assert not set(expected) - set(reasons), "fixture reasons that no rule of the suite carries"
    for spec, res in zip(suite.specs, results):
        reason = spec.meta["reason"]
        assert res.exception is None, (reason, res.exception)
        if not spec.row_level:
            assert reason == COLUMNS_REASON and res.success, (reason, res.observed_value)
            continue
        failing = set(res.failing_row_ids)
        assert expected[reason] <= failing, (reason, sorted(expected[reason] - failing))
        assert not failing & clean_ids, (reason, sorted(failing & clean_ids))
        assert not res.success


def check_missing_column_fails_batch(dsn: str, code: str, dropped: str, tmp_path) -> None:
    """The batch-level column-set rule fails when a contract column is missing (and only then)."""
    source = catalog.get(code)
    doc = json.loads(source.suite_path.read_text(encoding="utf-8"))
    only = [e for e in doc["expectations"] if e["type"] == "expect_table_columns_to_match_set"]
    assert len(only) == 1 and only[0]["severity"] == "critical"
    assert set(only[0]["kwargs"]["column_set"]) == set(rows.staging_columns(source))
    path = tmp_path / f"{code}_columns.json"
    path.write_text(json.dumps({"name": code, "expectations": only}), encoding="utf-8")
    suite = validation.load_suite(path)
    conn = migrated(dsn)
    table = stage(conn, code, [], batch_id=2)
    with warehouse.transaction(conn) as cur:
        cur.execute(f'ALTER TABLE staging."{table}" ADD COLUMN surprise text')   # extra: still fine
    [res] = validation.validate_table(sqlalchemy_url(dsn), staging.SCHEMA, table, suite)
    assert res.success and not res.row_level
    with warehouse.transaction(conn) as cur:
        cur.execute(f'ALTER TABLE staging."{table}" DROP COLUMN "{dropped}"')
    [res] = validation.validate_table(sqlalchemy_url(dsn), staging.SCHEMA, table, suite)
    assert not res.success and res.severity == "critical"


@pytest.mark.parametrize("code", ["health_visits", "social_payments", "project06_tracker"])
def test_suite_loads_every_expectation_its_file_declares(code):
    source = catalog.get(code)
    doc = json.loads(source.suite_path.read_text(encoding="utf-8"))
    suite = validation.load_suite(source.suite_path)
    assert len(suite.specs) == len(doc["expectations"]) == len(suite.gx_suite.expectations)
    staged = set(rows.staging_columns(source))
    text = json.dumps(doc["expectations"])
    for column in staged - {"_row_id", "_as_of_date", "_province_code"}:
        if not column.endswith(("_mask", "_sex")):   # the mask is for display, the sex has nothing to agree with
            assert f'"{column}"' in text or f" {column} " in text or f"({column}" in text, column
    for spec, item in zip(suite.specs, doc["expectations"]):
        assert item["severity"] == "critical" and item["meta"]["reason"], item
        if spec.type == "unexpected_rows_expectation":
            assert spec.column in staged, item
            assert "{batch}" in spec.kwargs["unexpected_rows_query"]


# --------------------------------------------------------------------------- health_visits

def visit(visit_id, **over):
    """A clean visit: chip ID at a commune 20194 facility, 2026-03-02 09:00 local."""
    base = {"visit_id": visit_id, "facility_code": "48-BV01", "commune_code": "20194",
            "visit_at": "2026-03-02 09:00:00", "patient_cccd": "048095000123",
            "bhyt_card_no": "DN4480123456789", "identification": "chip_cccd"}
    base.update(over)
    return base


HEALTH_CLEAN = [
    visit("V1"),
    visit("V2", patient_cccd=None, identification="bhyt_card"),        # card number alone
    visit("V3", bhyt_card_no=None, identification="vneid_qr"),         # citizen ID alone
    visit("V4", visit_at="2026-11-20 23:59:59", identification="paper"),  # last second of the as-of date
    # legacy Quang Nam 20344 the day before the reform; 20333 exists only from 2025-07-01
    visit("V5", commune_code="20344", visit_at="2025-06-30 23:59:59"),
    visit("V6", commune_code="20333", visit_at="2025-07-01 00:00:00"),
    visit("V7", patient_cccd="049325000123"),                          # born 2025 (G=3, YY=25)
]
HEALTH_BAD = [
    (CELL_ERRORS, visit("B_cells", _cell_errors="row has 9 fields, header has 7")),
    ("visit_id (the business key) is missing", visit(None)),
    ("visit_id occurs twice in the file after duplicates were resolved", visit("B_dup")),
    ("visit_id occurs twice in the file after duplicates were resolved", visit("B_dup", facility_code="48-BV02")),
    ("facility_code is missing", visit("B_facility", facility_code="  ")),
    ("commune_code is missing", visit("B_commune", commune_code=None)),
    ("commune_code names no commune in the scheme in force on the local date of visit_at (legacy before 2025-07-01)",
     visit("B_unknown", commune_code="99999")),
    ("commune_code names no commune in the scheme in force on the local date of visit_at (legacy before 2025-07-01)",
     visit("B_legacy_after", commune_code="20344", visit_at="2025-07-01 00:30:00")),
    ("commune_code names no commune in the scheme in force on the local date of visit_at (legacy before 2025-07-01)",
     visit("B_new_before", commune_code="20333", visit_at="2025-06-30 23:59:59")),
    ("commune_code is a commune outside the IOC's province", visit("B_outside", commune_code="00004")),
    ("visit_at (the record date) is missing", visit("B_no_at", visit_at=None)),
    ("visit_at is not a real local timestamp YYYY-MM-DD HH:MM:SS", visit("B_T", visit_at="2026-03-02T09:00:00")),
    ("visit_at is not a real local timestamp YYYY-MM-DD HH:MM:SS", visit("B_offset", visit_at="2026-03-02 09:00:00+07")),
    ("visit_at is not a real local timestamp YYYY-MM-DD HH:MM:SS", visit("B_feb30", visit_at="2026-02-30 09:00:00")),
    ("visit_at is not a real local timestamp YYYY-MM-DD HH:MM:SS", visit("B_h24", visit_at="2026-03-02 24:00:00")),
    ("visit_at is not a real local timestamp YYYY-MM-DD HH:MM:SS", visit("B_no_secs", visit_at="2026-03-02 09:00")),
    ("visit_at is not a real local timestamp YYYY-MM-DD HH:MM:SS", visit("B_vn", visit_at="02/03/2026 09:00:00")),
    ("visit_at is later than the as-of date (Asia/Ho_Chi_Minh calendar date)",
     visit("B_future", visit_at="2026-11-21 00:00:00")),
    ("neither patient_cccd nor bhyt_card_no is present", visit("B_no_ids", patient_cccd="", bhyt_card_no=None)),
    ("patient_cccd is not 12 digits", visit("B_short", patient_cccd="04809500012")),
    ("patient_cccd is not 12 digits", visit("B_letters", patient_cccd="04809500012X")),
    ("patient_cccd prefix is not one of the 63 birth-registration codes", visit("B_prefix", patient_cccd="003095000123")),
    ("patient_cccd century/year digits give a birth year after the as-of date",
     visit("B_born_later", patient_cccd="048227000123")),                # G=2, YY=27: 2027
    ("bhyt_card_no is not 2 capital letters and 13 digits", visit("B_card_short", bhyt_card_no="DN448012345678")),
    ("bhyt_card_no is not 2 capital letters and 13 digits", visit("B_card_lower", bhyt_card_no="dn4480123456789")),
    ("identification is missing", visit("B_no_ident", identification=None)),
    ("identification is not one of chip_cccd, vneid_qr, bhyt_card, paper", visit("B_ident", identification="CCCD")),
]


def test_health_visits_suite_names_every_faulty_row(empty_db):
    check_suite(empty_db, "health_visits", HEALTH_CLEAN, HEALTH_BAD)


# --------------------------------------------------------------------------- social_payments

def payment(payment_id, **over):
    """A clean payment: elderly allowance by bank transfer in commune 20194 on 2026-03-05."""
    base = {"payment_id": payment_id, "beneficiary_cccd": "048055000123", "commune_code": "20194",
            "program": "elderly_allowance", "period": "2026-03", "amount_vnd": "1500000",
            "channel": "bank_transfer", "paid_on": "2026-03-05"}
    base.update(over)
    return base


SOCIAL_CLEAN = [
    payment("P1"),
    payment("P2", program="meritorious_people", channel="postal_cash", amount_vnd="1"),
    payment("P3", program="social_protection", channel="cash", paid_on="2026-11-20"),
    payment("P4", program="disability_allowance", channel="e_wallet", period="2025-12"),
    payment("P5", commune_code="20344", paid_on="2025-06-30", period="2025-06"),    # legacy before the reform
    payment("P6", commune_code="20333", paid_on="2025-07-01", period="2025-07"),
]
SOCIAL_BAD = [
    (CELL_ERRORS, payment("B_cells", _cell_errors="beneficiary_cccd: number cell that is not a whole number")),
    ("payment_id (the business key) is missing", payment(None)),
    ("payment_id occurs twice in the file after duplicates were resolved", payment("B_dup")),
    ("payment_id occurs twice in the file after duplicates were resolved", payment("B_dup", channel="cash")),
    ("beneficiary_cccd is missing", payment("B_no_cccd", beneficiary_cccd=None)),
    ("beneficiary_cccd is not 12 digits", payment("B_cccd_float", beneficiary_cccd="48055000123.0")),
    ("beneficiary_cccd prefix is not one of the 63 birth-registration codes",
     payment("B_prefix", beneficiary_cccd="099055000123")),
    ("beneficiary_cccd century/year digits give a birth year after the as-of date",
     payment("B_born_later", beneficiary_cccd="048330000123")),          # G=3, YY=30: 2030
    ("commune_code is missing", payment("B_commune", commune_code=None)),
    ("commune_code names no commune in the scheme in force on paid_on (legacy before 2025-07-01)",
     payment("B_unknown", commune_code="99999")),
    ("commune_code names no commune in the scheme in force on paid_on (legacy before 2025-07-01)",
     payment("B_legacy_after", commune_code="20344", paid_on="2025-07-01")),
    ("commune_code names no commune in the scheme in force on paid_on (legacy before 2025-07-01)",
     payment("B_new_before", commune_code="20333", paid_on="2025-06-30")),
    ("commune_code is a commune outside the IOC's province", payment("B_outside", commune_code="00004")),
    ("program is missing", payment("B_no_program", program=None)),
    ("program is not one of meritorious_people, social_protection, elderly_allowance, disability_allowance",
     payment("B_program", program="pension")),
    ("period is missing", payment("B_no_period", period=None)),
    ("period is not a month YYYY-MM", payment("B_month13", period="2026-13")),
    ("period is not a month YYYY-MM", payment("B_compact", period="202603")),
    ("period is not a month YYYY-MM", payment("B_period_date", period="2026-03-01")),
    ("amount_vnd is missing", payment("B_no_amount", amount_vnd=None)),
    ("amount_vnd is not a whole number of VND", payment("B_fraction", amount_vnd="1500000.5")),
    ("amount_vnd is not a whole number of VND", payment("B_dots", amount_vnd="1.500.000")),
    ("amount_vnd is not a whole number of VND", payment("B_formula", amount_vnd="=SUM(F2:F9)")),
    ("amount_vnd is not a whole number of VND", payment("B_huge", amount_vnd="9" * 25)),
    ("amount_vnd is not greater than 0", payment("B_zero", amount_vnd="0")),
    ("amount_vnd is not greater than 0", payment("B_negative", amount_vnd="-1500000")),
    ("channel is missing", payment("B_no_channel", channel=None)),
    ("channel is not one of bank_transfer, e_wallet, postal_cash, cash", payment("B_channel", channel="Cash")),
    ("paid_on (the record date) is missing", payment("B_no_paid", paid_on=None)),
    ("paid_on is not a real YYYY-MM-DD date", payment("B_feb30", paid_on="2026-02-30")),
    ("paid_on is not a real YYYY-MM-DD date", payment("B_datetime", paid_on="2026-03-05 10:30:00")),
    ("paid_on is later than the as-of date", payment("B_future", paid_on="2026-11-21")),
]


def test_social_payments_suite_names_every_faulty_row(empty_db):
    check_suite(empty_db, "social_payments", SOCIAL_CLEAN, SOCIAL_BAD)


# --------------------------------------------------------------------------- project06_tracker

def task(task_id, **over):
    """A clean task of group 3, in progress, due 2026-12-31."""
    base = {"sheet": "tasks", "item_id": task_id, "task_id": task_id, "group_no": "3",
            "title": "Số hóa sổ hộ tịch", "owner_unit": "Sở Tư pháp", "deadline": "2026-12-31",
            "status": "in_progress", "completed_on": None}
    base.update(over)
    return base


def model(model_id, **over):
    """A clean pilot model, in progress since 2025-09-01."""
    base = {"sheet": "models", "item_id": model_id, "model_id": model_id, "name": "Mô hình chợ không tiền mặt",
            "owner_unit": "Công an tỉnh", "status": "in_progress", "started_on": "2025-09-01"}
    base.update(over)
    return base


TRACKER_CLEAN = [
    task("T1"),
    task("T2", group_no="10", status="done", completed_on="2026-05-04", deadline="2026-06-30"),
    task("T3", group_no="1", status="not_started", deadline="2025-01-31"),   # overdue is not invalid
    task("T4", status="in_progress", completed_on="2026-01-01"),            # a date that is not required
    model("M1"),
    model("M2", status="not_started", started_on=None),                       # started_on may be empty
    model("M3", status="done"),
    model("T1"),                                                              # a model may share a task's id
]
TRACKER_BAD = [
    (CELL_ERRORS, task("B_cells", _cell_errors="group_no: formula cell")),
    ("sheet is missing", task("B_no_sheet", sheet=None)),
    ("sheet is not tasks or models", task("B_sheet", sheet="Tasks")),
    ("item_id (task_id or model_id, the business key) is missing", task(None)),
    ("(sheet, item_id) occurs twice in the workbook after duplicates were resolved", model("B_dup")),
    ("(sheet, item_id) occurs twice in the workbook after duplicates were resolved", model("B_dup", status="done")),
    ("group_no is missing", task("B_no_group", group_no=None)),
    ("group_no is not a whole number from 1 to 10", task("B_group0", group_no="0")),
    ("group_no is not a whole number from 1 to 10", task("B_group11", group_no="11")),
    ("group_no is not a whole number from 1 to 10", task("B_group_frac", group_no="3.5")),
    ("group_no is not a whole number from 1 to 10", task("B_group_text", group_no="nhóm 3")),
    ("title is missing", task("B_no_title", title=None)),
    ("name is missing", model("B_no_name", name=None)),
    ("owner_unit is missing", model("B_no_owner", owner_unit=None)),
    ("deadline is missing", task("B_no_deadline", deadline=None)),
    ("deadline is not a real YYYY-MM-DD date", task("B_deadline", deadline="31/12/2026")),
    ("status is missing", task("B_no_status", status=None)),
    ("status is not one of done, in_progress, not_started", model("B_status", status="Done")),
    ("completed_on is missing for a task whose status is done", task("B_done_undated", status="done")),
    ("completed_on is not a real YYYY-MM-DD date",
     task("B_completed", status="done", completed_on="2026-02-29")),      # 2026 is not a leap year
    ("started_on is not a real YYYY-MM-DD date", model("B_started", started_on="=TODAY()")),
]


def test_project06_tracker_suite_names_every_faulty_row(empty_db):
    check_suite(empty_db, "project06_tracker", TRACKER_CLEAN, TRACKER_BAD)


@pytest.mark.parametrize("code, dropped", [("health_visits", "visit_at"), ("social_payments", "amount_vnd"),
                                           ("project06_tracker", "deadline")])
def test_a_missing_column_fails_the_batch(empty_db, tmp_path, code, dropped):
    check_missing_column_fails_batch(empty_db, code, dropped, tmp_path)
