"""The real DAGs, end to end: `make run`'s launcher runs `airflow dags test` for every ingest DAG
and refresh_ioc_views against the bundled simulator (with 503 and 429 faults switched on), and
the IOC views must equal what the contract implies for the simulator's data. The expected
values are computed here from the simulator's own ground truth (which records it made faulty),
not by the pipeline's code.

The runs are the session's `pipeline_run` (tests/fixtures/pipeline_run.py): each test checks one
of its steps (d1, d2, d2_again, wrong_token) on the copies of the warehouse, the simulator store
and the landing folder taken right after that step."""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import psycopg2
import psycopg2.extras
import pytest

from ioc_pipeline.reference.admin_units import load_reference
from simulator import health_visits as sim_health
from simulator import project06_tracker as sim_tracker
from simulator import social_payments as sim_social
from simulator import public_services as sim_public_services
from tests.fixtures.pipeline_run import D1, D2
from tests.integration.test_land import expected_values as land_expected
from tests.integration.test_simulator_tuition import expected_values as tuition_expected
from tests.integration.test_simulator_public_services import expected_values as public_services_expected
from tests.integration.warehouse_helpers import all_text_values, find_leaks

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

FILE_GENERATORS = {"health_visits": sim_health, "social_payments": sim_social, "project06_tracker": sim_tracker}


def expected_file_failures(sim_dsn: str, as_of: dt.date) -> dict[str, set[str]]:
    """Per file source, the files a run for as_of must fail (simulator truth): every file on the
    landing folder (its latest delivery) named on or before as_of that the contract fails; a
    failed file is tried again at every run, a loaded one never."""
    with psycopg2.connect(sim_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT source, file_name FROM (
                           SELECT DISTINCT ON (file_name) source, file_name, named_date, expected_status
                             FROM sim.file_deliveries ORDER BY file_name, delivery_no DESC) latest
                        WHERE expected_status = 'fails' AND (named_date IS NULL OR named_date <= %s)""", (as_of,))
        rows = cur.fetchall()
    out = {code: set() for code in FILE_GENERATORS}
    for source, name in rows:
        out[source].add(name)
    return out


def actual_file_failures(warehouse_dsn: str) -> dict[str, set[str]]:
    """Per file source, the files whose batch failed in the source's latest run."""
    with psycopg2.connect(warehouse_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT r.source_code, b.batch_name FROM audit.batch b
                         JOIN (SELECT DISTINCT ON (source_code) run_key, source_code FROM audit.source_run
                                ORDER BY source_code, started_at DESC) r USING (run_key)
                        WHERE b.status = 'failed'""")
        rows = cur.fetchall()
    out = {code: set() for code in FILE_GENERATORS}
    for source, name in rows:
        if source in out:
            out[source].add(name)
    return out


def check_run_outcome(step, run, as_of: dt.date) -> None:
    """Every REST/SQL DAG and the refresh succeed; a file DAG fails exactly when, and naming the
    files that, the simulator's truth says the contract fails; `make run` exits 1 then."""
    expected = expected_file_failures(step.sim, as_of)
    assert actual_file_failures(step.warehouse) == expected, run.stdout
    lines = {line.split()[0]: line for line in run.stdout.splitlines() if line.startswith(("ingest_", "refresh_"))}
    for dag_id, line in lines.items():
        code = dag_id.removeprefix("ingest_")
        should_fail = bool(expected.get(code))
        assert line.startswith(f"{dag_id} failed" if should_fail else f"{dag_id} success"), run.stdout
        if should_fail:   # `<dag_id> failed, N reasons (…s):` then each failed file on a line of its own
            n = len(expected[code])
            assert (f"failed, {n} reasons" if n > 1 else f"{dag_id} failed") in line, line
            for name in expected[code]:
                assert any(name in reason for reason in run.stdout.splitlines()), (name, run.stdout)
    assert run.returncode == (1 if any(expected.values()) else 0), run.stdout + run.stderr


def check_files(step, as_of: dt.date) -> None:
    """File-source views from the simulator's ground truth (the generators' own oracles)."""
    actual = actual_values(step.warehouse)
    codes = {"BHYT_CHIP_ID_VISITS_PCT": sim_health, "SOCIAL_NONCASH_PCT": sim_social}
    for indicator, generator in codes.items():
        expected = generator.expected_values(step.sim, step.landing, as_of)
        rows = {k: v for k, v in actual.items() if k[0] == indicator}
        assert len(rows) == 95
        for key, (num, den, value, as_of_date) in rows.items():
            e_num, e_den = expected.get(key, (0, 0))
            assert (num, den, value, as_of_date) == (e_num, e_den, pct(e_num, e_den), as_of), key
    for key, (e_num, e_den) in sim_tracker.expected_values(step.sim, step.landing, as_of).items():
        num, den, value, as_of_date = actual[key]
        expected_value = pct(e_num, e_den) if e_den is not None else e_num
        assert (num, den, value, as_of_date) == (e_num, e_den, expected_value, as_of), key


def expected_values(sim_dsn: str, as_of: dt.date, data_until: dt.date) -> dict[tuple[str, str], tuple[int, int]]:
    """Oracle from the simulator's ground truth: clean records, changed before D+1 00:00 +07:00,
    registered on or before D, legacy codes mapped by the reference data."""
    ref = load_reference()
    cut = dt.datetime.combine(data_until + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=7)))
    counts: dict = defaultdict(lambda: [0, 0, 0])
    with psycopg2.connect(sim_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT registered_on, commune_code, book_digitized, synced_to_ministry
                         FROM sim.civil_status_records
                        WHERE sim_fault IS NULL AND updated_at < %s AND registered_on <= %s""", (cut, as_of))
        for registered_on, code, digitized, synced in cur:
            commune = code if registered_on >= dt.date(2025, 7, 1) else ref.to_2025(code)
            for key in (commune, "48"):
                c = counts[key]
                c[0] += bool(digitized)
                c[1] += bool(synced)
                c[2] += 1
    out = {}
    for code, (digitized, synced, total) in counts.items():
        out[("CIVIL_BOOK_DIGITIZED_PCT", code)] = (digitized, total)
        out[("CIVIL_SYNCED_PCT", code)] = (synced, total)
    return out


def window_share(sim_dsn: str, start: dt.date, end: dt.date) -> float:
    """Quarantine share the contract implies for the window of the run for `end` after `start`."""
    tz = dt.timezone(dt.timedelta(hours=7))
    lo = dt.datetime.combine(start + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    with psycopg2.connect(sim_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FILTER (WHERE sim_fault IS NOT NULL), count(*) FROM sim.civil_status_records
                        WHERE updated_at >= %s AND updated_at < %s""", (lo, hi))
        bad, total = cur.fetchone()
    return bad / total if total else 0.0


