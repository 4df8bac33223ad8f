"""`make check-suite`: a suite file is tried on a sample without publishing anything, and an
expectation an analyst adds to the JSON is used with no code change."""
import datetime as dt
import json
import subprocess
import sys
import time

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.quality import suite_check
from ioc_pipeline.ingest import validation
from tests.conftest import REPO
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import KEY, migrated, pipeline_env, sqlalchemy_url

pytestmark = pytest.mark.integration
D = dt.date(2026, 11, 20)


def test_check_suite_runs_an_edited_suite_and_leaves_nothing(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    source = catalog.get("civil_status")
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(30)] + [rec("B1", subject_sex="X")]
    suite = json.loads(source.suite_path.read_text())
    suite["expectations"].append({
        "type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000},
        "severity": "critical", "meta": {"reason": "an analyst's new bound"}})
    edited = tmp_path / "civil_status.json"
    edited.write_text(json.dumps(suite))
    sample = suite_check.check(conn, source, D, fetch=lambda plan: (iter(items), lambda: None), key=KEY,
                               province_code="48", sqlalchemy_url=sqlalchemy_url(warehouse_db), suite_path=edited)
    results = sample.results
    assert sample.rows == 31 and len(results) == 27
    assert results[-1].type == "expect_table_row_count_to_be_between" and not results[-1].success
    sex = [r for r in results if r.type == "expect_column_values_to_be_in_set" and r.column == "subject_sex"][0]
    assert sex.unexpected_count == 1
    text = "\n".join(suite_check.report(source, sample))
    assert "#26  expect_table_row_count_to_be_between" in text and "FAIL   critical: fails the batch" in text
    assert "reason: an analyst's new bound" in text and "kwargs: min_value=1000" in text
    assert "verdict: the batch would FAIL" in text and "#26 expect_table_row_count_to_be_between failed" in text
    with conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'),"
                    " (SELECT count(*) FROM audit.batch), (SELECT count(*) FROM core.civil_status)")
        assert cur.fetchone() == (0, 0, 0)
    conn.commit()


def test_check_suite_reports_a_suite_that_does_not_load(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "expectations": [{"type": "expect_colum_typo", "kwargs": {}}]}))
    with pytest.raises(validation.SuiteError, match="bad.json.*expect_colum_typo"):
        suite_check.check(conn, catalog.get("civil_status"), D, fetch=lambda plan: (iter([]), lambda: None),
                          key=KEY, province_code="48", sqlalchemy_url=sqlalchemy_url(warehouse_db), suite_path=bad)


def test_check_suite_samples_a_file_source_s_newest_delivery(warehouse_db, tmp_path, monkeypatch, capsys):
    """`make check-suite SOURCE=health_visits`: the newest delivery named on or before D, read
    exactly as a batch reads it (CSV as text, cell rules), checked, nothing published."""
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_LANDING", json.dumps({"conn_type": "fs", "extra": {"path": str(tmp_path)}}))
    header = "visit_id,facility_code,commune_code,visit_at,patient_cccd,bhyt_card_no,identification\n"
    (tmp_path / "health").mkdir()
    (tmp_path / "health" / "bhyt_visits_48001_20261118.csv").write_text(header + "OLD,48001,20194,2026-11-18 08:00:00,,,paper\n")
    (tmp_path / "health" / "bhyt_visits_48001_20261119.csv").write_text(
        header + "V1,48001,20194,2026-11-19 08:00:00,048095000123,,chip_cccd\n"
                 "V2,48001,20194,2026-11-19 09:00:00,,,fingerprint\n")
    (tmp_path / "health" / "bhyt_visits_48001_20261121.csv").write_text(header)   # after D: not sampled
    conn = migrated(warehouse_db)
    source = catalog.get("health_visits")
    sample = suite_check.check(conn, source, D, fetch=suite_check.sample_fetcher(source), key=KEY,
                               province_code="48", sqlalchemy_url=sqlalchemy_url(warehouse_db))
    assert "sample = health/bhyt_visits_48001_20261119.csv" in capsys.readouterr().out
    assert sample.rows == 2
    failed = {(r.type, r.column) for r in sample.results if not r.success}
    assert ("expect_column_values_to_be_in_set", "identification") in failed     # "fingerprint"
    assert ("unexpected_rows_expectation", "patient_cccd_hash") in failed        # V2 has neither ID
    with conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'), (SELECT count(*) FROM audit.batch)")
        assert cur.fetchone() == (0, 0)
    conn.commit()


def suite_with(tmp_path, *extra, name="draft.json"):
    suite = json.loads(catalog.get("civil_status").suite_path.read_text())
    suite["expectations"] += list(extra)
    path = tmp_path / name
    path.write_text(json.dumps(suite))
    return path


