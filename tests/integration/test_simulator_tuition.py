"""The tuition simulator table, read by the real SQL extractor: the pipeline sees exactly the
contract's columns, every row the simulator labelled faulty is quarantined with the reason of
its fault and no clean row is, and a corrected payment loads its latest version."""
import datetime as dt
import json
from collections import Counter

import psycopg2
import pytest

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline.views import refresh
from simulator import tuition
from simulator.store import GeneratorStateError
from tests.integration.test_refresh_civil_status import values
from tests.integration.warehouse_helpers import KEY, PROVINCE, migrated, session

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
PAYMENTS = 3000   # the default volume; with seed 6 it holds every fault kind
# fault label -> words of the quarantine reason the suite gives it
REASONS = {
    "enum_invalid": "channel is not one of",
    "amount_not_positive": "amount_vnd is not greater than 0",
    "school_year_invalid": "school_year is not YYYY-YYYY",
    "commune_unknown": "names no commune",
    "legacy_code_after_reform": "names no commune",
    "new_code_before_reform": "names no commune",
    "commune_outside_province": "outside the IOC's province",
    "paid_in_future": "later than the as-of date",
    "missing_required": "is missing",
}


def _rows(dsn, query):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def expected_values(sim_dsn: str, as_of: dt.date) -> dict[tuple[str, str], tuple[int, int]]:
    """Oracle from the simulator's ground truth (usable by the e2e test too), for a warehouse that
    loaded every window up to the simulator's last generated day: the latest row of each clean
    payment, paid from January 1 to as_of by the Asia/Ho_Chi_Minh date, legacy codes mapped by
    the reference data. {(indicator, unit): (numerator, denominator)}."""
    from collections import defaultdict

    from ioc_pipeline.reference.admin_units import load_reference

    ref = load_reference()
    counts: dict = defaultdict(lambda: [0, 0])
    rows = _rows(sim_dsn, """SELECT DISTINCT ON (p.payment_id) p.commune_code, p.channel,
                                    (p.paid_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
                               FROM public.tuition_payments p JOIN sim.tuition_truth t USING (payment_id)
                              WHERE t.sim_fault IS NULL ORDER BY p.payment_id, p.updated_at DESC""")
    for code, channel, paid_on in rows:
        if not dt.date(as_of.year, 1, 1) <= paid_on <= as_of:
            continue
        commune = code if paid_on >= tuition.REFORM else ref.to_2025(code)
        for unit in (commune, PROVINCE):
            counts[("TUITION_NONCASH_PCT", unit)][0] += channel != "cash"
            counts[("TUITION_NONCASH_PCT", unit)][1] += 1
    return {k: tuple(v) for k, v in counts.items()}


