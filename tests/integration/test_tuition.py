"""tuition end to end in the warehouse (merge, indicator) on its contract fixture
(tests/contract/fixtures/tuition.jsonl: one quarantine reason per fault kind, duplicates, legacy
communes; checked row by row in tests/contract) with indicator values worked out by hand below:
the year window by the Asia/Ho_Chi_Minh calendar date of paid_at, legacy commune codes mapped
by the local payment date. Items are text, as the SQL extractor sends them (`::text` of bigint
and timestamptz under TimeZone Asia/Ho_Chi_Minh)."""
import datetime as dt
from decimal import Decimal

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.views import refresh
from tests.contract import cases
from tests.integration.test_refresh_civil_status import values
from tests.integration.warehouse_helpers import migrated, run_batch

pytestmark = pytest.mark.integration

AS_OF = dt.date(2026, 11, 20)
SOURCE = "tuition"


def pay(payment_id, **over):
    """A clean payment: bank transfer in commune 20194 on 2026-03-02."""
    base = {
        "payment_id": payment_id, "school_code": "48TH001", "commune_code": "20194",
        "student_ref": "48TH001-250042", "school_year": "2025-2026", "amount_vnd": "1500000",
        "channel": "bank_transfer", "paid_at": "2026-03-02 09:00:00+07",
        "updated_at": "2026-03-02 09:05:00+07",
    }
    base.update(over)
    return base


# Paid in 2025: in no indicator of 2026; keeps the quarantine share under 5 %.
FILLER = [pay(f"F{i}", school_year="2025-2026", paid_at="2025-10-01 09:00:00+07") for i in range(450)]


def load(conn, dsn):
    return run_batch(conn, dsn, SOURCE, AS_OF, [cases.items(SOURCE) + FILLER])


def test_noncash_indicator_by_hand(warehouse_db):
    conn = migrated(warehouse_db)
    load(conn, warehouse_db)
    refresh.refresh(conn, AS_OF, "48")
    v = values(conn)
    code = "TUITION_NONCASH_PCT"

    def got(unit):
        r = v[(code, unit)]
        return r["numerator"], r["denominator"], r["value"], r["status"], r["rank_in_province"]

    assert len([k for k in v if k[0] == code]) == 95          # province + 94 communes
    assert v[(code, "48")]["period_start"] == dt.date(2026, 1, 1)
    assert v[(code, "48")]["target_value"] == 100
    # 20350: L26 qr, S2 card -> 2/2 (L1, mapped here from legacy 20344, was paid in 2025)
    assert got("20350") == (2, 2, Decimal("100.00"), "met", 1)
    # 20194: T1, T3, T5, S1 non-cash; T2, T4 cash -> 4/6
    assert got("20194") == (4, 6, Decimal("66.67"), "below_target", 2)
    # 20197: E_in (03:00 local on Jan 1) card; E_last (23:59 on the as-of date), E_in2 cash;
    # E_out (23:59 on Dec 31) out -> 1/3
    assert got("20197") == (1, 3, Decimal("33.33"), "below_target", 3)
    assert got("20333")[:4] == (0, 0, None, "no_data")        # R1 paid in 2025
    # province from the records: (2 + 4 + 1) / (2 + 6 + 3) = 7/11 = 63.64
    assert got("48") == (7, 11, Decimal("63.64"), "below_target", None)


def test_later_version_replaces_older_and_quarantined_do_not(warehouse_db):
    conn = migrated(warehouse_db)
    run_batch(conn, warehouse_db, SOURCE, AS_OF - dt.timedelta(days=2),
              [[pay("U1", channel="cash", updated_at="2026-03-02 09:00:00+07")] + FILLER[:50]], run_id="r1")
    # a newer version (bank transfer), then a stale copy (cash), then a newer but invalid one
    run_batch(conn, warehouse_db, SOURCE, AS_OF - dt.timedelta(days=1),
              [[pay("U1", updated_at="2026-03-03 09:00:00+07")] + FILLER[:50]], run_id="r2")
    run_batch(conn, warehouse_db, SOURCE, AS_OF,
              [[pay("U1", channel="cash", updated_at="2026-03-02 12:00:00+07")] + FILLER[:50]], run_id="r3")
    run_batch(conn, warehouse_db, SOURCE, AS_OF + dt.timedelta(days=1),
              [[pay("U1", amount_vnd="-1", updated_at="2026-03-05 09:00:00+07")] + FILLER[:50]], run_id="r4")
    with conn.cursor() as cur:
        cur.execute("SELECT channel, amount_vnd, updated_at FROM core.tuition WHERE payment_id = 'U1'")
        channel, amount, updated = cur.fetchone()
        cur.execute("SELECT count(*) FROM quarantine.rejected_row WHERE business_key = 'U1'")
        rejected = cur.fetchone()[0]
    conn.commit()
    assert (channel, amount, rejected) == ("bank_transfer", 1500000, 1)
    assert updated == dt.datetime(2026, 3, 3, 2, 0, tzinfo=dt.UTC)


def test_catalog_entry():
    source = catalog.get(SOURCE)
    assert source.kind == "sql" and source.extra["table"] == "public.tuition_payments"
    assert not any(f.pii for f in source.fields)   # student_ref is the school's number, not personal


def test_all_new_keys_load_by_plain_insert_and_a_stored_key_by_the_guarded_upsert(warehouse_db, caplog):
    """A batch whose keys are all new is written without ON CONFLICT (merge.any_key_stored);
    as soon as one staged key is stored, the guarded upsert runs: same rows either way."""
    conn = migrated(warehouse_db)
    caplog.set_level("INFO", logger="ioc_pipeline.ingest.batch")

    def merge_lines():
        lines = [r.getMessage() for r in caplog.records if "merge into core.tuition" in r.getMessage() and "done in" in r.getMessage()]
        caplog.clear()
        return lines

    _, first = run_batch(conn, warehouse_db, SOURCE, AS_OF - dt.timedelta(days=1), [FILLER[:60]], run_id="r1")
    assert ["every key new: plain insert" in line for line in merge_lines()] == [True]
    # F0 again, older (must not win) and F1 newer (wins), plus new keys: the upsert
    _, second = run_batch(conn, warehouse_db, SOURCE, AS_OF, [[
        pay("F0", school_year="2025-2026", paid_at="2025-10-01 09:00:00+07", updated_at="2026-01-01 00:00:00+07",
            channel="cash"),
        pay("F1", school_year="2025-2026", paid_at="2025-10-01 09:00:00+07", updated_at="2026-12-01 00:00:00+07",
            channel="qr")] + [pay(f"N{i}") for i in range(60)]], run_id="r2")
    assert ["plain insert" in line for line in merge_lines()] == [False]
    with conn.cursor() as cur:
        cur.execute("SELECT payment_id, channel FROM core.tuition WHERE payment_id IN ('F0', 'F1') ORDER BY 1")
        assert cur.fetchall() == [("F0", "bank_transfer"), ("F1", "qr")]
        cur.execute("SELECT count(*) FROM core.tuition")
        assert cur.fetchone()[0] == 60 + 60
    conn.commit()
    assert first["rows_loaded"] == 60 and second["rows_loaded"] == 61   # F1 and the 60 new; F0 kept
