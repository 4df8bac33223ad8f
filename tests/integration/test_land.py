"""land end to end in the warehouse: its contract fixture (tests/contract/fixtures/land.jsonl,
items as the SQL extractor delivers them: every value ::text; one quarantine reason per fault
kind, checked row by row in tests/contract) with hand-computed indicators, and the real SQL
extractor against the simulator's table with its ground truth."""
import datetime as dt
import json
from decimal import Decimal

import psycopg2
import pytest

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline.views import refresh
from simulator import land as sim_land
from tests.contract import cases
from tests.integration.test_refresh_civil_status import values
from tests.integration.warehouse_helpers import PROVINCE, migrated, run_batch, session

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
SOURCE = "land"
ID_M85 = "048085001234"      # Quang Nam, male born 1985


def cert(no, **over):
    """A clean person certificate in 20194, digitized, not cleaned (text as from ::text)."""
    base = {"certificate_no": no, "parcel_id": f"20194-001-{no}", "commune_code": "20194",
            "owner_cccd": ID_M85, "owner_kind": "person", "issued_on": "2026-03-02",
            "digitized": "true", "cleaned": "false", "updated_at": "2026-03-02 10:00:00+07"}
    base.update(over)
    return base


def org(no, **over):
    return cert(no, **{"owner_kind": "organisation", "owner_cccd": None, **over})


# 300 organisations in 20197, one in three not digitized; they keep the quarantine share < 5 %
FILLER = [org(f"F{i}", commune_code="20197", digitized="false" if i % 3 == 0 else "true") for i in range(300)]
def load(conn, dsn):
    return run_batch(conn, dsn, SOURCE, AS_OF, [cases.items(SOURCE) + FILLER])


def test_indicators_by_hand(warehouse_db):
    conn = migrated(warehouse_db)
    load(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, PROVINCE)
    v = values(conn)

    def got(code, unit):
        r = v[(code, unit)]
        return r["numerator"], r["denominator"], r["value"]

    dig, cln = "LAND_CERT_DIGITIZED_PCT", "LAND_CERT_CLEANED_PCT"
    for code in (dig, cln):
        assert len([k for k in v if k[0] == code]) == 95          # province + 94 communes
    # 20194: P1, P3, O1 digitized; P2 (latest version), O2 not -> 3/5
    assert got(dig, "20194") == (3, 5, Decimal("60.00"))
    # persons only: P1 cleaned; P2, P3 not (O2's cleaned flag does not count) -> 1/3
    assert got(cln, "20194") == (1, 3, Decimal("33.33"))
    # 20197: E_last + 200 of 300 organisations digitized -> 201/301; persons: E_last cleaned -> 1/1
    assert got(dig, "20197") == (201, 301, Decimal("66.78"))
    assert got(cln, "20197") == (1, 1, Decimal("100.00"))
    assert got(dig, "20350") == (1, 1, Decimal("100.00"))      # L1 via legacy 20344
    assert got(cln, "20333") == (0, 1, Decimal("0.00"))        # R1
    # province: (3 + 201 + 1 + 0) / (5 + 301 + 1 + 1); persons (1 + 1 + 1 + 0) / (3 + 1 + 1 + 1)
    assert got(dig, PROVINCE) == (205, 308, Decimal("66.56"))
    assert got(cln, PROVINCE) == (3, 6, Decimal("50.00"))


def test_later_version_replaces_and_older_does_not(warehouse_db):
    conn = migrated(warehouse_db)
    run_batch(conn, warehouse_db, SOURCE, AS_OF - dt.timedelta(days=1),
              [[cert("U1", digitized="false", updated_at="2026-03-02 09:00:00+07")] + FILLER[:50]], run_id="r1")
    run_batch(conn, warehouse_db, SOURCE, AS_OF, [[cert("U1", updated_at="2026-03-04 10:00:00+07")]], run_id="r2")
    run_batch(conn, warehouse_db, SOURCE, AS_OF + dt.timedelta(days=1),
              [[cert("U1", digitized="false", updated_at="2026-03-03 09:00:00+07")]], run_id="r3")
    with conn.cursor() as cur:
        cur.execute("SELECT digitized FROM core.land WHERE certificate_no = 'U1'")
        assert cur.fetchone() == (True,)
    conn.commit()


def test_suite_rules_are_all_critical():
    """land's rows are certificates of ownership: every rule of its suite is critical."""
    suite = json.loads(catalog.get(SOURCE).suite_path.read_text(encoding="utf-8"))
    assert {e["severity"] for e in suite["expectations"]} == {"critical"}


# ----------------------------------------------------------------------------- real extractor

def expected_values(sim_dsn: str, as_of: dt.date) -> dict[tuple[str, str], tuple[int, int]]:
    """Oracle from the simulator's ground truth (used by the e2e test too), for a warehouse that
    loaded every window up to the simulator's last generated day: clean certificates, one per
    key, issued on or before as_of, legacy codes mapped by the reference data."""
    from collections import defaultdict

    from ioc_pipeline.reference.admin_units import load_reference

    ref = load_reference()
    counts: dict = defaultdict(lambda: [0, 0])
    with psycopg2.connect(sim_dsn) as sc, sc.cursor() as cur:
        cur.execute("""SELECT DISTINCT certificate_no, commune_code, owner_kind, issued_on, digitized, cleaned
                         FROM public.land_certificates l
                        WHERE issued_on <= %s AND NOT EXISTS (
                              SELECT 1 FROM sim.land_truth t WHERE t.certificate_no = l.certificate_no
                                 AND t.sim_fault <> 'exact_duplicate')""", (as_of,))
        for _, code, kind, issued_on, digitized, cleaned in cur:
            commune = code if issued_on >= sim_land.REFORM else ref.to_2025(code)
            for unit in (commune, PROVINCE):
                counts[("LAND_CERT_DIGITIZED_PCT", unit)][0] += digitized
                counts[("LAND_CERT_DIGITIZED_PCT", unit)][1] += 1
                if kind == "person":
                    counts[("LAND_CERT_CLEANED_PCT", unit)][0] += cleaned
                    counts[("LAND_CERT_CLEANED_PCT", unit)][1] += 1
    return {k: tuple(v) for k, v in counts.items()}