MISSING_COLUMN = {"type": "unexpected_rows_expectation",
                  "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE death_date < registered_on"},
                  "meta": {"reason": "death dated before its registration"}}
ROW_ID_LEFT_OUT = {"type": "unexpected_rows_expectation",
                   "kwargs": {"unexpected_rows_query": "SELECT record_id FROM {batch} WHERE subject_sex = 'X'"},
                   "meta": {"reason": "sex X"}}


def test_lint_names_the_rule_and_the_fix_before_reading_data(empty_db, tmp_path):
    conn = migrated(empty_db)
    source = catalog.get("civil_status")
    assert suite_check.lint(conn, source, source.suite_path) == []          # the shipped suite is clean
    no_reason = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "subject_sexx"}}
    path = suite_with(tmp_path, MISSING_COLUMN, ROW_ID_LEFT_OUT, no_reason)
    t0 = time.monotonic()
    problems = suite_check.lint(conn, source, path)
    elapsed = time.monotonic() - t0
    assert elapsed < 2, elapsed
    assert len(problems) == 4, problems
    assert problems[0].startswith("#26 unexpected_rows_expectation: its SQL does not run: column")
    assert '"death_date" does not exist' in problems[0] and "the staged batch has: _row_id, " in problems[0]
    assert problems[1].startswith("#27 unexpected_rows_expectation: its SQL does not run: column q._row_id does not exist")
    assert "SELECT * FROM {batch} WHERE" in problems[1]
    assert problems[2] == ('#28 expect_column_values_to_not_be_null(subject_sexx): add "meta": {"reason": "..."}: '
                           'the sentence an engineer reads in quarantine and Data Docs')
    assert "column 'subject_sexx' is not in the staged batch (did you mean subject_sex" in problems[3]
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "expectations": [\n  {"type": "a",}\n]}')
    assert suite_check.lint(conn, source, broken)[0].startswith("invalid JSON at line 2 column")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")
        assert cur.fetchone()[0] == 0                                        # the scratch table was rolled back
    conn.commit()


def test_make_check_suite_exits_non_zero_in_seconds_naming_the_rule_and_column(empty_db, tmp_path):
    migrated(empty_db).close()
    path = suite_with(tmp_path, MISSING_COLUMN)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline.py"), "check-suite", "civil_status",
                          "--suite", str(path)], env=pipeline_env(empty_db, tmp_path / "data", IOC_SIM_PORT="1"), cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert out.returncode == 2, out.stdout + out.stderr
    assert elapsed < 10, elapsed
    assert "#26 unexpected_rows_expectation: its SQL does not run" in out.stdout and "death_date" in out.stdout
    assert "no data was read" in out.stdout and "simulator" not in out.stdout


def test_a_valid_new_rule_prints_reason_failures_samples_and_verdict(empty_db, tmp_path):
    conn = migrated(empty_db)
    source = catalog.get("civil_status")
    new_rule = {"type": "unexpected_rows_expectation",
                "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE registration_type = 'death'"
                                                    " AND subject_cccd_birth_year < 1930"},
                "severity": "critical", "meta": {"reason": "a death registered for someone born before 1930",
                                                 "column": "subject_cccd_hash"}}
    path = suite_with(tmp_path, new_rule)
    assert suite_check.lint(conn, source, path) == []
    old = [rec(f"D{i}", registration_type="death", subject_cccd=f"048029{i:06d}", subject_birth_date="1929-05-01")
           for i in range(7)]
    items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(200)] + old
    sample = suite_check.check(conn, source, D, fetch=lambda plan: (iter(items), lambda: None), key=KEY,
                               province_code="48", sqlalchemy_url=sqlalchemy_url(empty_db), suite_path=path, rows=150)
    assert sample.rows == 150 and not sample.failures                      # ROWS: the first 150 only
    sample = suite_check.check(conn, source, D, fetch=lambda plan: (iter(items), lambda: None), key=KEY,
                               province_code="48", sqlalchemy_url=sqlalchemy_url(empty_db), suite_path=path)
    lines = suite_check.report(source, sample)
    text = "\n".join(lines)
    line = next(i for i, ln in enumerate(lines) if ln.startswith("#26  unexpected_rows_expectation(subject_cccd_hash)"))
    assert "FAIL   7 of 207 rows (3.38%); critical: quarantines them" in lines[line]
    assert lines[line + 1] == "       reason: a death registered for someone born before 1930"
    samples = next(ln for ln in lines[line:] if "sample keys" in ln)
    assert samples.startswith("       sample keys (record_id): D0 [subject_cccd_hash=048*********], D1 ")
    assert samples.count("[subject_cccd_hash=") == 5 and "048029" not in text     # masked, never the ID
    assert "7 of 207 keys would be quarantined (3.38%, threshold 5%)" in text
    assert lines[-1] == "verdict: the batch would COMMIT (the quarantined rows held back)"
