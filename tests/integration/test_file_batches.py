"""File sources through the real core (discovery, ledger, one batch per file, corrections, the
later named file winning, failures isolated to their file) on health_visits CSV deliveries in a
temporary landing folder and a real warehouse. Expected outcomes are written out by hand."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import time

import pytest

from ioc_pipeline.declaration.catalog import get
from ioc_pipeline.extract import file_source
from ioc_pipeline.ingest import rows as rows_mod, staging
from ioc_pipeline.personal_data import pii
from tests.integration.warehouse_helpers import KEY, all_text_values, find_leaks, migrated, run_file_deliveries

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
HEADER = ["visit_id", "facility_code", "commune_code", "visit_at", "patient_cccd", "bhyt_card_no", "identification"]


def visit(visit_id, ident="chip_cccd", cccd="048095000123", at="2026-11-18 09:00:00", commune="20194", card=""):
    return [visit_id, "48001", commune, at, cccd, card, ident]


def deliver(root, day: str, rows, header=HEADER, facility="48001"):
    path = root / "health" / f"bhyt_visits_{facility}_{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    past = time.time() - 120
    os.utime(path, (past, past))
    return path.relative_to(root).as_posix()


def core(conn) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT visit_id, identification, source_file FROM core.health_visits ORDER BY visit_id")
        rows = {r[0]: (r[1], r[2].rsplit("_", 1)[-1][:8]) for r in cur.fetchall()}
    conn.commit()
    return rows


def ledger(conn) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute("""SELECT f.file_name, f.status, b.error IS NOT NULL FROM audit.file_delivery f
                         JOIN audit.batch b USING (batch_id) ORDER BY f.batch_id""")
        rows = [(name.split("_")[-1], status, has_error) for name, status, has_error in cur.fetchall()]
    conn.commit()
    return rows


def run_status(conn, run_id) -> tuple:
    with conn.cursor() as cur:
        cur.execute("SELECT status, error FROM audit.source_run WHERE run_key = %s", (f"health_visits/{run_id}",))
        row = cur.fetchone()
    conn.commit()
    return row


def test_each_file_is_a_batch_loaded_once_and_a_bad_file_fails_alone(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    deliver(tmp_path, "20261118", [visit(f"A{i}") for i in range(20)])
    deliver(tmp_path, "20261119", [visit(f"B{i}", ident="paper", at="2026-11-19 10:00:00") for i in range(20)])
    bad = deliver(tmp_path, "20261120", [visit("C1")], header=HEADER[:-1])          # no identification column
    deliver(tmp_path, "20261121", [visit("D1", at="2026-11-21 08:00:00")])           # after the as-of date

    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path, run_id="r1")
    assert (result["files"], result["files_committed"], result["files_failed"]) == (3, 2, 1)
    assert result["failures"] == [f"{bad}: column(s) missing from the header: identification"]
    assert len(core(conn)) == 40 and "C1" not in core(conn)
    assert run_status(conn, "r1") == ("failed", f"{bad}: column(s) missing from the header: identification")
    assert ledger(conn) == [("20261118.csv", "committed", False), ("20261119.csv", "committed", False),
                            ("20261120.csv", "failed", True)]

    # the same date again: loaded files are not read again, the failed one is tried again
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path, run_id="r2")
    assert (result["files"], result["files_committed"], result["files_failed"]) == (1, 0, 1)

    # the department delivers the file again, fixed: it loads and the run succeeds
    deliver(tmp_path, "20261120", [visit("C1", at="2026-11-20 07:00:00")])
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path, run_id="r3")
    assert (result["files"], result["files_committed"], result["failures"]) == (1, 1, [])
    assert run_status(conn, "r3") == ("success", None)
    assert len(core(conn)) == 41

    # nothing new: an empty run that succeeds and reads nothing
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path, run_id="r4")
    assert result["files"] == 0 and run_status(conn, "r4") == ("success", None)


def test_a_correction_replaces_its_file_rows_and_the_later_named_file_wins(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    day18 = [visit(f"A{i}") for i in range(30)] + [visit("K", ident="paper")]
    deliver(tmp_path, "20261118", day18)
    deliver(tmp_path, "20261119", [visit("K", ident="vneid_qr", at="2026-11-19 09:00:00")])   # same key, later file
    run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path, run_id="r1")
    assert core(conn)["K"] == ("vneid_qr", "20261119")

    # correction of the 18th: A0 changed, A1 removed, A2 now invalid (quarantined: keeps its
    # loaded version), K changed (the 19th's version still wins)
    corrected = [visit("A0", ident="bhyt_card")] + [visit(f"A{i}") for i in range(3, 30)]
    corrected += [visit("A2", commune="99999"), visit("K", ident="bhyt_card")]
    deliver(tmp_path, "20261118", corrected)
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path, run_id="r2")
    assert (result["files_committed"], result["rows_quarantined"], result["rows_removed"]) == (1, 1, 1)
    rows = core(conn)
    assert rows["A0"] == ("bhyt_card", "20261118")
    assert "A1" not in rows
    assert rows["A2"] == ("chip_cccd", "20261118")
    assert rows["K"] == ("vneid_qr", "20261119")
    assert len(rows) == 30


def test_a_file_over_the_quarantine_threshold_fails_and_publishes_nothing(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    good = [visit(f"G{i}") for i in range(18)]
    bad = [visit("X1", cccd="12345"), visit("X2", ident="fingerprint")]      # 2 of 20 = 10 % > 5 %
    name = deliver(tmp_path, "20261118", good + bad)
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path)
    assert result["files_failed"] == 1 and "exceeds the threshold" in result["failures"][0]
    assert result["failures"][0].startswith(name)
    assert core(conn) == {}
    with conn.cursor() as cur:
        cur.execute("SELECT business_key, batch_failed FROM quarantine.rejected_row ORDER BY 1")
        assert cur.fetchall() == [("X1", True), ("X2", True)]          # kept as the failed file's evidence
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")
        assert cur.fetchone()[0] == 0                                    # staging dropped after the failure
    conn.commit()


def test_file_rows_keep_no_clear_personal_id(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    rows = [visit(f"P{i}", cccd=f"0480950{i:05d}", card=f"DN448{i:010d}") for i in range(30)]
    rows.append(visit("P_bad", cccd="04809X000001", card="dn4480000000001"))   # quarantined, masked
    deliver(tmp_path, "20261118", rows)
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path)
    assert result["files_committed"] == 1 and result["rows_quarantined"] == 1
    with conn.cursor() as cur:
        cur.execute("SELECT patient_cccd_hash, bhyt_card_no_hash FROM core.health_visits WHERE visit_id = 'P3'")
        assert cur.fetchone() == (pii.keyed_hash(KEY, "048095000003"), pii.keyed_hash(KEY, "DN4480000000003"))
        cur.execute("SELECT failing_values FROM quarantine.rejected_row")
        (values,) = cur.fetchone()
    conn.commit()
    assert values == {"patient_cccd_well_formed": "048*********", "bhyt_card_no_well_formed": "dn4************"}
    ids = {r[4] for r in rows} | {r[5] for r in rows}
    assert find_leaks(all_text_values(conn), ids, set()) == []


def test_unknown_columns_load_and_are_recorded_as_a_schema_drift_warning(warehouse_db, tmp_path):
    conn = migrated(warehouse_db)
    header = HEADER + ["ghi_chu", "048095000999"]          # a note column, and an ID pasted into the header
    deliver(tmp_path, "20261118", [visit(f"A{i}") + ["x", "y"] for i in range(5)], header=header)
    result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path)
    assert result["files_committed"] == 1 and result["rows_loaded"] == 5
    with conn.cursor() as cur:
        cur.execute("""SELECT expectation_type, severity, success, observed_value, unexpected_count
                         FROM audit.validation_result WHERE expectation_index = -1""")
        assert cur.fetchall() == [("schema_drift_extra_columns", "warning", False, ["<unprintable name>", "ghi_chu"], 2)]
        cur.execute("SELECT extra_columns FROM audit.batch")
        assert cur.fetchone()[0] == ["<unprintable name>", "ghi_chu"]
    conn.commit()


def test_a_ragged_row_late_in_a_file_reads_the_whole_file_row_by_row(warehouse_db, tmp_path, monkeypatch, caplog):
    """The columnar reader meets the ragged row after several record batches went to COPY: they
    are rolled back, the file is read row by row from its start, and the batch is what the row
    reader makes of the file (the ragged row quarantined by its cell error, every other row once)."""
    monkeypatch.setattr(file_source, "COLUMNAR_BLOCK_BYTES", 1024)   # many record batches before the row
    conn = migrated(warehouse_db)
    rows = [visit(f"R{i:03d}", cccd=f"0480950{i:05d}") for i in range(400)]
    rows.insert(350, ["R_ragged", "48001"])
    deliver(tmp_path, "20261118", rows)
    with caplog.at_level("INFO", logger="ioc_pipeline.ingest.batch"):
        result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path)
    assert "health_visits: the file is read row by row: a row of another width than the header" in caplog.text
    assert (result["files_committed"], result["rows_loaded"], result["rows_quarantined"]) == (1, 400, 1)
    assert len(core(conn)) == 400 and "R_ragged" not in core(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT rows_read FROM audit.batch")
        assert cur.fetchone()[0] == 401
        cur.execute("SELECT business_key, failing_values ->> '_cell_errors' FROM quarantine.rejected_row")
        assert cur.fetchall() == [("R_ragged", "row has 2 fields, header has 7")]
    conn.commit()


def test_a_plain_file_is_read_column_by_column_with_the_row_readers_checksum(warehouse_db, tmp_path, caplog):
    conn = migrated(warehouse_db)
    name = deliver(tmp_path, "20261118", [visit(f"C{i}", cccd=f"0480950{i:05d}") for i in range(50)])
    with caplog.at_level("INFO", logger="ioc_pipeline.ingest.batch"):
        result = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, tmp_path)
    assert "staged 50 rows (read column by column)" in caplog.text and result["rows_loaded"] == 50
    source = get("health_visits")
    (delivery,) = [d for d in file_source.discover(tmp_path, source.files, AS_OF) if d.name == name]
    with conn.cursor() as cur:
        cur.execute("SELECT batch_id, checksum FROM audit.batch")
        batch_id, checksum = cur.fetchone()
    conn.commit()
    build = rows_mod.row_builder(source, KEY, AS_OF.isoformat(), "48")
    text = "".join(staging.encode_line(build(i, item))
                   for i, item in enumerate(file_source.read_items(tmp_path, source, delivery), 1))
    assert checksum == hashlib.sha256(text.encode()).hexdigest()
