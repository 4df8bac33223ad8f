"""Reliability of the file sources (health_visits CSV, social_payments and project06_tracker
workbooks; docs/file_sources.md): crashes, idempotency, source faults, hostile input and
personal data, each on real files in a temporary landing folder and a real warehouse, driven
the way the file DAG drives them (warehouse_helpers.run_file_deliveries). docs/reliability.md
lists what each test proves; what tests/unit/test_file_source.py and
tests/integration/test_file_batches.py already prove is not repeated here.
"""
from __future__ import annotations

import csv
import datetime as dt
import http.server
import io
import logging
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import openpyxl
import psycopg2
import pytest

from ioc_pipeline.ingest import batch, file_batches
from ioc_pipeline.declaration import catalog
from ioc_pipeline.personal_data import pii
from ioc_pipeline.views import refresh
from simulator import health_visits, project06_tracker, social_payments
from tests.integration.warehouse_helpers import (KEY, PROVINCE, all_text_values, find_leaks, migrated,
                                                 run_file_deliveries, sqlalchemy_url)
from tests.reliability.support import (blocked_by, diff, kill, last_copy_settled, lock_held, locks_of, rows, scalar,
                                       snapshot, start_worker, wait_for, worker_backends, worker_log)

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
FILE_SOURCES = ("health_visits", "social_payments", "project06_tracker")
HEADER = ["visit_id", "facility_code", "commune_code", "visit_at", "patient_cccd", "bhyt_card_no", "identification"]
SOCIAL_HEADER = ["payment_id", "beneficiary_cccd", "commune_code", "program", "period", "amount_vnd", "channel",
                 "paid_on"]
# What a crash or a re-run may change: the ledger of runs, batches and files, and the views over it.
LEDGER = ("audit.batch", "audit.source_run", "audit.validation_result", "audit.file_delivery",
          "ioc.source_freshness", "ioc.data_quality")
FILE_WORKER = "tests.reliability.file_worker"


# ----------------------------------------------------------------------------- delivering files

def settle(path: Path, age: float = 120) -> None:
    """Give a delivered file an mtime `age` seconds old (60 s make it settled)."""
    past = time.time() - age
    os.utime(path, (past, past), follow_symlinks=False)


def put(root: Path, rel: str, data: bytes, age: float = 120) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    settle(path, age)
    return rel


def csv_bytes(rows: list[list[str]], header=HEADER) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode("utf-8")


def visit_csv(root: Path, day: str, rows: list[list[str]], facility: str = "48001", age: float = 120) -> str:
    return put(root, f"health/bhyt_visits_{facility}_{day}.csv", csv_bytes(rows), age)


def visit(visit_id: str, i: int = 0, ident: str = "chip_cccd", at: str = "2026-11-18 09:00:00",
          facility: str = "48001", commune: str = "20194") -> list[str]:
    return [visit_id, facility, commune, at, f"0480950{i % 100000:05d}", f"DN448{i:010d}", ident]


def visits(prefix: str, n: int, *, bad_every: int | None = None, at: str = "2026-11-18 09:00:00") -> list[list[str]]:
    """n valid visits; with bad_every, one in bad_every has an unknown identification (quarantined)."""
    return [visit(f"{prefix}{i:06d}", i, "fingerprint" if bad_every and i % bad_every == 3 else "chip_cccd", at)
            for i in range(n)]


