"""population (sources.md §2) against a real PostgreSQL: quarantine reasons for every fault kind,
re-delivered snapshots, the stock indicators with the fallback to a commune's latest earlier
snapshot (values worked out by hand below), and the real REST path from the simulator."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from decimal import ROUND_HALF_UP, Decimal

import psycopg2
import pytest

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline.views import refresh
from ioc_pipeline.reference.admin_units import load_reference
from simulator import population as sim_population
from simulator.server import make_server
from tests.integration.warehouse_helpers import PROVINCE, migrated, run_batch, session

pytestmark = pytest.mark.integration

D0 = dt.date(2026, 11, 19)
D = dt.date(2026, 11, 20)
A, B, C, E = "20194", "20197", "20350", "20200"   # Da Nang communes (2025 scheme)
DA_NANG = sorted(u.code for u in load_reference().communes("2025", PROVINCE))
INDICATORS = ("CCCD_ISSUED_PCT", "VNEID_L2_ACTIVE_PCT", "POPULATION_VERIFIED_PCT", "BHYT_VNEID_LINKED_PCT")


def snap(commune, as_of, residents, r14, cccd, vneid, verified, bhyt, linked) -> dict:
    return {"commune_code": commune, "as_of": as_of.isoformat() if isinstance(as_of, dt.date) else as_of,
            "residents": residents, "residents_14_plus": r14, "cccd_issued": cccd, "vneid_level2_active": vneid,
            "records_verified": verified, "bhyt_holders": bhyt, "bhyt_linked_vneid": linked}


def good(commune, as_of=D, **over) -> dict:
    return {**snap(commune, as_of, 1000, 800, 760, 500, 900, 920, 460), **over}


def rejected(conn) -> dict[str, list[str]]:
    """commune code (or the business key) -> reasons of its quarantined row."""
    with conn.cursor() as cur:
        cur.execute("SELECT business_key, reasons FROM quarantine.rejected_row")
        out = {k: sorted(r["reason"] for r in reasons) for k, reasons in cur.fetchall()}
    conn.commit()
    return out


def core_rows(conn) -> dict[tuple[str, dt.date], tuple]:
    with conn.cursor() as cur:
        cur.execute("SELECT commune_code, as_of, residents, residents_14_plus, cccd_issued, vneid_level2_active,"
                    " records_verified, bhyt_holders, bhyt_linked_vneid FROM core.population")
        out = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
    conn.commit()
    return out


# ----------------------------------------------------------------------------- quarantine

FAULTS = {
    # commune -> (faulty row, a phrase its quarantine reason must contain)
    DA_NANG[10]: (good(DA_NANG[10], residents_14_plus=1001), "residents_14_plus exceeds residents"),
    DA_NANG[11]: (good(DA_NANG[11], cccd_issued=801), "cccd_issued exceeds residents_14_plus"),
    DA_NANG[12]: (good(DA_NANG[12], vneid_level2_active=801), "vneid_level2_active exceeds residents_14_plus"),
    DA_NANG[13]: (good(DA_NANG[13], records_verified=1001), "records_verified exceeds residents"),
    DA_NANG[14]: (good(DA_NANG[14], bhyt_holders=1001), "bhyt_holders exceeds residents"),
    DA_NANG[15]: (good(DA_NANG[15], bhyt_linked_vneid=921), "bhyt_linked_vneid exceeds bhyt_holders"),
    DA_NANG[16]: (good(DA_NANG[16], cccd_issued=-5), "cccd_issued is negative"),
    "99999": (good("99999"), "names no commune of the 2025 scheme"),
    "00004": (good("00004"), "outside the IOC's province"),                 # a Hanoi ward
    DA_NANG[17]: (good(DA_NANG[17], residents=None), "residents is missing"),
    DA_NANG[18]: (good(DA_NANG[18], records_verified="900"), "records_verified is not a JSON integer"),
    DA_NANG[19]: (good(DA_NANG[19], bhyt_holders=920.0), "bhyt_holders is not a JSON integer"),
    DA_NANG[20]: (good(DA_NANG[20], residents=True), "residents is not a JSON integer"),
    DA_NANG[21]: (good(DA_NANG[21], as_of=D0), "not the date the snapshot was requested"),
    DA_NANG[22]: (good(DA_NANG[22], as_of=D + dt.timedelta(days=1)), "later than the as-of date"),
    DA_NANG[23]: (good(DA_NANG[23], as_of="20/11/2026"), "not a real YYYY-MM-DD date"),
    DA_NANG[24]: (good(DA_NANG[24], as_of=None), "as_of (part of the business key, the record date) is missing"),
}


def run_lenient(conn, dsn, items, as_of=D):
    """One batch with the catalog's population entry, its quarantine threshold lifted so that a
    single batch can show every fault kind (94 communes make at most 94 valid keys)."""
    source = dataclasses.replace(catalog.get("population"), quarantine_threshold=1.0)
    return runner.run_window(session(conn, dsn), source, "lenient", as_of, lambda: (iter(items), lambda: None))[1]


def test_every_fault_kind_is_quarantined_with_its_reason(warehouse_db):
    conn = migrated(warehouse_db)
    valid = [good(c) for c in DA_NANG[:10]]
    items = valid + [row for row, _ in FAULTS.values()]
    items += [dict(valid[0])]                                           # exact duplicate: counts once
    items += [good(DA_NANG[25], residents=5), good(DA_NANG[25])]        # same key twice: the later row wins
    summary = run_lenient(conn, warehouse_db, items)
    assert summary["rows_quarantined"] == len(FAULTS)
    assert summary["rows_loaded"] == 11
    reasons = rejected(conn)
    assert len(reasons) == len(FAULTS)
    for commune, (row, phrase) in FAULTS.items():
        key = next(k for k in reasons if k.startswith(f"{row['commune_code']}|"))
        assert any(phrase in r for r in reasons[key]), (commune, reasons[key])
    # a future as_of is both later than D and not the requested date
    assert len(reasons[f"{DA_NANG[22]}|2026-11-21"]) == 2
    # a negative count is judged by its own rule, not by the invariants it also breaks
    assert reasons[f"{DA_NANG[16]}|2026-11-20"] == ["cccd_issued is negative: every count must be >= 0"]
    stored = core_rows(conn)
    assert set(stored) == {(c, D) for c in DA_NANG[:10] + [DA_NANG[25]]}
    assert stored[(DA_NANG[25], D)] == (1000, 800, 760, 500, 900, 920, 460)


def test_quarantine_share_over_the_threshold_fails_the_snapshot(warehouse_db):
    conn = migrated(warehouse_db)
    items = [good(c) for c in DA_NANG[:89]] + [good(c, cccd_issued=-1) for c in DA_NANG[89:]]   # 5 of 94
    with pytest.raises(batch.BatchFailed, match="quarantine share 5.3% of 94 keys"):
        run_batch(conn, warehouse_db, "population", D, [items])
    assert core_rows(conn) == {}


def test_missing_column_fails_the_snapshot(warehouse_db):
    conn = migrated(warehouse_db)
    items = [{k: v for k, v in good(c).items() if k != "bhyt_linked_vneid"} for c in DA_NANG]
    with pytest.raises(batch.BatchFailed, match="missing from the delivery: bhyt_linked_vneid"):
        run_batch(conn, warehouse_db, "population", D, [items])


# ----------------------------------------------------------------------------- by hand

def load_fixture(conn, dsn):
    """D0: A, B, C. D: A (B did not report, C quarantined); then D delivered again with A corrected."""
    run_batch(conn, dsn, "population", D0, [[
        snap(A, D0, 1000, 800, 760, 500, 900, 920, 460),
        snap(B, D0, 2000, 1500, 1400, 1200, 1800, 1800, 1000),
        snap(C, D0, 500, 400, 390, 300, 450, 450, 450),
    ]], run_id="d0")
    c_bad = snap(C, D, 505, 404, 395, 500, 455, 455, 455)                # vneid 500 > 404 aged 14+
    filler = [good(c) for c in DA_NANG[30:70]]                           # keeps C's share under 5%
    run_batch(conn, dsn, "population", D, [[snap(A, D, 1010, 810, 780, 520, 910, 930, 470), c_bad] + filler],
              run_id="d")
    run_batch(conn, dsn, "population", D, [[snap(A, D, 1010, 810, 780, 540, 910, 930, 470), c_bad] + filler],
              run_id="d-again")


def values(conn, as_of):
    with conn.cursor() as cur:
        cur.execute("SELECT indicator_code, admin_code, admin_level, numerator, denominator, value, status,"
                    " rank_in_province, target_value, period_start FROM ioc.indicator_history"
                    " WHERE as_of_date = %s AND indicator_code = ANY(%s)", (as_of, list(INDICATORS)))
        cols = [d.name for d in cur.description]
        out = {(r[0], r[1]): dict(zip(cols, r)) for r in cur.fetchall()}
    conn.commit()
    return out


def test_redelivered_snapshot_replaces_the_earlier_one_key_by_key(warehouse_db):
    conn = migrated(warehouse_db)
    load_fixture(conn, warehouse_db)
    stored = core_rows(conn)
    assert stored[(A, D)] == (1010, 810, 780, 540, 910, 930, 470)      # the re-delivery won
    assert (B, D) not in stored and (C, D) not in stored               # not reported / quarantined
    assert stored[(C, D0)] == (500, 400, 390, 300, 450, 450, 450)
    with conn.cursor() as cur:
        cur.execute("SELECT batch_name, status, rows_loaded, rows_quarantined FROM audit.batch ORDER BY batch_id")
        assert cur.fetchall() == [("2026-11-19", "committed", 3, 0), ("2026-11-20", "committed", 41, 1),
                                  ("2026-11-20", "committed", 41, 1)]
    conn.commit()
    # a quarantined row never replaces a stored one
    run_batch(conn, warehouse_db, "population", D, [[snap(A, D, 1010, 1020, 780, 540, 910, 930, 470)]
                                                 + [good(c) for c in DA_NANG[30:70]]], run_id="d-bad")
    assert core_rows(conn)[(A, D)] == (1010, 810, 780, 540, 910, 930, 470)


def test_indicators_by_hand_with_fallback_to_the_latest_earlier_snapshot(warehouse_db):
    conn = migrated(warehouse_db)
    load_fixture(conn, warehouse_db)
    # only the fixture's three communes: the filler rows go, so the sums below stay small
    with conn.cursor() as cur:
        cur.execute("DELETE FROM core.population WHERE commune_code NOT IN (%s, %s, %s)", (A, B, C))
    conn.commit()
    refresh.refresh(conn, D, PROVINCE)
    v = values(conn, D)
    assert len(v) == 4 * 95                                               # province + 94 communes each
    h = lambda code, admin: (v[(code, admin)]["numerator"], v[(code, admin)]["denominator"],  # noqa: E731
                             v[(code, admin)]["value"])
    # A from D (re-delivered): 780/810 = 96.296 -> 96.30; 540/810 = 66.67; 910/1010 = 90.10; 470/930 = 50.54
    assert h("CCCD_ISSUED_PCT", A) == (780, 810, Decimal("96.30"))
    assert h("VNEID_L2_ACTIVE_PCT", A) == (540, 810, Decimal("66.67"))
    assert h("POPULATION_VERIFIED_PCT", A) == (910, 1010, Decimal("90.10"))
    assert h("BHYT_VNEID_LINKED_PCT", A) == (470, 930, Decimal("50.54"))
    # B did not report on D: its D0 snapshot counts. 1400/1500 = 93.33; 1200/1500 = 80.00 (target 80: met)
    assert h("CCCD_ISSUED_PCT", B) == (1400, 1500, Decimal("93.33"))
    assert h("VNEID_L2_ACTIVE_PCT", B) == (1200, 1500, Decimal("80.00"))
    assert v[("VNEID_L2_ACTIVE_PCT", B)]["status"] == "met"
    assert h("BHYT_VNEID_LINKED_PCT", B) == (1000, 1800, Decimal("55.56"))
    # C was quarantined on D: its D0 snapshot counts. 450/450 = 100.00 met; 300/400 = 75.00 below 80
    assert h("BHYT_VNEID_LINKED_PCT", C) == (450, 450, Decimal("100.00"))
    assert v[("BHYT_VNEID_LINKED_PCT", C)]["status"] == "met"
    assert (h("VNEID_L2_ACTIVE_PCT", C), v[("VNEID_L2_ACTIVE_PCT", C)]["status"]) == (
        (300, 400, Decimal("75.00")), "below_target")
    # ranks among communes with data: VNeID B 80.00, C 75.00, A 66.67
    assert [v[("VNEID_L2_ACTIVE_PCT", c)]["rank_in_province"] for c in (B, C, A)] == [1, 2, 3]
    # province = sums of the communes' latest snapshots, never an average of percentages
    assert h("CCCD_ISSUED_PCT", "48") == (2570, 2710, Decimal("94.83"))          # (780+1400+390)/(810+1500+400)
    assert h("VNEID_L2_ACTIVE_PCT", "48") == (2040, 2710, Decimal("75.28"))
    assert h("POPULATION_VERIFIED_PCT", "48") == (3160, 3510, Decimal("90.03"))  # (910+1800+450)/(1010+2000+500)
    assert h("BHYT_VNEID_LINKED_PCT", "48") == (1920, 3180, Decimal("60.38"))    # (470+1000+450)/(930+1800+450)
    p = v[("VNEID_L2_ACTIVE_PCT", "48")]
    assert (p["admin_level"], p["target_value"], p["period_start"], p["rank_in_province"]) == ("province", 80, None, None)
    nd = v[("CCCD_ISSUED_PCT", E)]
    assert (nd["numerator"], nd["denominator"], nd["value"], nd["status"]) == (0, 0, None, "no_data")

    # as of D0 only D0's snapshots count: A 760/800 = 95.00; province (760+1400+390)/(800+1500+400) = 94.44
    refresh.refresh(conn, D0, PROVINCE)
    old = values(conn, D0)
    assert (old[("CCCD_ISSUED_PCT", A)]["numerator"], old[("CCCD_ISSUED_PCT", A)]["value"]) == (760, Decimal("95.00"))
    assert old[("CCCD_ISSUED_PCT", "48")]["value"] == Decimal("94.44")
    # before any snapshot: no data anywhere
    refresh.refresh(conn, D0 - dt.timedelta(days=1), PROVINCE)
    assert {r["status"] for r in values(conn, D0 - dt.timedelta(days=1)).values()} == {"no_data"}


def test_catalog_rows_of_the_population_indicators(warehouse_db):
    conn = migrated(warehouse_db)
    with conn.cursor() as cur:
        cur.execute("SELECT indicator_code, unit, kind, levels, target_value, source_codes, sector"
                    " FROM ioc.indicator_catalog WHERE source_codes = 'population' ORDER BY 1")
        rows = cur.fetchall()
    conn.commit()
    assert rows == [(code, "percent", "stock", "province,commune", target, "population", "population")
                    for code, target in sorted([("BHYT_VNEID_LINKED_PCT", 100), ("CCCD_ISSUED_PCT", 100),
                                                ("POPULATION_VERIFIED_PCT", 100), ("VNEID_L2_ACTIVE_PCT", 80)])]


# ----------------------------------------------------------------------------- real REST path

def pct(num: int, den: int) -> Decimal | None:
    return (Decimal(100) * num / den).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if den else None


def run_from_source(conn, dsn, as_of, run_id):
    """A batch as the DAG runs it, with the real fetcher for the catalog entry."""
    return runner.run_window(session(conn, dsn), catalog.get("population"), run_id, as_of)[1]


def test_snapshots_from_the_simulator_give_the_ground_truth(make_database, make_warehouse, monkeypatch):
    warehouse_dsn, sim_dsn = make_warehouse(), make_database()
    sim_population.generate(sim_dsn, until=D, days=5, seed=6)
    server = make_server(sim_dsn, port=0, token="t0ken")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SECTOR_POPULATION", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": server.server_address[1], "schema": "http",
             "password": "t0ken"}))
        conn = migrated(warehouse_dsn)
        run_dates = (D - dt.timedelta(days=3), D)
        for day in run_dates:
            published = run_from_source(conn, warehouse_dsn, day, f"run-{day}")
        refresh.refresh(conn, D, PROVINCE)
    finally:
        server.shutdown()
        server.server_close()
    # oracle: per commune the latest clean row among the snapshots of the run dates
    with psycopg2.connect(sim_dsn) as sc, sc.cursor() as cur:
        cur.execute("SELECT DISTINCT ON (commune_code) commune_code, residents, residents_14_plus, cccd_issued,"
                    " vneid_level2_active, records_verified, bhyt_holders, bhyt_linked_vneid"
                    " FROM sim.population_snapshots WHERE sim_fault IS NULL AND snapshot_date = ANY(%s)"
                    " ORDER BY commune_code, snapshot_date DESC", (list(run_dates),))
        latest = {r[0]: r[1:] for r in cur.fetchall()}
        cur.execute("SELECT count(*) FILTER (WHERE sim_fault IS NOT NULL), count(*) FROM sim.population_snapshots"
                    " WHERE snapshot_date = %s", (D,))
        faulty, keys = cur.fetchone()
    assert (published["rows_quarantined"], published["rows_loaded"]) == (faulty, keys - faulty)
    assert published["distinct_keys"] == keys
    expected = {}
    parts = {"CCCD_ISSUED_PCT": (2, 1), "VNEID_L2_ACTIVE_PCT": (3, 1), "POPULATION_VERIFIED_PCT": (4, 0),
             "BHYT_VNEID_LINKED_PCT": (6, 5)}
    for code, (n, d) in parts.items():
        for commune in DA_NANG:
            row = latest.get(commune)
            expected[(code, commune)] = (row[n], row[d]) if row else (0, 0)
        expected[(code, PROVINCE)] = (sum(r[n] for r in latest.values()), sum(r[d] for r in latest.values()))
    actual = values(conn, D)
    assert len(actual) == len(expected) == 4 * 95
    for key, (num, den) in expected.items():
        got = actual[key]
        assert (got["numerator"], got["denominator"], got["value"]) == (num, den, pct(num, den)), key


# ----------------------------------------------------------------------------- the steps

def test_stage_keeps_what_arrived_and_check_dedupes_then_validates(warehouse_db):
    """The DAG's extract task (runner.stage) stages every row that arrived; its validate task
    (runner.check) keeps one version per key (while GX is imported) and then runs the suite."""
    conn = migrated(warehouse_db)
    ses, source = session(conn, warehouse_db), catalog.get("population")
    items = [good(c) for c in DA_NANG[:5]] + [good(DA_NANG[0], residents=1001)]   # a repeat of one key
    plan = runner.open_window(ses, source, "steps", D)
    try:
        assert runner.stage(ses, source, plan, lambda: (iter(items), lambda: None))["rows_read"] == 6
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM staging.{plan.staging_table}")
            assert cur.fetchone()[0] == 6
        conn.commit()
        checked = runner.check(ses, source, plan)
        assert (checked["removed"], checked["distinct_keys"], checked["quarantined"]) == (1, 5, 0)
        assert checked["evaluated"] > 0
    finally:
        runner.cleanup(ses, plan)


def test_a_failing_dedupe_fails_the_check_before_any_validation(warehouse_db):
    conn = migrated(warehouse_db)
    ses, source = session(conn, warehouse_db), catalog.get("population")
    plan = runner.open_window(ses, source, "steps", D)
    try:
        runner.stage(ses, source, plan, lambda: (iter([good(DA_NANG[0])]), lambda: None))
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE staging.{plan.staging_table}")
        conn.commit()
        with pytest.raises(psycopg2.errors.UndefinedTable):
            runner.check(ses, source, plan)
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM audit.validation_result WHERE batch_id = %s", (plan.batch_id,))
            assert cur.fetchone()[0] == 0
        conn.commit()
    finally:
        runner.cleanup(ses, plan)
