"""`make check-suite`: a suite file is tried on a sample without publishing anything, and an
expectation an analyst adds to the JSON is used with no code change."""
import datetime as dt
import json

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.quality import suite_check
from ioc_pipeline.ingest import validation
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import KEY, migrated, sqlalchemy_url

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
    rows, results = suite_check.check(conn, source, D, fetch=lambda plan: (iter(items), lambda: None), key=KEY,
                                      province_code="48", sqlalchemy_url=sqlalchemy_url(warehouse_db), suite_path=edited)
    assert rows == 31 and len(results) == 27
    assert results[-1].type == "expect_table_row_count_to_be_between" and not results[-1].success
    sex = [r for r in results if r.type == "expect_column_values_to_be_in_set" and r.column == "subject_sex"][0]
    assert sex.unexpected_count == 1
    lines = suite_check.format_results(results)
    assert "FAIL   critical: fails the batch" in lines[-1]
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
    rows, results = suite_check.check(conn, source, D, fetch=suite_check.sample_fetcher(source), key=KEY,
                                      province_code="48", sqlalchemy_url=sqlalchemy_url(warehouse_db))
    assert "sample = health/bhyt_visits_48001_20261119.csv" in capsys.readouterr().out
    assert rows == 2
    failed = {(r.type, r.column) for r in results if not r.success}
    assert ("expect_column_values_to_be_in_set", "identification") in failed     # "fingerprint"
    assert ("unexpected_rows_expectation", "patient_cccd_hash") in failed        # V2 has neither ID
    with conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'), (SELECT count(*) FROM audit.batch)")
        assert cur.fetchone() == (0, 0)
    conn.commit()