def workbook_bytes(sheets: dict[str, list[list]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, sheet_rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in sheet_rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def payment(payment_id, i: int = 0, **over) -> list:
    row = {"payment_id": payment_id, "beneficiary_cccd": f"0480950{i % 100000:05d}", "commune_code": "20194",
           "program": "elderly_allowance", "period": "2026-10", "amount_vnd": 500000, "channel": "bank_transfer",
           "paid_on": dt.date(2026, 10, 5)}
    row.update(over)
    return [row[c] for c in SOCIAL_HEADER]


def payments(prefix: str, n: int) -> list[list]:
    return [payment(f"{prefix}{i:05d}", i) for i in range(n)]


def core(dsn: str, table: str, key: str) -> dict:
    """{key: {column: value}} of a core table."""
    return dict(rows(dsn, f"SELECT {key}, to_jsonb(t) FROM {table} t"))


def ledger(dsn: str, source: str) -> list[tuple]:
    return rows(dsn, """SELECT f.file_name, f.status, b.error FROM audit.file_delivery f JOIN audit.batch b USING (batch_id)
                         WHERE f.source_code = %s ORDER BY f.batch_id""", (source,))


def staging_tables(dsn: str) -> list[tuple]:
    return rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'staging'")


# ----------------------------------------------------------------------------- 1. crash

def wait_until_worker_gone(dsn):
    wait_for(lambda: not worker_backends(dsn), "the killed worker's backends to leave", timeout=30)


def kill_worker_loading(phase: str, dsn: str, landing: Path, big: str, tmp_path: Path) -> int:
    """Start a worker running health_visits' file run (run id r2-killed) and SIGKILL it while
    `big` is being staged, or while its publish is blocked on core.health_visits; returns the
    killed batch's id once the worker's backends are gone."""
    spec = {"mode": "files", "dsn": dsn, "source": "health_visits", "as_of": AS_OF.isoformat(),
            "landing": str(landing), "run_id": "r2-killed"}
    if phase == "staging":
        signal = tmp_path / "staging.signal"
        worker = start_worker({**spec, "pause_after": 25_000, "signal": str(signal)}, tmp_path, FILE_WORKER)
        wait_for(signal.exists, "the reader to stall mid-file", proc=worker, log=lambda: worker_log(tmp_path, spec))
        batch_id = scalar(dsn, "SELECT batch_id FROM audit.file_delivery WHERE file_name = %s", (big,))
        (pid,) = worker_backends(dsn)
        # the staging transaction is open (it emptied the table) and its last statement was a COPY
        assert (f"staging.health_visits_b{batch_id}", "AccessExclusiveLock") in locks_of(dsn, pid)
        query = last_copy_settled(dsn, pid, proc=worker, log=lambda: worker_log(tmp_path, spec))
        assert query.startswith(f'COPY "staging"."health_visits_b{batch_id}"')
        kill(worker)
    else:
        with lock_held(dsn, "core.health_visits") as locker:
            worker = start_worker(spec, tmp_path, FILE_WORKER)
            pid = wait_for(lambda: blocked_by(dsn, locker), "the file's publish to block on core.health_visits",
                           proc=worker, log=lambda: worker_log(tmp_path, spec))[0]
            # inside the publish transaction: the file's quarantine rows are already written
            assert ("quarantine.rejected_row", "RowExclusiveLock") in locks_of(dsn, pid)
            kill(worker)
        batch_id = scalar(dsn, "SELECT batch_id FROM audit.file_delivery WHERE file_name = %s", (big,))
    wait_until_worker_gone(dsn)
    return batch_id


# staging: 30,000 rows stage ~7 MB, past the COPY writer's 4 MB flush, before the reader stalls
CRASH_ROWS = {"staging": 30_000, "publish": 2_000}


@pytest.mark.parametrize("phase", ["staging", "publish"])
def test_kill_while_a_file_loads_changes_nothing_and_the_next_run_loads_it(phase, make_warehouse, tmp_path):
    dsn, ref = make_warehouse("ioc_rel_fcrash"), make_warehouse("ioc_rel_fref")
    landing = tmp_path / "landing"
    conn, ref_conn = migrated(dsn), migrated(ref)
    visit_csv(landing, "20261118", visits("A", 300, bad_every=40))
    for c, d in ((conn, dsn), (ref_conn, ref)):
        assert run_file_deliveries(c, d, "health_visits", AS_OF, landing, run_id="r1")["files_committed"] == 1
    big = visit_csv(landing, "20261119", visits("B", CRASH_ROWS[phase], bad_every=50, at="2026-11-19 10:00:00"))
    # the reference: the same two runs, no crash
    assert run_file_deliveries(ref_conn, ref, "health_visits", AS_OF, landing, run_id="r2")["files_committed"] == 1
    refresh.refresh(ref_conn, AS_OF, PROVINCE)
    ref_conn.close()

    before = snapshot(dsn)
    batch_id = kill_worker_loading(phase, dsn, landing, big, tmp_path)

    after = snapshot(dsn)
    assert diff({k: v for k, v in before.items() if k not in LEDGER},
                {k: v for k, v in after.items() if k not in LEDGER}) == []
    assert ledger(dsn, "health_visits")[1:] == [(big, "running", None)]      # never recorded as committed
    assert staging_tables(dsn) != []                                           # no teardown ran

    result = run_file_deliveries(conn, dsn, "health_visits", AS_OF, landing, run_id="r3")
    assert (result["files"], result["files_committed"], result["failures"]) == (1, 1, [])
    refresh.refresh(conn, AS_OF, PROVINCE)
    conn.close()
    assert rows(dsn, "SELECT status, error FROM audit.batch WHERE batch_id = %s", (batch_id,)) == [
        ("failed", "abandoned: the worker stopped before the batch finished")]
    assert rows(dsn, "SELECT status FROM audit.source_run WHERE run_key = 'health_visits/r2-killed'") == [("failed",)]
    assert [(n, s) for n, s, _ in ledger(dsn, "health_visits")[1:]] == [(big, "failed"), (big, "committed")]
    assert staging_tables(dsn) == []
    assert diff(snapshot(dsn, volatile=True, skip=LEDGER[:-1]), snapshot(ref, volatile=True, skip=LEDGER[:-1])) == []
    valid = sum(i % 40 != 3 for i in range(300)) + sum(i % 50 != 3 for i in range(CRASH_ROWS[phase]))
    assert scalar(dsn, "SELECT count(*) FROM core.health_visits") == valid


def test_a_retry_of_load_files_after_a_kill_closes_the_killed_batch(make_warehouse, tmp_path):
    dsn = make_warehouse("ioc_rel_fcrash")
    landing = tmp_path / "landing"
    conn = migrated(dsn)
    big = visit_csv(landing, "20261119", visits("B", 500, bad_every=50, at="2026-11-19 10:00:00"))
    batch_id = kill_worker_loading("publish", dsn, landing, big, tmp_path)
    # Airflow retries load_files with begin's XCom: the same run key and deliveries
    source = catalog.get("health_visits")
    todo = file_batches.pending(conn, source, landing, AS_OF)
    result = file_batches.load_all(conn, source, "health_visits/r2-killed", AS_OF, landing, todo, key=KEY,
                                   province_code=PROVINCE, sqlalchemy_url=sqlalchemy_url(dsn))
    conn.close()
    assert (result["files_committed"], result["failures"]) == (1, [])
    assert rows(dsn, "SELECT status FROM audit.source_run WHERE run_key = 'health_visits/r2-killed'") == [("success",)]
    assert rows(dsn, "SELECT status FROM audit.batch WHERE batch_id = %s", (batch_id,)) == [("failed",)]
    assert staging_tables(dsn) == []


# ----------------------------------------------------------------------------- the simulator's deliveries

SIM_SEED = 22   # its last four health days hold a missing column, a bad export, drift and a correction


@pytest.fixture(scope="module")
def sim_files(pg_server, tmp_path_factory):
    """The simulator's deliveries of the three file sources up to AS_OF, small volumes, with their
    labelled row and file faults: (sim dsn, landing folder). Tests copy the folder."""
    name = f"ioc_rel_simfiles_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    dsn = " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name}.items())
    folder = tmp_path_factory.mktemp("sim_landing")
    try:
        health_visits.generate(dsn, folder, until=AS_OF, visits_per_day=600, health_days=4, seed=SIM_SEED)
        social_payments.generate(dsn, folder, until=AS_OF, payments_per_month=150, seed=SIM_SEED)
        project06_tracker.generate(dsn, folder, until=AS_OF, seed=SIM_SEED)
        yield dsn, folder
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def run_all(conn, dsn: str, landing: Path, run_id: str) -> dict:
    """Every file source's run for AS_OF (the real 60 s settling rule), then the view refresh."""
    out = {code: run_file_deliveries(conn, dsn, code, AS_OF, landing, run_id=run_id, settle_seconds=60)
           for code in FILE_SOURCES}
    refresh.refresh(conn, AS_OF, PROVINCE)
    return out