def _point_connection(monkeypatch, sim_dsn: str) -> None:
    p = psycopg2.extensions.parse_dsn(sim_dsn)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_LAND", json.dumps(
        {"conn_type": "postgres", "host": p["host"], "port": int(p["port"]) if p.get("port") else None,
         "login": p.get("user", "postgres"), "password": p.get("password"), "schema": p["dbname"]}))


def _run_from_source(conn, dsn, as_of, run_id):
    """(what was staged, what was published): both in the runner's one summary."""
    summary = runner.run_window(session(conn, dsn), catalog.get(SOURCE), run_id, as_of)[1]
    return summary, summary


def test_sql_extractor_against_the_simulator_gives_the_ground_truth(make_database, make_warehouse, monkeypatch):
    warehouse_dsn, sim_dsn = make_warehouse(), make_database()
    first = AS_OF - dt.timedelta(days=40)
    sim_land.generate(sim_dsn, until=first, certificates=1500, seed=6)
    _point_connection(monkeypatch, sim_dsn)
    conn = migrated(warehouse_dsn)
    stats1, pub1 = _run_from_source(conn, warehouse_dsn, first, "run-1")
    sim_land.generate(sim_dsn, until=AS_OF, certificates=1500, seed=6)   # 40 more days + backlog updates
    stats2, pub2 = _run_from_source(conn, warehouse_dsn, AS_OF, "run-2")
    assert stats1["extra_columns"] == [] and stats2["rows_read"] > 0
    with psycopg2.connect(sim_dsn) as sc, sc.cursor() as cur:
        cur.execute("SELECT count(DISTINCT certificate_no) FROM public.land_certificates")
        keys = cur.fetchone()[0]
        cur.execute("SELECT count(DISTINCT certificate_no) FROM sim.land_truth WHERE sim_fault <> 'exact_duplicate'")
        faulty = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM sim.land_truth WHERE sim_fault = 'exact_duplicate'")
        duplicated = cur.fetchone()[0]
        # clean certificates: one row each but for exact duplicates; their latest digitized flag
        cur.execute("SELECT count(*) - count(DISTINCT certificate_no),"
                    "       count(DISTINCT certificate_no) FILTER (WHERE digitized) FROM public.land_certificates l"
                    " WHERE NOT EXISTS (SELECT 1 FROM sim.land_truth t WHERE t.certificate_no = l.certificate_no"
                    "                   AND t.sim_fault <> 'exact_duplicate')")
        clean_dups, clean_digitized = cur.fetchone()
    assert faulty > 0 and duplicated > 0 and clean_dups > 0
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE digitized) FROM core.land")
        core_count, core_digitized = cur.fetchone()
        cur.execute("SELECT count(DISTINCT business_key) FROM quarantine.rejected_row WHERE source_code = 'land'")
        quarantined = cur.fetchone()[0]
    conn.commit()
    assert quarantined == faulty
    assert core_count == keys - faulty
    assert core_digitized == clean_digitized      # backlog updates of run 2 replaced the run-1 versions
    assert 0 < stats2["rows_read"] < stats1["rows_read"]    # run 2 reads only its window
    refresh.refresh(conn, AS_OF, PROVINCE)
    v = values(conn)
    assert v[("LAND_CERT_DIGITIZED_PCT", PROVINCE)]["denominator"] == core_count
    expected = expected_values(sim_dsn, AS_OF)
    actual = {k: (r["numerator"], r["denominator"]) for k, r in v.items() if k[0].startswith("LAND_")}
    assert len(actual) == 2 * 95
    assert actual == {k: expected.get(k, (0, 0)) for k in actual}


def test_missing_column_fails_the_batch_naming_it(make_database, make_warehouse, monkeypatch):
    warehouse_dsn, sim_dsn = make_warehouse(), make_database()
    sim_land.generate(sim_dsn, until=dt.date(2012, 3, 1), certificates=50, seed=6)
    with psycopg2.connect(sim_dsn) as sc, sc.cursor() as cur:
        cur.execute("ALTER TABLE public.land_certificates DROP COLUMN cleaned, ADD COLUMN remarks text")
    _point_connection(monkeypatch, sim_dsn)
    conn = migrated(warehouse_dsn)
    with pytest.raises(batch.BatchFailed, match=r"missing from the source table public\.land_certificates: cleaned"):
        _run_from_source(conn, warehouse_dsn, dt.date(2012, 3, 1), "run-x")


def test_extra_column_is_reported_as_drift(make_database, make_warehouse, monkeypatch):
    warehouse_dsn, sim_dsn = make_warehouse(), make_database()
    sim_land.generate(sim_dsn, until=dt.date(2012, 3, 1), certificates=50, seed=6)
    with psycopg2.connect(sim_dsn) as sc, sc.cursor() as cur:
        cur.execute("ALTER TABLE public.land_certificates ADD COLUMN remarks text")
    _point_connection(monkeypatch, sim_dsn)
    conn = migrated(warehouse_dsn)
    stats, published = _run_from_source(conn, warehouse_dsn, dt.date(2012, 3, 1), "run-y")
    assert stats["extra_columns"] == ["remarks"] and published["rows_loaded"] > 0