def pct(num: int, den: int) -> Decimal | None:
    return (Decimal(100) * num / den).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if den else None


def actual_values(warehouse_dsn: str) -> dict:
    with psycopg2.connect(warehouse_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT indicator_code, admin_code, numerator, denominator, value, as_of_date FROM ioc.indicator_values")
        return {(r[0], r[1]): r[2:] for r in cur.fetchall()}


def check_views(step, as_of: dt.date, data_until: dt.date | None = None) -> None:
    """Views for `as_of`, computed from the source data committed up to `data_until`'s window."""
    expected = expected_values(step.sim, as_of, data_until or as_of)
    actual = {k: v for k, v in actual_values(step.warehouse).items() if k[0].startswith("CIVIL_")}
    assert len(actual) == 2 * 95
    for key, (num, den, value, as_of_date) in actual.items():
        e_num, e_den = expected.get(key, (0, 0))
        assert (num, den, value, as_of_date) == (e_num, e_den, pct(e_num, e_den), as_of), key


POPULATION_PARTS = {"CCCD_ISSUED_PCT": ("cccd_issued", "residents_14_plus"),
                    "VNEID_L2_ACTIVE_PCT": ("vneid_level2_active", "residents_14_plus"),
                    "POPULATION_VERIFIED_PCT": ("records_verified", "residents"),
                    "BHYT_VNEID_LINKED_PCT": ("bhyt_linked_vneid", "bhyt_holders")}


def check_population(step, as_of: dt.date, run_dates: list[dt.date]) -> None:
    """Population views from the simulator's ground truth: per commune the latest clean row among
    the snapshots the runs asked for (as_of = each run date), province = sums of those."""
    communes = [u.code for u in load_reference().communes("2025", "48")]
    with psycopg2.connect(step.sim) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("""SELECT DISTINCT ON (commune_code) * FROM sim.population_snapshots
                        WHERE sim_fault IS NULL AND snapshot_date = ANY(%s) AND snapshot_date <= %s
                        ORDER BY commune_code, snapshot_date DESC""", (run_dates, as_of))
        latest = {r["commune_code"]: r for r in cur.fetchall()}
    actual = {k: v for k, v in actual_values(step.warehouse).items() if k[0] in POPULATION_PARTS}
    assert len(actual) == 4 * 95
    for code, (num_field, den_field) in POPULATION_PARTS.items():
        expected = {c: (latest[c][num_field], latest[c][den_field]) if c in latest else (0, 0) for c in communes}
        expected["48"] = (sum(r[num_field] for r in latest.values()), sum(r[den_field] for r in latest.values()))
        for admin, (num, den) in expected.items():
            assert actual[(code, admin)] == (num, den, pct(num, den), as_of), (code, admin)


def ps_window_share(sim_dsn: str, start: dt.date, end: dt.date) -> float:
    """Quarantine share the contract implies for the public_services window (start, end]."""
    with psycopg2.connect(sim_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FILTER (WHERE sim_fault IS NOT NULL), count(*)
                         FROM sim.public_services_dossiers WHERE updated_at >= %s AND updated_at < %s""",
                    (sim_public_services.cutoff(start), sim_public_services.cutoff(end)))
        bad, total = cur.fetchone()
    return bad / total if total else 0.0


def check_public_services(step, as_of: dt.date, data_until: dt.date | None = None) -> None:
    """Public-service views from the simulator's ground truth (oracle of the integration test)."""
    expected = public_services_expected(step.sim, as_of, data_until or as_of)
    actual = {k: v for k, v in actual_values(step.warehouse).items() if k[0].startswith("PUBLIC_SERVICE_")}
    assert len(actual) == 3 * 95
    for key, (num, den, value, as_of_date) in actual.items():
        e_num, e_den = expected.get(key, (0, 0))
        assert (num, den, value, as_of_date) == (e_num, e_den, pct(e_num, e_den), as_of), key


def check_tuition(step, as_of: dt.date) -> None:
    """Tuition views from the simulator's ground truth (oracle of tests/integration/test_simulator_tuition.py)."""
    expected = tuition_expected(step.sim, as_of)
    actual = {k: v for k, v in actual_values(step.warehouse).items() if k[0] == "TUITION_NONCASH_PCT"}
    assert len(actual) == 95
    for key, (num, den, value, as_of_date) in actual.items():
        e_num, e_den = expected.get(key, (0, 0))
        assert (num, den, value, as_of_date) == (e_num, e_den, pct(e_num, e_den), as_of), key


def check_land(step, as_of: dt.date) -> None:
    """Land views from the simulator's ground truth (oracle of tests/integration/test_land.py)."""
    expected = land_expected(step.sim, as_of)
    actual = {k: v for k, v in actual_values(step.warehouse).items() if k[0].startswith("LAND_")}
    assert len(actual) == 2 * 95
    for key, (num, den, value, as_of_date) in actual.items():
        e_num, e_den = expected.get(key, (0, 0))
        assert (num, den, value, as_of_date) == (e_num, e_den, pct(e_num, e_den), as_of), key


def test_first_night_views_equal_the_simulators_truth(pipeline_run):
    step = pipeline_run.step("d1")
    run1 = step.run
    check_run_outcome(step, run1, D1)
    assert "ingest_civil_status success" in run1.stdout and "refresh_ioc_views success" in run1.stdout
    check_files(step, D1)
    check_views(step, D1)
    check_population(step, D1, [D1])
    check_public_services(step, D1)
    check_land(step, D1)
    check_tuition(step, D1)


def loaded_d2_window(step) -> bool:
    """A small nightly window may exceed the 5% quarantine threshold: then the batch fails and
    the views for D2 count the last good data (the D1 window), as operations.md says."""
    return window_share(step.sim, D1, D2) <= 0.05


def test_next_night_reads_only_the_new_window(pipeline_run):
    # next day: the source changed, the run reads only the new window
    step = pipeline_run.step("d2")
    run2 = step.run
    assert ps_window_share(step.sim, D1, D2) <= 0.05, "choose PS_DOSSIERS/seed so the D2 window loads"
    if not loaded_d2_window(step):
        assert run2.returncode == 1 and "quarantine share" in run2.stdout, run2.stdout
        check_views(step, D2, data_until=D1)
        check_population(step, D2, [D1, D2])
        check_public_services(step, D2)
        pytest.skip("the D2 window exceeded the quarantine threshold; incremental load not exercised")
    check_run_outcome(step, run2, D2)
    check_files(step, D2)
    check_views(step, D2)
    check_population(step, D2, [D1, D2])
    check_public_services(step, D2)
    check_land(step, D2)
    check_tuition(step, D2)
    with psycopg2.connect(step.warehouse) as conn, conn.cursor() as cur:
        cur.execute("SELECT window_start, window_end, rows_read FROM audit.batch WHERE status = 'committed'"
                    " AND source_code = 'civil_status' ORDER BY batch_id")
        (s1, e1, n1), (s2, e2, n2) = cur.fetchall()
    assert s1 is None and s2 == e1 and n2 < n1 / 10


def test_rerun_of_the_same_night_changes_nothing(pipeline_run):
    # re-running D2 changes nothing in the views and reads nothing
    step = pipeline_run.step("d2_again")
    if not loaded_d2_window(step):
        pytest.skip("the D2 window exceeded the quarantine threshold; incremental load not exercised")
    before = actual_values(pipeline_run.step("d2").warehouse)
    run3 = step.run
    check_run_outcome(step, run3, D2)
    assert actual_values(step.warehouse) == before


def test_no_clear_id_or_name_in_the_warehouse_or_the_run_logs(pipeline_run):
    # no clear citizen ID or name from the source anywhere in the warehouse or the run logs
    step = pipeline_run.step("d2_again")
    if not loaded_d2_window(step):
        pytest.skip("the D2 window exceeded the quarantine threshold; incremental load not exercised")
    with psycopg2.connect(step.sim) as conn, conn.cursor() as cur:
        cur.execute("SELECT subject_cccd, subject_full_name FROM sim.civil_status_records")
        rows = cur.fetchall()
    ids, names = {r[0] for r in rows if r[0]}, {r[1] for r in rows if r[1]}
    with psycopg2.connect(step.sim) as conn, conn.cursor() as cur:   # the file sources' IDs and card numbers
        cur.execute("""SELECT patient_cccd FROM sim.health_visits_truth UNION SELECT bhyt_card_no FROM sim.health_visits_truth
                       UNION SELECT beneficiary_cccd FROM sim.social_payments_truth""")
        file_ids = {r[0].strip() for r in cur.fetchall() if r[0] and len(r[0].strip()) >= 9}
    assert len(file_ids) > 1000
    ids |= file_ids
    conn = psycopg2.connect(step.warehouse)
    try:
        stored = all_text_values(conn)
    finally:
        conn.close()
    logs = [p.read_text(errors="replace") for p in pipeline_run.logs.rglob("*.log")]
    assert logs, "the run logs are where the launcher says"
    assert find_leaks(stored + logs, ids, names) == []
    # the scan itself finds a planted leak
    assert find_leaks(["x" + next(iter(ids)) + "y", "ông " + next(iter(names))], ids, names)


def test_wrong_token_fails_the_dag_with_one_clear_line_and_keeps_views(pipeline_run):
    check_run_outcome(pipeline_run.step("d1"), pipeline_run.step("d1").run, D1)
    before = actual_values(pipeline_run.step("d1").warehouse)   # the refused run starts from d1's warehouse
    step = pipeline_run.step("wrong_token")
    run = step.run
    assert run.returncode == 1
    line = next(l for l in run.stdout.splitlines() if l.startswith("ingest_civil_status"))
    assert line.startswith("ingest_civil_status failed") and "refused" in line and "wrong" not in line
    assert "refresh_ioc_views success" in run.stdout       # last known good is refreshed anyway
    after = actual_values(step.warehouse)
    # civil_status keeps its last good values, refreshed for D2 (other sources loaded D2's window);
    # its indicators are stocks, so D1's committed data gives D1's numbers as of D2
    civil = lambda values: {k: v[:3] for k, v in values.items() if k[0].startswith("CIVIL_")}  # noqa: E731
    assert civil(after) == civil(before) and civil(after)
    assert {v[3] for k, v in after.items() if k[0].startswith("CIVIL_")} == {D2}
    with psycopg2.connect(step.warehouse) as c, c.cursor() as cur:
        cur.execute("SELECT last_status, last_error FROM ioc.source_freshness WHERE source_code = 'civil_status'")
        status, error = cur.fetchone()
    assert status == "failed" and "refused" in error
    # the failed batch called the webhook exactly once, naming source, run and reason, no secret
    civil = [c for c in step.alerts if c.get("source") == "civil_status" and c["event"] == "task_failed"]
    assert len(civil) == 1, step.alerts
    call = civil[0]
    assert call["source"] == "civil_status" and call["dag_id"] == "ingest_civil_status"
    assert call["run_id"] and "refused" in call["reason"] and call["text"].startswith("ingest_civil_status run ")
    assert "wrong" not in json.dumps(call)
