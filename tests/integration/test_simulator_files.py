"""The simulator's file deliveries (health_visits CSVs, social_payments and project06_tracker
workbooks): written as sources.md says, deterministic from the seed, every fault labelled in
the ground truth and present at the default volume, extended by a later `until` without
rewriting a settled file except as a labelled re-delivery, and settled (mtime) when written."""
import csv
import datetime as dt
import io
import re
import time
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import psycopg2
import pytest

from simulator import file_truth, health_visits, landing, project06_tracker, social_payments

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
SOURCES = (health_visits, social_payments, project06_tracker)
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _rows(dsn, query, params=None):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        conn.close()


def _generate(dsn, folder, until, **volumes):
    health_visits.generate(dsn, folder, until=until, **volumes.get("health", {}))
    social_payments.generate(dsn, folder, until=until, **volumes.get("social", {}))
    project06_tracker.generate(dsn, folder, until=until)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _truth(dsn, tracker: bool = True) -> list:
    """The truth tables and the delivery log but for the mtime (capped by the wall clock).
    Without the tracker: its history depends on how often it was generated (one re-send per
    call that finds a newer week), the other sources' does not."""
    tables = ("sim.health_visits_truth", "sim.social_payments_truth") + (("sim.project06_tracker_truth",) if tracker else ())
    out = [_rows(dsn, f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4") for table in tables]
    out.append(_rows(dsn, """SELECT source, file_name, delivery_no, named_date, delivered_at, sha256, size_bytes,
                                    rows_written, distinct_keys, quarantined_keys, sim_file_fault, sim_detail,
                                    expected_status, expected_reason FROM sim.file_deliveries
                              WHERE %s OR source <> 'project06_tracker' ORDER BY 2, 3""", (tracker,)))
    return out


@pytest.fixture(scope="module")
def delivered(pg_server, tmp_path_factory):
    """Default volumes up to AS_OF, generated once for the module: (dsn, landing folder)."""
    import uuid

    name = f"ioc_test_simfiles_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    dsn = " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name}.items())
    folder = tmp_path_factory.mktemp("landing")
    try:
        _generate(dsn, folder, AS_OF)
        yield dsn, folder
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_same_seed_gives_the_same_bytes_and_truth(delivered, make_database, tmp_path):
    dsn, folder = delivered
    _generate(make_database(), tmp_path, AS_OF)   # a second store, same parameters
    assert _files(tmp_path) == _files(folder)
    other = make_database()
    _generate(other, tmp_path / "again", AS_OF)
    assert _truth(other) == _truth(dsn)
    seven = tmp_path / "seed7"
    health_visits.generate(make_database(), seven, until=AS_OF, seed=7)
    assert _files(seven) != {k: v for k, v in _files(folder).items() if k.startswith("health/")}


def test_default_volume_is_small_and_names_follow_the_contract(delivered):
    dsn, folder = delivered
    names = sorted(_files(folder))
    assert 100 <= len(names) < 150                      # the demo's file part stays small
    assert not [n for n in names if n.split("/")[-1].startswith(".")]   # no temp file left behind
    health = [n for n in names if n.startswith("health/")]
    assert len(health) == 6 * 14
    assert all(re.fullmatch(r"health/bhyt_visits_48[0-9]{3}_[0-9]{8}\.csv", n) for n in health)
    social = [n for n in names if n.startswith("social/")]
    assert social[0] == "social/social_payments_202501.xlsx" and social[-1] == "social/social_payments_202610.xlsx"
    assert len(social) == 22                            # 2025-01 .. the last complete month
    assert "project06/project06_tracker.xlsx" in names
    recorded = dict(_rows(dsn, """SELECT DISTINCT ON (file_name) file_name, sha256 FROM sim.file_deliveries
                                   ORDER BY file_name, delivery_no DESC"""))
    assert recorded == {n: landing.sha256_of(folder / n) for n in names}


