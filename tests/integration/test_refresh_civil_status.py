"""ioc views for the civil-status indicators, against values worked out by hand."""
import datetime as dt
from decimal import Decimal

import psycopg2
import pytest

from ioc_pipeline.views import refresh
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import migrated, run_batch

pytestmark = pytest.mark.integration
AS_OF = dt.date(2026, 11, 20)


def load_fixture(conn, dsn):
    items = [
        # 20194: 3 records, 2 digitized, 1 synced
        rec("A1", book_digitized=True, synced_to_ministry=True),
        rec("A2", book_digitized=False),
        rec("A3", book_digitized=True),
        # legacy Quang Nam 20344 (registered 2024) -> counts for 2025 commune 20350
        rec("L1", registered_on="2024-03-05", commune_code="20344", subject_cccd="049195000456",
            subject_birth_date="1995-01-01", subject_sex="F", book_digitized=False, synced_to_ministry=True),
    ]
    # 20197: 32 records, 1 digitized -> 1/32 = 3.125 -> 3.13 (half up)
    items += [rec(f"C{i}", commune_code="20197", subject_cccd=f"048225{i:06d}", book_digitized=(i == 0))
              for i in range(32)]
    run_batch(conn, dsn, "civil_status", AS_OF, [items])


def values(conn, as_of=None):
    with conn.cursor() as cur:
        if as_of:
            cur.execute("SELECT * FROM ioc.indicator_history WHERE as_of_date = %s", (as_of,))
        else:
            cur.execute("SELECT * FROM ioc.indicator_values")
        cols = [d.name for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    conn.commit()
    return {(r["indicator_code"], r["admin_code"]): r for r in rows}


def test_civil_status_indicators_by_hand(warehouse_db):
    conn = migrated(warehouse_db)
    load_fixture(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    assert len([k for k in v if k[0] == "CIVIL_BOOK_DIGITIZED_PCT"]) == 95   # province + 94 communes
    prov = v[("CIVIL_BOOK_DIGITIZED_PCT", "48")]
    assert prov["admin_level"] == "province" and prov["admin_name"] == "Thành phố Đà Nẵng"
    # province from the records: (2 + 0 + 1) / (3 + 1 + 32) = 3/36 = 8.333 -> 8.33
    assert (prov["numerator"], prov["denominator"], prov["value"]) == (3, 36, Decimal("8.33"))
    assert prov["status"] == "below_target" and prov["rank_in_province"] is None
    assert prov["period_start"] is None and prov["as_of_date"] == AS_OF
    assert prov["target_value"] == 100 and prov["source_fresh_at"] is not None
    c = v[("CIVIL_BOOK_DIGITIZED_PCT", "20194")]
    assert (c["numerator"], c["denominator"], c["value"], c["rank_in_province"]) == (2, 3, Decimal("66.67"), 1)
    c = v[("CIVIL_BOOK_DIGITIZED_PCT", "20197")]
    assert (c["numerator"], c["denominator"], c["value"], c["rank_in_province"]) == (1, 32, Decimal("3.13"), 2)
    c = v[("CIVIL_BOOK_DIGITIZED_PCT", "20350")]
    assert (c["numerator"], c["denominator"], c["value"], c["rank_in_province"]) == (0, 1, Decimal("0.00"), 3)
    nd = v[("CIVIL_BOOK_DIGITIZED_PCT", "20200")]
    assert (nd["numerator"], nd["denominator"], nd["value"], nd["status"], nd["rank_in_province"]) == (0, 0, None, "no_data", None)
    # synced: 20194 1/3 = 33.33; 20350 1/1 = 100.00 (met); province (1 + 1 + 0)/36 = 5.56
    assert v[("CIVIL_SYNCED_PCT", "20194")]["value"] == Decimal("33.33")
    assert (v[("CIVIL_SYNCED_PCT", "20350")]["value"], v[("CIVIL_SYNCED_PCT", "20350")]["status"]) == (Decimal("100.00"), "met")
    assert v[("CIVIL_SYNCED_PCT", "20350")]["rank_in_province"] == 1
    assert v[("CIVIL_SYNCED_PCT", "48")]["value"] == Decimal("5.56")


def test_refresh_of_an_older_date_counts_only_records_registered_by_then(warehouse_db):
    conn = migrated(warehouse_db)
    load_fixture(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    refresh.refresh(conn, dt.date(2024, 12, 31), "48")   # only L1 (2024-03-05) existed then
    old = values(conn, dt.date(2024, 12, 31))
    assert old[("CIVIL_BOOK_DIGITIZED_PCT", "48")]["denominator"] == 1
    # indicator_values keeps the greatest as-of date refreshed
    assert {r["as_of_date"] for r in values(conn).values()} == {AS_OF}
    # re-running a date replaces its rows
    refresh.refresh(conn, AS_OF, "48")
    with conn.cursor() as cur:
        cur.execute("SELECT as_of_date, count(*) FROM ioc.indicator_history"
                    " WHERE indicator_code LIKE 'CIVIL%' GROUP BY 1 ORDER BY 1")
        assert cur.fetchall() == [(dt.date(2024, 12, 31), 190), (AS_OF, 190)]
    conn.commit()


def test_ioc_reader_reads_ioc_and_nothing_else(warehouse_db):
    conn = migrated(warehouse_db)
    load_fixture(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET ROLE ioc_reader")
        for view in ("indicator_values", "indicator_history", "indicator_catalog", "source_freshness"):
            cur.execute(f"SELECT count(*) FROM ioc.{view}")
            assert cur.fetchone()[0] > 0, view
        cur.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables"
                    " WHERE table_schema IN ('core','staging','quarantine','audit','mart','util','public')")
        for (rel,) in cur.fetchall():
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"SELECT 1 FROM {rel} LIMIT 1")
        for ddl in ("CREATE TABLE ioc.x (a int)", "CREATE TABLE public.x (a int)", "CREATE VIEW ioc.y AS SELECT 1"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(ddl)
        cur.execute("RESET ROLE")


def test_readers_during_refresh_see_old_or_new_never_a_mix(warehouse_db):
    """Another connection reads ioc.indicator_values in a loop while refreshes run: every read
    succeeds, is never blocked for long, and shows one complete row set of one refresh."""
    import threading
    import time

    conn = migrated(warehouse_db)
    load_fixture(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    stop = threading.Event()
    seen: list = []
    errors: list = []

    def reader():
        rconn = psycopg2.connect(warehouse_db)
        rconn.autocommit = True
        try:
            with rconn.cursor() as cur:
                while not stop.is_set():
                    try:
                        cur.execute("SELECT count(*), count(DISTINCT refreshed_at), min(refreshed_at),"
                                    " sum(numerator) FROM ioc.indicator_values WHERE indicator_code LIKE 'CIVIL%'")
                        seen.append(cur.fetchone())
                    except Exception as exc:  # noqa: BLE001 - any error is a failure of the contract
                        errors.append(repr(exc))
        finally:
            rconn.close()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    refreshed_at = set()
    for _ in range(8):
        refresh.refresh(conn, AS_OF, "48")
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert len(seen) > 20
    # every read: the full row set (2 indicators x 95 units) of exactly one refresh, same totals
    # numerators: digitized 3 (province) + 3 (communes), synced 2 + 2
    assert {(n, distinct, total) for n, distinct, _, total in seen} == {(190, 1, 10)}
    refreshed_at = {r[2] for r in seen}
    assert len(refreshed_at) > 1   # readers saw several refreshes go by
    print(f"readers during refresh: {len(seen)} reads, {len(errors)} errors, {len(refreshed_at)} row sets seen")