def ledger_counts(dsn: str) -> dict:
    return {t: dict(rows(dsn, f"SELECT source_code, count(*) FROM {t} GROUP BY 1")) for t in
            ("audit.source_run", "audit.batch")}


# ----------------------------------------------------------------------------- 2. idempotency

def test_same_date_twice_loads_no_file_again_and_changes_nothing(sim_files, warehouse_db, tmp_path):
    sim_dsn, folder = sim_files
    landing = tmp_path / "landing"
    shutil.copytree(folder, landing)        # copy2: the delivered mtimes are kept
    conn = migrated(warehouse_db)
    first = run_all(conn, warehouse_db, landing, "run-1")
    failing = dict(rows(sim_dsn, """SELECT source, count(*) FILTER (WHERE expected_status = 'fails') FROM (
                                      SELECT DISTINCT ON (file_name) source, expected_status FROM sim.file_deliveries
                                       ORDER BY file_name, delivery_no DESC) d GROUP BY 1"""))
    assert {c: r["files_failed"] for c, r in first.items()} == failing
    assert failing["health_visits"] >= 2 and failing["social_payments"] >= 2       # real file faults
    assert all(r["files_committed"] > 0 and r["rows_quarantined"] > 0 for r in first.values()), first
    state = snapshot(warehouse_db, volatile=True, skip=LEDGER)
    counts = ledger_counts(warehouse_db)
    committed = rows(warehouse_db, "SELECT * FROM audit.file_delivery WHERE status = 'committed' ORDER BY batch_id")

    second = run_all(conn, warehouse_db, landing, "run-2")
    # nothing is loaded twice; only the files that failed are tried again, and fail again
    assert {c: (r["files"], r["files_committed"]) for c, r in second.items()} == {c: (n, 0) for c, n in failing.items()}
    assert diff(snapshot(warehouse_db, volatile=True, skip=LEDGER), state) == []
    assert rows(warehouse_db, "SELECT * FROM audit.file_delivery WHERE status = 'committed' ORDER BY batch_id") == committed
    after = ledger_counts(warehouse_db)
    assert after["audit.source_run"] == {c: n + 1 for c, n in counts["audit.source_run"].items()}
    assert after["audit.batch"] == {c: n + failing[c] for c, n in counts["audit.batch"].items()}

    # the same bytes delivered again (a new mtime, settled): not a new delivery
    for rel in ("health/" + sorted(os.listdir(landing / "health"))[0], "social/social_payments_202609.xlsx",
                project06_tracker.FILE):
        settle(landing / rel, age=90)
    third = run_all(conn, warehouse_db, landing, "run-3")
    conn.close()
    assert {c: (r["files"], r["files_committed"]) for c, r in third.items()} == {c: (n, 0) for c, n in failing.items()}
    assert diff(snapshot(warehouse_db, volatile=True, skip=LEDGER), state) == []