def test_every_fault_label_occurs_and_most_files_load(delivered):
    dsn, _ = delivered
    post_reform = set(health_visits.FAULT_WEIGHTS) - {"new_code_before_reform"}   # 14 days of 2026
    faults = {t: {r[0] for r in _rows(dsn, f"SELECT DISTINCT sim_fault FROM sim.{t}_truth WHERE sim_fault IS NOT NULL")}
              for t in ("health_visits", "social_payments", "project06_tracker")}
    assert faults["health_visits"] == post_reform
    assert faults["social_payments"] == set(social_payments.FAULT_WEIGHTS)
    assert faults["project06_tracker"] == set(project06_tracker.FAULTS)
    dups = {t: {r[0] for r in _rows(dsn, f"SELECT DISTINCT sim_duplicate FROM sim.{t}_truth WHERE sim_duplicate IS NOT NULL")}
            for t in ("health_visits", "social_payments", "project06_tracker")}
    cross = {"exact_copy", "superseded_in_file", "in_file_winner", "superseded_by_later_file", "repeated_from_earlier_file"}
    assert dups["health_visits"] == dups["social_payments"] == cross
    assert dups["project06_tracker"] == {"exact_copy", "superseded_in_file", "in_file_winner"}
    file_faults = {s: {r[0] for r in _rows(dsn, "SELECT DISTINCT sim_file_fault FROM sim.file_deliveries"
                                                " WHERE source = %s AND sim_file_fault IS NOT NULL", (s,))}
                   for s in ("health_visits", "social_payments", "project06_tracker")}
    assert file_faults["health_visits"] == {"missing_header_column", "extra_unknown_column", "many_bad_rows", "correction"}
    assert file_faults["social_payments"] == {"truncated_workbook", "redelivery", "missing_header_column",
                                              "extra_unknown_column", "many_bad_rows", "correction"}
    assert file_faults["project06_tracker"] == {"extra_unknown_column"}
    # low rates: a few percent of rows are faulty, most files load, and the truth says why others fail
    share = _rows(dsn, "SELECT avg((sim_fault IS NOT NULL)::int) FROM sim.health_visits_truth")[0][0]
    assert 0.005 < share < 0.03
    status = _rows(dsn, "SELECT expected_status, expected_reason, sim_file_fault, quarantined_keys, distinct_keys"
                        " FROM sim.file_deliveries")
    assert sum(s == "loads" for s, *_ in status) > 0.85 * len(status)
    for s, reason, fault, quarantined, distinct in status:
        over = distinct > 0 and quarantined / distinct > file_truth.QUARANTINE_THRESHOLD
        assert (s == "fails") == (fault in file_truth.UNREADABLE or over)
        assert (reason is None) == (s == "loads")
    # a correction changed some rows and removed one that the first delivery had
    for name, detail in _rows(dsn, "SELECT file_name, sim_detail FROM sim.file_deliveries WHERE sim_file_fault = 'correction'"):
        table = "health_visits" if name.startswith("health/") else "social_payments"
        key = "visit_id" if table == "health_visits" else "payment_id"
        removed = detail.split()[-1]
        present = {r[0]: r[1] for r in _rows(dsn, f"SELECT delivery_no, count(*) FILTER (WHERE sim_correction = 'changed')"
                                                  f" FROM sim.{table}_truth WHERE file_name = %s AND {key} = %s GROUP BY 1",
                                             (name, removed))}
        assert list(present) == [1]
        assert _rows(dsn, f"SELECT count(*) FROM sim.{table}_truth WHERE file_name = %s AND delivery_no = 2"
                          " AND sim_correction = 'changed'", (name,))[0][0] >= 1