@pytest.fixture(scope="module")
def sim_db(pg_server):
    """A simulator database generated once for the module (dropped afterwards)."""
    import uuid

    name = f"ioc_test_simtu_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    dsn = " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name}.items())
    try:
        tuition.generate(dsn, until=AS_OF, payments=PAYMENTS)
        yield dsn
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_table_has_the_contract_columns_and_realistic_content(sim_db):
    cols = [r[0] for r in _rows(sim_db, "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                                        " 'public' AND table_name = 'tuition_payments' ORDER BY ordinal_position")]
    assert cols == catalog.get("tuition").field_names
    rows = _rows(sim_db, "SELECT channel, paid_at, updated_at FROM public.tuition_payments")
    assert 0.9 * PAYMENTS < len(rows) < 1.15 * PAYMENTS
    channels = Counter(c for c, _, _ in rows)
    noncash = sum(n for c, n in channels.items() if c in ("bank_transfer", "qr", "card", "e_wallet"))
    assert 0.84 < noncash / len(rows) < 0.96
    assert all(u is not None for _, _, u in rows)
    assert max(u for _, _, u in rows) < dt.datetime(2026, 11, 21, tzinfo=tuition.ICT)
    truth = dict(_rows(sim_db, "SELECT sim_fault, count(*) FROM sim.tuition_truth WHERE sim_fault IS NOT NULL GROUP BY 1"))
    assert 0.01 * PAYMENTS < sum(truth.values()) < 0.04 * PAYMENTS
    dup = dict(_rows(sim_db, "SELECT sim_duplicate, count(*) FROM sim.tuition_truth WHERE sim_duplicate IS NOT NULL GROUP BY 1"))
    assert dup.get("superseded", 0) > 0


def test_generation_in_steps_equals_one_go(make_database):
    """The daily rate comes from the first call; after that, extending day by day or in one go
    gives the same table and truth (each day is drawn from its own seeded RNG)."""
    one, steps = make_database(), make_database()
    for dsn in (one, steps):
        tuition.generate(dsn, until=dt.date(2024, 9, 3), payments=300)
    tuition.generate(one, until=dt.date(2024, 12, 31), payments=300)
    tuition.generate(steps, until=dt.date(2024, 10, 1), payments=300)
    tuition.generate(steps, until=dt.date(2024, 12, 31), payments=300)
    with pytest.raises(GeneratorStateError):   # another volume would mix two datasets
        tuition.generate(steps, until=dt.date(2025, 1, 31), payments=301)
    for q in ("SELECT * FROM public.tuition_payments ORDER BY payment_id, updated_at",
              "SELECT * FROM sim.tuition_truth ORDER BY 1"):
        assert _rows(steps, q) == _rows(one, q)
    assert len(_rows(one, "SELECT 1 FROM public.tuition_payments WHERE paid_at >= '2024-10-01'")) > 50


def test_real_sql_extractor_quarantines_exactly_the_labelled_faults(sim_db, warehouse_db, pg_server, monkeypatch):
    params = psycopg2.extensions.parse_dsn(sim_db)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_TUITION", json.dumps({
        "conn_type": "postgres", "host": params["host"], "port": int(params["port"]) if params.get("port") else None,
        "login": params.get("user", "postgres"), "password": params.get("password"), "schema": params["dbname"]}))
    conn = migrated(warehouse_db)
    source = catalog.get("tuition")
    summary = runner.run_window(session(conn, warehouse_db), source, "sim_run", AS_OF)[1]
    truth = dict(_rows(sim_db, "SELECT payment_id, sim_fault FROM sim.tuition_truth"))
    table_rows = _rows(sim_db, "SELECT count(*) FROM public.tuition_payments")[0][0]
    assert summary["rows_read"] == table_rows and summary["extra_columns"] == []
    assert summary["distinct_keys"] == len(truth)
    with conn.cursor() as cur:
        cur.execute("SELECT business_key, reasons FROM quarantine.rejected_row")
        rejected = dict(cur.fetchall())
        cur.execute("SELECT payment_id, amount_vnd FROM core.tuition")
        loaded = dict(cur.fetchall())
    conn.commit()
    faulty = {k: f for k, f in truth.items() if f}
    assert set(faulty.values()) == set(tuition.FAULT_WEIGHTS) == set(REASONS)   # every kind exercised
    assert set(rejected) == set(faulty)
    assert set(loaded) == set(truth) - set(faulty)
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (len(loaded), len(faulty))
    for key, fault in faulty.items():
        reasons = " | ".join(r["reason"] for r in rejected[key])
        assert REASONS[fault] in reasons, (key, fault, reasons)
    # a corrected payment: the row with the latest updated_at is the one loaded
    latest = dict(_rows(sim_db, """SELECT DISTINCT ON (p.payment_id) p.payment_id, p.amount_vnd
                                     FROM public.tuition_payments p JOIN sim.tuition_truth t USING (payment_id)
                                    WHERE t.sim_duplicate = 'superseded' ORDER BY p.payment_id, p.updated_at DESC"""))
    assert latest and all(loaded[k] == a for k, a in latest.items())
    # the indicator from the warehouse equals the oracle computed from the ground truth
    refresh.refresh(conn, AS_OF, PROVINCE)
    actual = {k: (int(v["numerator"]), int(v["denominator"] or 0))
              for k, v in values(conn).items() if k[0] == "TUITION_NONCASH_PCT"}
    expected = expected_values(sim_db, AS_OF)
    assert len(actual) == 95 and expected[("TUITION_NONCASH_PCT", PROVINCE)][1] > 300
    assert actual == {k: expected.get(k, (0, 0)) for k in actual}
    # a second run of the same day: empty window, loads nothing
    plan2 = batch.begin(conn, source, "sim_run_2", AS_OF, key=KEY, province_code=PROVINCE)
    try:
        assert plan2.empty_window
    finally:
        batch.cleanup(conn, plan2)