DAY_QUALITY = """SELECT source_code, batch_status, expectations_evaluated, expectations_passed, rows_read, rows_loaded,
                         rows_quarantined, share_valid FROM ioc.data_quality"""   # all but finished_at


def test_rerun_of_the_same_date_keeps_the_days_file_data_quality(sim_files, warehouse_db, tmp_path):
    _, folder = sim_files
    landing = tmp_path / "landing"
    shutil.copytree(folder / "health", landing / "health")
    conn = migrated(warehouse_db)
    run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, landing, run_id="run-1", settle_seconds=60)
    day = rows(warehouse_db, DAY_QUALITY)
    assert day and day[0][1] == "failed" and day[0][5] > 0       # a file failed, the others committed
    run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, landing, run_id="run-2", settle_seconds=60)
    conn.close()
    assert rows(warehouse_db, DAY_QUALITY) == day


# ----------------------------------------------------------------------------- 5. personal data

def test_no_clear_id_or_card_number_anywhere_after_a_run_on_the_simulators_files(sim_files, warehouse_db, tmp_path,
                                                                                caplog):
    sim_dsn, folder = sim_files
    landing = tmp_path / "landing"
    shutil.copytree(folder, landing)
    conn = migrated(warehouse_db)
    with caplog.at_level(logging.DEBUG):
        result = run_all(conn, warehouse_db, landing, "run-1")
    assert all(r["rows_quarantined"] > 0 for c, r in result.items() if c != "project06_tracker"), result
    ids = {r[0] for r in rows(sim_dsn, """SELECT patient_cccd FROM sim.health_visits_truth
                                          UNION SELECT bhyt_card_no FROM sim.health_visits_truth
                                          UNION SELECT beneficiary_cccd FROM sim.social_payments_truth""") if r[0]}
    assert len(ids) > 1000
    # the faulty IDs reached quarantine, shown by their masks only
    masked = rows(warehouse_db, """SELECT DISTINCT value FROM quarantine.rejected_row, jsonb_each_text(failing_values)
                                WHERE key ~ '^(patient_cccd|bhyt_card_no|beneficiary_cccd)_'""")
    assert masked and all("*" in v for (v,) in masked if v), masked
    texts = all_text_values(conn) + [r.getMessage() for r in caplog.records]
    conn.close()
    assert find_leaks(texts, ids, set()) == []
    planted = sorted(ids)[0]
    assert find_leaks([f"x{planted}y"], ids, set()) == [planted]      # the scan does find one