def test_health_csv_format(delivered):
    dsn, folder = delivered
    boms, line_ends, seen = set(), set(), 0
    for path in sorted((folder / "health").iterdir()):
        raw = path.read_bytes()
        boms.add(raw.startswith(b"\xef\xbb\xbf"))
        line_ends.add(b"\r\n" in raw)
        text = raw.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        name = f"health/{path.name}"
        fault, detail, delivery = _rows(dsn, """SELECT sim_file_fault, sim_detail, delivery_no FROM sim.file_deliveries
                                                WHERE file_name = %s ORDER BY delivery_no DESC LIMIT 1""", (name,))[0]
        expected = [f for f in health_visits.FIELDS if not (fault == "missing_header_column" and f == detail)]
        if fault == "extra_unknown_column":
            expected.append(health_visits.EXTRA_COLUMN)
        assert rows[0] == expected
        truth = _rows(dsn, "SELECT visit_id, visit_at, identification, sim_fault FROM sim.health_visits_truth"
                           " WHERE file_name = %s AND delivery_no = %s ORDER BY row_no", (name, delivery))
        assert [r[0] for r in rows[1:]] == [t[0] for t in truth]      # the truth is what the file holds
        at = rows[0].index("visit_at") if "visit_at" in rows[0] else None
        for row, (_, visit_at, _, fault_label) in zip(rows[1:], truth):
            assert len(row) == len(rows[0])
            if at is not None:
                assert row[at] == visit_at
                if fault_label not in ("visit_at_invalid", "missing_required"):
                    assert TIMESTAMP.fullmatch(row[at])          # local time, no offset
                assert "+" not in row[at] and "T" not in row[at]
            seen += 1
    assert boms == {True, False} and line_ends == {True, False}
    assert seen > 5000
    # chip-ID share near the 2024 field figure, and well-formed card numbers on clean rows
    chip, total = _rows(dsn, """SELECT count(*) FILTER (WHERE identification IN ('chip_cccd', 'vneid_qr')), count(*)
                                  FROM sim.health_visits_truth WHERE sim_fault IS NULL""")[0]
    assert 0.5 < chip / total < 0.7
    bad = _rows(dsn, r"""SELECT count(*) FROM sim.health_visits_truth WHERE sim_fault IS NULL AND (
                            (bhyt_card_no <> '' AND bhyt_card_no !~ '^[A-Z]{2}[0-9]{13}$')
                         OR (patient_cccd <> '' AND patient_cccd !~ '^[0-9]{12}$')
                         OR (patient_cccd = '' AND bhyt_card_no = ''))""")[0][0]
    assert bad == 0


def _cells(path: Path, sheet: str) -> list[tuple]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return [tuple(c for c in row) for row in wb[sheet].iter_rows()]
    finally:
        wb.close()


def test_social_workbooks_mix_cell_types(delivered):
    dsn, folder = delivered
    kinds = {f: set() for f in social_payments.FIELDS}
    padded = 0
    for path in sorted((folder / "social").iterdir()):
        name = f"social/{path.name}"
        fault, detail, delivery = _rows(dsn, """SELECT sim_file_fault, sim_detail, delivery_no FROM sim.file_deliveries
                                                WHERE file_name = %s ORDER BY delivery_no DESC LIMIT 1""", (name,))[0]
        rows = _cells(path, "payments")
        header = [c.value for c in rows[0]]
        expected = [f for f in social_payments.FIELDS if not (fault == "missing_header_column" and f == detail)]
        assert header == expected + ([social_payments.EXTRA_COLUMN] if fault == "extra_unknown_column" else [])
        truth = _rows(dsn, "SELECT * FROM sim.social_payments_truth WHERE file_name = %s AND delivery_no = %s"
                           " ORDER BY row_no", (name, delivery))
        assert len(truth) == len(rows) - 1
        for row, t in zip(rows[1:], truth):
            values = dict(zip(social_payments.FIELDS, t[3:11]))
            for field, cell in zip(header, row):
                if field not in kinds or cell.value is None:
                    continue
                kinds[field].add(cell.data_type)
                if cell.data_type == "n" and field in ("payment_id", "beneficiary_cccd", "commune_code") and t[12] is None:
                    width = 5 if field == "commune_code" else 12
                    assert str(cell.value).zfill(width) == values[field]     # valid once left-padded
                    padded += str(cell.value) != values[field]
    assert "n" in kinds["beneficiary_cccd"] and "s" in kinds["beneficiary_cccd"]
    assert {"n", "s"} <= kinds["commune_code"] and {"n", "s"} <= kinds["payment_id"]
    assert {"n", "s", "f"} <= kinds["amount_vnd"]            # numbers, text, a formula
    assert {"d", "s"} <= kinds["paid_on"]
    assert padded > 10                                       # IDs that lost their leading zero
    channels = dict(_rows(dsn, """SELECT channel IN ('bank_transfer', 'e_wallet'), count(*) FROM sim.social_payments_truth
                                   WHERE sim_fault IS NULL GROUP BY 1"""))
    assert 0.74 < channels[True] / (channels[True] + channels[False]) < 0.86   # field figure 80.76 %
    nfd = _rows(dsn, "SELECT channel, program FROM sim.social_payments_truth WHERE sim_fault = 'enum_invalid'")
    assert any(unicodedata.is_normalized("NFC", v) is False for r in nfd for v in r if v)


