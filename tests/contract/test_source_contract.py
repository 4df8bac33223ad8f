"""The contract every source keeps (sources.md, "What the pipeline checks"), one test for all
sources, fed by the small fixture files of tests/contract/fixtures/ (format: cases.py).

- REST and SQL sources (one batch of items, as their extractor hands them): every row ends
  loaded, or replaced by another row of its key, or quarantined with its reason; the counts
  add up; the core table holds what the fixture says; no clear personal value of any row is
  anywhere in the warehouse; staging is emptied.
- File sources (the rows of one file, staged as the file extractor stages them): every
  row-level rule of the suite names exactly the rows the fixture says break it and never a
  clean one, and every rule has such a row; a missing column fails the batch.
- Every source: its suite loads and judges every field of its contract.

What differs between sources (indicators by hand, merge policies, the real extractors against
the simulator) stays in the per-source tests of tests/integration/.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from ioc_pipeline import warehouse
from ioc_pipeline.declaration import catalog
from ioc_pipeline.ingest import rows, staging, validation
from tests.contract import cases
from tests.integration.warehouse_helpers import KEY, PROVINCE, all_text_values, find_leaks, migrated, run_batch, \
    sqlalchemy_url

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
BATCH_SOURCES = [c for c in cases.codes() if catalog.get(c).kind != "file"]
FILE_SOURCES = [c for c in cases.codes() if catalog.get(c).kind == "file"]
CELL_ERRORS = "a cell could not be read as the contract says"
COLUMNS_REASON = "the staged batch lacks a column of the contract (a missing column fails the batch)"


def test_every_source_has_a_contract_fixture():
    assert set(cases.codes()) <= set(catalog.load())
    assert {s.kind for s in map(catalog.get, cases.codes())} == {"rest", "sql", "file"}


# ----------------------------------------------------------------------------- one batch

def business_key(source, item: dict) -> str:
    return "|".join(str(item[k]) for k in source.key)


def personal_values(source, items: list[dict]) -> tuple[set[str], set[str]]:
    """(IDs, names): every personal value the fixture's rows carry, valid or not."""
    ids, names = set(), set()
    for f in source.fields:
        for item in items:
            value = item.get(f.name)
            if f.pii and isinstance(value, str) and value.strip():
                (names if f.pii == "name" else ids).add(value.strip())
    return ids, names


@pytest.mark.parametrize("code", BATCH_SOURCES)
def test_every_row_is_loaded_replaced_or_quarantined_with_its_reason(code, warehouse_db):
    # the quarantine threshold is lifted so that a short fixture can show every fault kind at
    # once (the threshold has its own tests)
    source = dataclasses.replace(catalog.get(code), quarantine_threshold=1.0)
    fixture = cases.load(code)
    items = cases.items(code)
    conn = migrated(warehouse_db)
    plan, summary = run_batch(conn, warehouse_db, code, AS_OF, [items], source=source)

    loaded = {business_key(source, c.item) for c in fixture if c.expect == "loaded"}
    quarantined = {business_key(source, c.item): c for c in fixture if c.expect == "quarantined"}
    assert not loaded & set(quarantined), "a key is either loaded or quarantined"
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (len(loaded), len(quarantined))
    assert summary["distinct_keys"] == len(loaded) + len(quarantined)
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        cur.execute("SELECT status, rows_read FROM audit.batch WHERE batch_id = %s", (plan.batch_id,))
        assert cur.fetchone() == ("committed", len(items))
        cur.execute("SELECT business_key, record_date, reasons, failing_values FROM quarantine.rejected_row")
        rejected = {k: (d, r, v) for k, d, r, v in cur.fetchall()}
        key_sql = " || '|' || ".join(f"{k}::text" for k in source.key)
        cur.execute(f"SELECT {key_sql} FROM {source.core_table}")
        stored = {k for (k,) in cur.fetchall()}
    conn.commit()

    assert set(rejected) == set(quarantined)   # replaced rows are not quarantined
    for key, case in quarantined.items():
        record_date, reasons, failing_values = rejected[key]
        text = " | ".join(r["reason"] for r in reasons)
        assert case.reason in text, (key, text)
        if case.failing_values is not None:
            assert failing_values == case.failing_values, key
        if case.record_date is not None:
            assert record_date == case.record_date, key
    assert stored == loaded
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        for case in (c for c in fixture if c.core):
            where = " AND ".join(f"{k}::text = %s" for k in source.key)
            exprs = ", ".join(f"to_jsonb({e})" for e in case.core)
            cur.execute(f"SELECT {exprs} FROM {source.core_table} WHERE {where}", [str(case.item[k]) for k in source.key])
            assert dict(zip(case.core, cur.fetchone())) == case.core, business_key(source, case.item)
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")   # staging is emptied
        assert cur.fetchone()[0] == 0
    conn.commit()
    ids, names = personal_values(source, items)
    assert find_leaks(all_text_values(conn), ids, names) == []