# ----------------------------------------------------------------------------- 3. source faults

def test_unreadable_files_fail_alone_with_one_line_naming_the_file(warehouse_db, tmp_path):
    landing = tmp_path / "landing"
    conn = migrated(warehouse_db)
    # health: one good day, and what exporters get wrong
    good = visit_csv(landing, "20261115", visits("G", 40))
    empty = put(landing, "health/bhyt_visits_48001_20261116.csv", b"")
    legacy = put(landing, "health/bhyt_visits_48001_20261117.csv",      # Windows-1258, not UTF-8
                 csv_bytes([visit(f"L{i}", i, facility="BV Đà") for i in range(3)]).decode().encode("cp1258"))
    utf16 = put(landing, "health/bhyt_visits_48001_20261118.csv", csv_bytes(visits("U", 3)).decode().encode("utf-16"))
    writing = visit_csv(landing, "20261119", visits("W", 10), age=5)   # still being written
    # social: one good month, a truncated, a wrong sheet, an empty and a column short workbook
    month = payments("P", 30)
    sep = put(landing, "social/social_payments_202609.xlsx", workbook_bytes({"payments": [SOCIAL_HEADER, *month]}))
    whole = workbook_bytes({"payments": [SOCIAL_HEADER, *payments("T", 2000)]})
    cut = put(landing, "social/social_payments_202608.xlsx", whole[: len(whole) // 2])
    sheet = put(landing, "social/social_payments_202607.xlsx", workbook_bytes({"Payments 07": [SOCIAL_HEADER, *month]}))
    zero = put(landing, "social/social_payments_202606.xlsx", b"")
    short = put(landing, "social/social_payments_202605.xlsx",
                workbook_bytes({"payments": [SOCIAL_HEADER[:-1], *[r[:-1] for r in month]]}))
    # tracker: the models sheet renamed
    tracker = put(landing, project06_tracker.FILE, workbook_bytes({
        "tasks": [list(project06_tracker.TASK_COLUMNS), ["T1", 3, "Số hóa", "Sở Tư pháp", dt.date(2026, 12, 31),
                                                         "in_progress", None]],
        "Mô hình": [list(project06_tracker.MODEL_COLUMNS)]}))

    results = {c: run_file_deliveries(conn, warehouse_db, c, AS_OF, landing, run_id="r1", settle_seconds=60)
               for c in FILE_SOURCES}
    expected = {
        "health_visits": [rf"{empty}: empty file, no header row",
                          rf"{legacy}: not valid UTF-8 on line 2 \(byte \d+: invalid continuation byte\)",
                          rf"{utf16}: not valid UTF-8 on line 1 \(byte 1: invalid start byte\)"],
        "social_payments": [rf"{short}: sheet 'payments': column\(s\) missing from the header: paid_on",
                            rf"{zero}: not a readable xlsx workbook \(truncated or another format\): \w+",
                            rf"{sheet}: sheet 'payments' not found \(sheets: Payments 07\)",
                            rf"{cut}: (not a readable xlsx workbook \(truncated or another format\)|workbook damaged "
                            r"while reading \(truncated\?\)): \w+"],
        "project06_tracker": [rf"{tracker}: sheet 'models' not found \(sheets: tasks, Mô hình\)"],
    }
    for code, patterns in expected.items():
        failures = results[code]["failures"]
        assert len(failures) == len(patterns) and all(re.fullmatch(p, f) for p, f in zip(patterns, failures)), failures
        # the same one line on the file's batch, and the run's error lists them all
        assert {e for _, s, e in ledger(warehouse_db, code) if s == "failed"} == set(failures)
        (error,) = rows(warehouse_db, "SELECT error FROM audit.source_run WHERE run_key = %s", (f"{code}/r1",))[0]
        assert error == "; ".join(failures)[:500] and "\n" not in error
    # the other files loaded; the file still being written was not taken
    assert [(n, s) for n, s, _ in ledger(warehouse_db, "health_visits") if s == "committed"] == [(good, "committed")]
    assert [(n, s) for n, s, _ in ledger(warehouse_db, "social_payments") if s == "committed"] == [(sep, "committed")]
    assert writing not in {n for n, _, _ in ledger(warehouse_db, "health_visits")}
    assert scalar(warehouse_db, "SELECT count(*) FROM core.health_visits") == 40
    assert scalar(warehouse_db, "SELECT count(*) FROM core.social_payments") == 30

    # a minute later the file has settled: the next run takes it (and tries the failed ones again)
    settle(landing / writing, age=61)
    again = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, landing, run_id="r2", settle_seconds=60)
    conn.close()
    assert (again["files"], again["files_committed"], again["files_failed"]) == (4, 1, 3)
    assert scalar(warehouse_db, "SELECT count(*) FROM core.health_visits WHERE source_file = %s", (writing,)) == 10


def test_a_correction_arriving_during_the_run_is_not_read_half_and_loads_next_run(warehouse_db, tmp_path):
    """The department re-sends a workbook between the run's discovery (begin) and its read
    (load_files): the batch fails naming the file, nothing of either version is mixed in, the
    next run loads the correction."""
    conn = migrated(warehouse_db)
    source = catalog.get("social_payments")
    name = put(tmp_path, "social/social_payments_202609.xlsx", workbook_bytes({"payments": [SOCIAL_HEADER, *payments("P", 30)]}))
    run_key = batch.open_run(conn, source, "r1", AS_OF, key=KEY)
    todo = file_batches.pending(conn, source, tmp_path, AS_OF)
    corrected = payments("P", 30)[1:] + [payment("P00000", 0, channel="cash")]
    put(tmp_path, name, workbook_bytes({"payments": [SOCIAL_HEADER, *corrected]}))
    result = file_batches.load_all(conn, source, run_key, AS_OF, tmp_path, todo, key=KEY, province_code=PROVINCE,
                                   sqlalchemy_url=sqlalchemy_url(warehouse_db))
    assert result["failures"] == [f"{name}: changed since it was discovered; the next run reads the new content"]
    assert scalar(warehouse_db, "SELECT count(*) FROM core.social_payments") == 0
    result = run_file_deliveries(conn, warehouse_db, "social_payments", AS_OF, tmp_path, run_id="r2")
    conn.close()
    assert (result["files_committed"], result["rows_loaded"]) == (1, 30)
    assert rows(warehouse_db, "SELECT channel FROM core.social_payments WHERE payment_id = 'P00000'") == [("cash",)]


# ----------------------------------------------------------------------------- 4. hostile input

class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        _Counting.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def tree(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` (links not followed): kind, size, mtime."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        out[path.relative_to(folder).as_posix()] = (path.is_symlink(), path.is_dir(), st.st_size, st.st_mtime_ns)
    return out


def test_hostile_files_are_inert_ignored_or_quarantined_and_nothing_is_written_outside(warehouse_db, tmp_path, caplog):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    link = f'=HYPERLINK("http://127.0.0.1:{server.server_address[1]}/x","y")'
    landing = tmp_path / "landing"
    outside = tmp_path / "outside"
    conn = migrated(warehouse_db)

    sql_key = "'); DROP TABLE core.health_visits; --"
    ctrl = "\x1b[31mred\x07\tx\r\ny"
    hostile = [
        visit(sql_key, 1),
        visit("H-CTRL", 2, facility=ctrl),
        visit("H-NUL", 3, facility="a\x00b"),
        visit("H-LINK", 4, facility=link),                       # a text column: kept as inert text
        visit("H-FORMULA-DATE", 5, at="=1+1"),                   # a timestamp column: quarantined
        visit("H-SQL-CODE", 6, commune="20194'; DELETE FROM core.admin_unit; --"),
    ]
    visits_file = visit_csv(landing, "20261118", hostile + visits("F", 100))
    huge = put(landing, "health/bhyt_visits_48002_20261118.csv",
               csv_bytes([visit("H-HUGE", 7, facility="x" * 2_000_000)] + visits("Z", 5)))
    # names that are not the contract's, or lead elsewhere: never read
    put(landing, "health/bhyt_visits_x';DROP TABLE core.health_visits;--_20261119.csv",
                  csv_bytes([visit("NAMED-1", 8)]))
    put(outside, "secret.csv", csv_bytes([visit("OUTSIDE-1", 9)]))
    os.symlink(outside / "secret.csv", landing / "health/bhyt_visits_48003_20261118.csv")
    os.symlink("../../outside/secret.csv", landing / "health/bhyt_visits_48004_20261118.csv")
    os.symlink(landing / visits_file, landing / "health/bhyt_visits_48005_20261118.csv")   # inside, still a link
    os.symlink(outside, landing / "health/bhyt_visits_48006_20261118.csv")                 # a linked folder
    for link_path in (landing / "health").iterdir():
        if link_path.is_symlink():
            settle(link_path)

    social = put(landing, "social/social_payments_202610.xlsx", workbook_bytes({"payments": [
        SOCIAL_HEADER,
        payment("S-AMOUNT-FORMULA", 1, amount_vnd="=1+1"),                 # number expected: quarantined
        payment("S-DATE-LINK", 2, paid_on=link),                           # date expected: quarantined
        payment(link, 3),                                                  # the key: inert text
        payment("S-SQL", 4, program="elderly_allowance'; DROP TABLE core.social_payments; --"),
        payment(1234, 5, beneficiary_cccd=48095000124, commune_code=20194),  # number cells, zeros lost
        *payments("F", 80)]}))
    before = tree(tmp_path)

    with caplog.at_level(logging.INFO):
        health = run_file_deliveries(conn, warehouse_db, "health_visits", AS_OF, landing, run_id="r1")
        pay = run_file_deliveries(conn, warehouse_db, "social_payments", AS_OF, landing, run_id="r1")
    conn.close()

    assert tree(tmp_path) == before                 # nothing written, moved or deleted in the folders
    assert _Counting.hits == []                     # no formula evaluated, no link followed
    server.shutdown()
    server.server_close()
    # only the contract's regular files were read
    assert [n for n, _, _ in ledger(warehouse_db, "health_visits")] == [visits_file, huge]
    assert any("ignored" in r.getMessage() and "DROP TABLE" in r.getMessage() and "\n" not in r.getMessage()
               for r in caplog.records)
    # the 2 MB cell: that file fails with one line, the other loads
    assert health["failures"] == [f"{huge}: not readable as CSV at line 2: field larger than field limit (1000000)"]
    stored = core(warehouse_db, "core.health_visits", "visit_id")
    assert not {"NAMED-1", "OUTSIDE-1", "H-HUGE"} & set(stored)
    assert stored[sql_key]["facility_code"] == "48001" and stored["H-CTRL"]["facility_code"] == ctrl
    assert stored["H-NUL"]["facility_code"] == "a\ufffdb" and stored["H-LINK"]["facility_code"] == link
    assert rows(warehouse_db, "SELECT to_regclass('core.health_visits') IS NOT NULL, to_regclass('core.social_payments')"
                          " IS NOT NULL, (SELECT count(*) > 0 FROM core.admin_unit)") == [(True, True, True)]
    quarantined = dict(rows(warehouse_db, "SELECT business_key, reasons::text FROM quarantine.rejected_row"))
    assert set(quarantined) == {"H-FORMULA-DATE", "H-SQL-CODE", "S-AMOUNT-FORMULA", "S-DATE-LINK", "S-SQL"}
    assert "visit_at is not a real local timestamp" in quarantined["H-FORMULA-DATE"]
    assert "amount_vnd is not a whole number" in quarantined["S-AMOUNT-FORMULA"]
    assert "paid_on is not a real YYYY-MM-DD date" in quarantined["S-DATE-LINK"]
    assert pay["failures"] == [] and pay["rows_quarantined"] == 3
    assert [n for n, _, _ in ledger(warehouse_db, "social_payments")] == [social]
    paid = core(warehouse_db, "core.social_payments", "payment_id")
    assert link in paid and "000000001234" in paid
    assert rows(warehouse_db, "SELECT beneficiary_cccd_hash, commune_code FROM core.social_payments"
                          " WHERE payment_id = '000000001234'") == [(pii.keyed_hash(KEY, "048095000124"), "20194")]