def test_tracker_workbook_and_its_oracle(delivered):
    dsn, folder = delivered
    path = folder / project06_tracker.FILE
    tasks, models = _cells(path, "tasks"), _cells(path, "models")
    assert [c.value for c in tasks[0]] == [*project06_tracker.TASK_COLUMNS, project06_tracker.EXTRA_COLUMN]
    assert [c.value for c in models[0]] == list(project06_tracker.MODEL_COLUMNS)
    assert 55 <= len(tasks) - 1 <= 70 and len(models) - 1 == 40
    assert {c.data_type for r in tasks[1:] for c in r[4:5]} == {"d", "s"}      # date cells and text dates
    texts = [c.value for r in tasks[1:] for c in r[2:4] if c.value]
    assert any(not unicodedata.is_normalized("NFC", t) for t in texts) and any(t != t.encode("ascii", "ignore").decode() for t in texts)
    expected = project06_tracker.expected_values(dsn, folder, AS_OF)
    assert [expected[(c, "48")][0] for c in ("P06_MODELS_DONE", "P06_MODELS_IN_PROGRESS", "P06_MODELS_NOT_STARTED")] == [6, 20, 12]
    done, total = expected[("P06_TASKS_DONE_PCT", "48")]
    assert 0 < done < total and total == len({r[0].value for r in tasks[1:]}) - 3   # 3 faulty tasks not counted
    assert expected[("P06_TASKS_OVERDUE", "48")][1] is None


def test_flow_oracles_count_valid_rows_of_loading_files(delivered):
    dsn, folder = delivered
    health = health_visits.expected_values(dsn, folder, AS_OF)
    social = social_payments.expected_values(dsn, folder, AS_OF)
    num, den = health[("BHYT_CHIP_ID_VISITS_PCT", "48")]
    assert 0.5 < num / den < 0.75
    assert den == sum(v[1] for k, v in health.items() if k[1] != "48")
    assert all(len(k[1]) == 5 for k in health if k[1] != "48")
    # the province denominator: distinct visits of loading deliveries, minus faulty survivors
    loads = _rows(dsn, """SELECT count(DISTINCT visit_id) FROM sim.health_visits_truth t
                           WHERE (file_name, delivery_no) IN (SELECT DISTINCT ON (file_name) file_name, delivery_no
                                   FROM sim.file_deliveries WHERE source = 'health_visits' AND expected_status = 'loads'
                                  ORDER BY file_name, delivery_no DESC)""")[0][0]
    assert 0.9 * loads < den < loads
    # a visit exported again the next day counts once, with the later file's identification
    later = _rows(dsn, """SELECT count(*) FROM sim.health_visits_truth WHERE sim_duplicate = 'repeated_from_earlier_file'""")[0][0]
    assert later > 0
    num_s, den_s = social[("SOCIAL_NONCASH_PCT", "48")]
    assert 0.74 < num_s / den_s < 0.88 and den_s > 2000   # 2026-01 .. 2026-10 minus the failed months
    assert social_payments.expected_values(dsn, folder, dt.date(2025, 12, 31))[("SOCIAL_NONCASH_PCT", "48")][1] > den_s / 2
    # an oracle refuses a landing folder that does not hold the recorded deliveries
    with pytest.raises(ValueError):
        health_visits.expected_values(dsn, folder.parent, AS_OF)


def test_mtimes_are_settled_and_follow_delivery_times(delivered):
    dsn, folder = delivered
    now = time.time()
    recorded = {n: (m.timestamp(), d.timestamp()) for n, m, d in _rows(
        dsn, """SELECT DISTINCT ON (file_name) file_name, mtime, delivered_at FROM sim.file_deliveries
                 ORDER BY file_name, delivery_no DESC""")}
    for name, (mtime, delivered_at) in recorded.items():
        actual = (folder / name).stat().st_mtime
        assert actual <= now - 60
        assert abs(actual - mtime) < 1e-3 and actual <= delivered_at + 1e-3
    older = [n for n, (_, d) in recorded.items() if d < now - 86400]
    assert older and all(abs((folder / n).stat().st_mtime - recorded[n][1]) < 1e-3 for n in older)


