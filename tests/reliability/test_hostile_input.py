"""Hostile input through the real extract paths: values planted in the simulator's REST store
(served over HTTP) and in the SQL sources' tables, and raw bytes from a REST server that speaks
the protocol but sends what JSON allows and UTF-8 does not.

Each value ends loaded as inert data (the same text stored) or quarantined, never executed: the
tables the SQL names still exist, and the batch does not crash on it.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest

from ioc_pipeline.extract.rest import SourceError
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import all_text_values, find_leaks, migrated
from tests.reliability.support import rows, run_source, scalar

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 20)
STAMP = "2026-11-20 12:00:00+07"
INJECT = "'); DROP TABLE core.{t}; --"
_RNG = random.Random(7)
BIG = "".join(_RNG.choice(string.ascii_letters + " ") for _ in range(100_000))  # 100 kB, incompressible
CONTROL = "A\x1b[31m\r\n\tB\x07"


def tables_intact(dsn) -> None:
    for rel in ("core.civil_status", "core.population", "core.land", "core.tuition",
                "quarantine.rejected_row", "audit.batch", "mart.indicator_history"):
        assert scalar(dsn, "SELECT to_regclass(%s) IS NOT NULL", (rel,)), rel


def quarantine(dsn, source) -> dict:
    return {k: (r, v) for k, r, v in rows(dsn, "SELECT business_key, reasons, failing_values FROM quarantine.rejected_row"
                                              " WHERE source_code = %s", (source,))}


def plant(sim_dsn, table, key, template_where, values: dict) -> None:
    """Insert a copy of one clean row of a simulator table with `values` changed."""
    with psycopg2.connect(sim_dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} WHERE {template_where} LIMIT 1")
        names = [d.name for d in cur.description]
        row = dict(zip(names, cur.fetchone()))
        row.update(values)
        cur.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                    [json.dumps(v) if isinstance(v, dict) else v for v in row.values()])
    conn.close()


# ----------------------------------------------------------------------------- REST, simulator


def test_rest_hostile_values_are_inert_or_quarantined(sim, warehouse_db):
    civil = "sim.civil_status_records"
    clean = "sim_fault IS NULL AND NOT sim_served_twice AND subject_cccd IS NOT NULL"
    loaded = {  # record_id -> stored as is
        "H_sql" + INJECT.format(t="civil_status"): {},
        "H_ctl" + CONTROL: {},
        "H_long_name": {"subject_full_name": BIG},
    }
    quarantined = {  # record_id -> values that must quarantine it
        "Q_sql_type": {"registration_type": "birth" + INJECT.format(t="civil_status")},
        "Q_long_type": {"registration_type": BIG},
        "Q_sql_commune": {"commune_code": "20194; DELETE FROM audit.batch"},
        "Q_ctl_sex": {"subject_sex": "M\r\n"},
    }
    for key, values in {**loaded, **quarantined}.items():
        plant(sim["dsn"], civil, "record_id", clean, {"record_id": key, "updated_at": STAMP, **values})
    # numbers as text where the contract says integer: one commune's snapshot of the day
    with psycopg2.connect(sim["dsn"]) as conn, conn.cursor() as cur:
        cur.execute("""UPDATE sim.population_snapshots SET sim_wire_override = %s
                        WHERE (snapshot_date, seq) = (SELECT snapshot_date, seq FROM sim.population_snapshots
                                                       WHERE snapshot_date = %s AND sim_fault IS NULL
                                                         AND NOT sim_served_twice ORDER BY seq LIMIT 1)
                    RETURNING commune_code""",
                    (json.dumps({"residents": "1e3", "residents_14_plus": " 12 ", "cccd_issued": "0x10",
                                 "vneid_level2_active": 1.5e2, "records_verified": "١٢"}), D))
        (text_commune,) = cur.fetchone()
    conn.close()

    conn = migrated(warehouse_db)
    run_source(conn, warehouse_db, "civil_status", D, "hostile")
    run_source(conn, warehouse_db, "population", D, "hostile")
    conn.close()
    tables_intact(warehouse_db)
    stored = dict(rows(warehouse_db, "SELECT record_id, subject_cccd_hash IS NOT NULL FROM core.civil_status"
                                 " WHERE record_id LIKE 'H%%'"))
    assert stored == {k: True for k in loaded}          # equal text, byte for byte
    q = quarantine(warehouse_db, "civil_status")
    assert set(quarantined) <= set(q)
    assert not set(loaded) & set(q)
    assert "registration_type" in json.dumps(q["Q_sql_type"][0])
    assert len(q["Q_long_type"][1]["registration_type"]) == 200     # shown cut, not 100 kB
    scan = psycopg2.connect(warehouse_db)
    assert BIG not in "".join(all_text_values(scan))   # a name is never stored, a long value only cut
    scan.close()
    pop = quarantine(warehouse_db, "population")
    key = f"{text_commune}|{D.isoformat()}"
    assert key in pop, pop.keys()
    assert {"residents", "residents_14_plus", "cccd_issued", "vneid_level2_active", "records_verified"} <= {
        r["column"] for r in pop[key][0]}
    assert rows(warehouse_db, "SELECT 1 FROM core.population WHERE commune_code = %s AND as_of = %s",
                (text_commune, D)) == []


# ----------------------------------------------------------------------------- SQL sources


def test_sql_hostile_values_and_numbers_as_text_are_inert_or_quarantined(sim, warehouse_db):
    clean_land = ("owner_kind = 'person' AND NOT EXISTS (SELECT 1 FROM sim.land_truth t"
                  " WHERE t.certificate_no = land_certificates.certificate_no)")
    planted_cccd = "048085001234' OR '1'='1"
    for no, values in {
        "L_sql" + INJECT.format(t="land"): {},
        "L_ctl" + CONTROL: {"parcel_id": "P" + CONTROL},
        "L_big": {"parcel_id": BIG},
        "Q_cccd": {"owner_cccd": planted_cccd},
    }.items():
        plant(sim["dsn"], "public.land_certificates", "certificate_no", clean_land,
              {"certificate_no": no, "updated_at": STAMP, **values})
    # the education department changed amount_vnd to text: numbers arrive as text
    with psycopg2.connect(sim["dsn"]) as c, c.cursor() as cur:
        cur.execute("ALTER TABLE public.tuition_payments ALTER COLUMN amount_vnd TYPE text")
    c.close()
    clean_tuition = ("NOT EXISTS (SELECT 1 FROM sim.tuition_truth t WHERE t.payment_id = tuition_payments.payment_id"
                     " AND (t.sim_fault IS NOT NULL OR t.sim_duplicate IS NOT NULL))")
    amounts = {"T_exp": "1e3", "T_space": " 12 ", "T_hex": "0x10", "T_digits": "١٢", "T_huge": "9" * 30,
               "T_sql": "1; DROP TABLE core.tuition"}
    for pid, amount in amounts.items():
        plant(sim["dsn"], "public.tuition_payments", "payment_id", clean_tuition,
              {"payment_id": pid, "amount_vnd": amount, "updated_at": STAMP})
    plant(sim["dsn"], "public.tuition_payments", "payment_id", clean_tuition,
          {"payment_id": "T_ok" + INJECT.format(t="tuition"), "amount_vnd": "150000",
           "student_ref": "S" + CONTROL, "updated_at": STAMP})

    conn = migrated(warehouse_db)
    run_source(conn, warehouse_db, "land", D, "hostile")
    run_source(conn, warehouse_db, "tuition", D, "hostile")
    conn.close()
    tables_intact(warehouse_db)
    land = dict(rows(warehouse_db, "SELECT certificate_no, parcel_id FROM core.land"
                               " WHERE certificate_no LIKE 'L%%'"))
    assert land["L_sql" + INJECT.format(t="land")] is not None
    assert land["L_ctl" + CONTROL] == "P" + CONTROL and land["L_big"] == BIG
    q = quarantine(warehouse_db, "land")
    assert "Q_cccd" in q and planted_cccd not in json.dumps(q["Q_cccd"])  # masked, never clear
    assert "048*****" in json.dumps(q["Q_cccd"][1])
    t = quarantine(warehouse_db, "tuition")
    assert set(amounts) <= set(t), sorted(set(amounts) - set(t))
    assert rows(warehouse_db, "SELECT amount_vnd, student_ref FROM core.tuition WHERE payment_id = %s",
                ("T_ok" + INJECT.format(t="tuition"),)) == [(150000, "S" + CONTROL)]
    assert find_leaks([json.dumps(q)], {"048085001234"}, set()) == []


# ----------------------------------------------------------------------------- REST, raw bytes


class RawSource:
    """A REST source answering every page request with one fixed body (bytes as given)."""

    def __init__(self, token: str):
        outer = self
        self.body = b""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                ok = self.headers.get("Authorization") == f"Bearer {token}"
                body = outer.body if ok else b'{"error": "unauthorized"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def page(self, items: list[dict], raw: dict[str, bytes] | None = None, total: int | None = None) -> None:
        """Serve `items` as page 1 of 1; each placeholder key of `raw` is replaced by raw bytes."""
        body = json.dumps({"items": items, "page": 1, "page_size": 1000,
                           "total_items": len(items) if total is None else total, "total_pages": 1}).encode()
        for placeholder, data in (raw or {}).items():
            body = body.replace(placeholder.encode(), data)
        self.body = body

    def close(self):
        self.server.shutdown()
        self.server.server_close()


FILLER = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(60)]
FAST = {"max_attempts": 2, "backoff_base": 0.0, "backoff_max": 0.0, "timeout": 5.0}


def test_nul_in_json_is_loaded_as_a_replacement_character(raw_source, warehouse_db):
    raw_source.page(FILLER + [rec("N\u0000X", registration_type="birth")])
    conn = migrated(warehouse_db)
    run_source(conn, warehouse_db, "civil_status", D, "nul", **FAST)
    conn.close()
    assert rows(warehouse_db, "SELECT record_id FROM core.civil_status WHERE record_id LIKE 'N%%'") == [("N\ufffdX",)]


def test_invalid_utf8_bytes_are_never_data(raw_source, warehouse_db):
    raw_source.page(FILLER + [rec("BADBYTES", registration_type="@@RAW@@")], raw={'"@@RAW@@"': b'"\xff\xfebirth"'})
    conn = migrated(warehouse_db)
    with pytest.raises(SourceError, match=r"gave up after 2 attempts: invalid page body: not valid JSON"):
        run_source(conn, warehouse_db, "civil_status", D, "bad-bytes", **FAST)
    conn.close()
    assert scalar(warehouse_db, "SELECT count(*) FROM core.civil_status") == 0
    (status, error), = rows(warehouse_db, "SELECT status, error FROM audit.batch")
    assert status == "failed" and "\n" not in error and "not valid JSON" in error


@pytest.mark.parametrize("raw", [b'"birth\\ud800"', b'"birth\xed\xa0\x80"'], ids=["escaped", "raw_bytes"])
def test_lone_surrogate_is_replaced_or_quarantined(raw_source, warehouse_db, raw):
    raw_source.page(FILLER + [rec("SURROGATE", registration_type="@@RAW@@")], raw={'"@@RAW@@"': raw})
    conn = migrated(warehouse_db)
    try:
        _, _, published = run_source(conn, warehouse_db, "civil_status", D, "surrogate", **FAST)
    finally:
        conn.close()
    assert published["rows_loaded"] == len(FILLER)
    assert "SURROGATE" in quarantine(warehouse_db, "civil_status")


def test_huge_business_key_is_quarantined_not_a_failed_batch(raw_source, warehouse_db):
    raw_source.page(FILLER + [rec(BIG.replace(" ", "x"))])
    conn = migrated(warehouse_db)
    try:
        _, _, published = run_source(conn, warehouse_db, "civil_status", D, "huge-key", **FAST)
    finally:
        conn.close()
    assert (published["rows_loaded"], published["rows_quarantined"]) == (len(FILLER), 1)


def test_rest_hostile_batch_leaves_no_clear_id(raw_source, warehouse_db):
    ids = [f"0482250{i:05d}" for i in range(5)]
    hostile = [rec(f"P{i}", subject_cccd=cid + suffix) for i, (cid, suffix) in
               enumerate(zip(ids, ["'; --", "\r\n", " OR 1=1", "\x1b", "0" * 1000]))]
    many = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(200)]
    raw_source.page(many + hostile)
    conn = migrated(warehouse_db)
    run_source(conn, warehouse_db, "civil_status", D, "pii", **FAST)
    assert find_leaks(all_text_values(conn), ids, set()) == []
    conn.close()
    # the ID with a trailing line break is the ID (stripped); the others are not 12 digits
    assert set(quarantine(warehouse_db, "civil_status")) == {"P0", "P2", "P3", "P4"}