# ----------------------------------------------------------------------------- suites

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


@pytest.mark.parametrize("code", FILE_SOURCES)
def test_suite_names_every_faulty_row_and_no_clean_one(code, warehouse_db):
    """Rows are built like the extractor builds them (rows.row_builder: IDs hashed, derived
    parts) and COPYed into a staging table of the exact layout (staging.create); the suite then
    runs in PostgreSQL through validation.validate_table, as a batch does. A rule added to a
    suite without a failing row in the fixture fails this test."""
    fixture = cases.load(code)
    conn = migrated(warehouse_db)
    table = stage(conn, code, cases.items(code))
    clean_ids = {n for n, c in enumerate(fixture, start=1) if c.expect != "quarantined"}
    expected: dict[str, set[int]] = {}
    for n, case in enumerate(fixture, start=1):
        if case.expect == "quarantined":
            expected.setdefault(case.reason, set()).add(n)

    suite = validation.load_suite(catalog.get(code).suite_path)
    results = validation.validate_table(sqlalchemy_url(warehouse_db), staging.SCHEMA, table, suite)
    reasons = [s.meta["reason"] for s in suite.specs]
    assert len(set(reasons)) == len(reasons), "each rule of a suite has its own reason"
    untested = {s.meta["reason"] for s in suite.specs if s.row_level} - set(expected)
    assert not untested, f"rules without a failing row in the fixture: {sorted(untested)}"
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


@pytest.mark.parametrize("code, dropped", [("health_visits", "visit_at"), ("social_payments", "amount_vnd"),
                                           ("project06_tracker", "deadline")])
def test_a_missing_column_fails_the_batch(warehouse_db, tmp_path, code, dropped):
    """The batch-level column-set rule fails when a contract column is missing (and only then)."""
    source = catalog.get(code)
    doc = json.loads(source.suite_path.read_text(encoding="utf-8"))
    only = [e for e in doc["expectations"] if e["type"] == "expect_table_columns_to_match_set"]
    assert len(only) == 1 and only[0]["severity"] == "critical"
    assert set(only[0]["kwargs"]["column_set"]) == set(rows.staging_columns(source))
    path = tmp_path / f"{code}_columns.json"
    path.write_text(json.dumps({"name": code, "expectations": only}), encoding="utf-8")
    suite = validation.load_suite(path)
    conn = migrated(warehouse_db)
    table = stage(conn, code, [], batch_id=2)
    with warehouse.transaction(conn) as cur:
        cur.execute(f'ALTER TABLE staging."{table}" ADD COLUMN surprise text')   # extra: still fine
    [res] = validation.validate_table(sqlalchemy_url(warehouse_db), staging.SCHEMA, table, suite)
    assert res.success and not res.row_level
    with warehouse.transaction(conn) as cur:
        cur.execute(f'ALTER TABLE staging."{table}" DROP COLUMN "{dropped}"')
    [res] = validation.validate_table(sqlalchemy_url(warehouse_db), staging.SCHEMA, table, suite)
    assert not res.success and res.severity == "critical"


@pytest.mark.parametrize("code", FILE_SOURCES)
def test_file_suite_loads_every_expectation_its_file_declares(code):
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


@pytest.mark.parametrize("code", BATCH_SOURCES)
def test_suite_judges_every_contract_field(code):
    """Every field of the catalog entry is named by at least one expectation of the suite; a
    personal ID may be named by its derived parts (<field>_hash, _well_formed, ...)."""
    source = catalog.get(code)
    suite = json.loads(source.suite_path.read_text(encoding="utf-8"))
    text = json.dumps(suite["expectations"])
    parts = {f.name: {f"{f.name}_{part}" for part in ("hash", "well_formed", "prefix_known", "birth_year", "sex")}
             for f in source.fields if f.pii == "cccd"}
    derived = set().union(*parts.values())
    for f in source.field_names:
        assert f'"{f}"' in text or f" {f} " in text or any(d in text for d in parts.get(f, ())), f
    for e in suite["expectations"]:
        assert e["severity"] and e["meta"]["reason"], e
        if e["type"] == "unexpected_rows_expectation":
            assert e["meta"]["column"] in set(source.field_names) | derived