SMALL = {"health": {"visits_per_day": 120, "health_days": 5}, "social": {"payments_per_month": 40}}


def test_a_later_until_adds_files_and_rewrites_only_as_labelled_redeliveries(make_database, tmp_path):
    u1, u2 = dt.date(2025, 3, 1), dt.date(2025, 4, 9)
    one, steps = make_database(), make_database()
    a, b = tmp_path / "one", tmp_path / "steps"
    _generate(one, a, u1, **SMALL)
    _generate(steps, b, u1, **SMALL)
    before = _files(a)
    # the February workbook was cut off in transfer: not a readable workbook until it is re-sent
    feb = "social/social_payments_202502.xlsx"
    assert _rows(one, "SELECT sim_file_fault FROM sim.file_deliveries WHERE file_name = %s", (feb,)) == [("truncated_workbook",)]
    with pytest.raises(zipfile.BadZipFile):
        openpyxl.load_workbook(io.BytesIO(before[feb]))
    _generate(one, a, u2, **SMALL)
    _generate(steps, b, u1 + dt.timedelta(days=3), **SMALL)
    _generate(steps, b, u2, **SMALL)
    after = _files(a)
    assert after == _files(b) and _truth(one, tracker=False) == _truth(steps, tracker=False)
    assert set(before) < set(after)
    assert len([n for n in after if n.startswith("health/")]) == 6 * (5 + (u2 - u1).days)
    changed = {n for n in before if after[n] != before[n]}
    assert feb in changed and project06_tracker.FILE in changed
    labels = dict(_rows(one, """SELECT file_name, sim_file_fault FROM sim.file_deliveries WHERE delivery_no > 1
                                  AND delivered_at > %s""", (dt.datetime.combine(u1, dt.time(23, 59), social_payments.ICT),)))
    for name in changed:
        assert labels.get(name) in ("correction", "redelivery", "resent"), name
    openpyxl.load_workbook(a / feb).close()
    with pytest.raises(health_visits.GeneratorStateError):   # another volume would mix two datasets
        health_visits.generate(one, a, until=u2, visits_per_day=121, health_days=5)


def test_the_real_file_path_agrees_with_the_truth(delivered, warehouse_db):
    """The pipeline's own file batches on these deliveries: every file loads or fails as the truth
    says, each loading file quarantines the keys the truth labels, and the indicators equal the
    oracles (computed from the truth alone)."""
    from ioc_pipeline.views import refresh
    from tests.integration.test_refresh_civil_status import values
    from tests.integration.warehouse_helpers import migrated, run_file_deliveries

    dsn, folder = delivered
    conn = migrated(warehouse_db)
    for module in SOURCES:
        run_file_deliveries(conn, warehouse_db, module.SOURCE, AS_OF, folder, run_id="sim_files")
    truth = {n: (s, q) for n, s, q in _rows(dsn, """SELECT DISTINCT ON (file_name) file_name, expected_status, quarantined_keys
                                                    FROM sim.file_deliveries ORDER BY file_name, delivery_no DESC""")}
    with conn.cursor() as cur:
        cur.execute("""SELECT f.file_name, f.status, (SELECT count(DISTINCT business_key) FROM quarantine.rejected_row r
                                                        WHERE r.batch_id = f.batch_id)
                         FROM audit.file_delivery f""")
        ledger = {n: (s, q) for n, s, q in cur.fetchall()}
    conn.commit()
    assert {n: s for n, (s, _) in ledger.items()} == {n: "committed" if s == "loads" else "failed" for n, (s, _) in truth.items()}
    assert {n: q for n, (s, q) in ledger.items() if s == "committed"} == {n: q for n, (s, q) in truth.items() if s == "loads"}
    refresh.refresh(conn, AS_OF, "48")
    expected = {}
    for module in SOURCES:
        expected.update(module.expected_values(dsn, folder, AS_OF))
    actual = {k: (int(v["numerator"]), int(v["denominator"]) if v["denominator"] is not None else None)
              for k, v in values(conn).items() if k[0] in {e[0] for e in expected}}
    assert len(actual) == 2 * 95 + 5
    assert actual == {k: expected.get(k, (0, 0)) for k in actual}
