"""Loading the admin-unit reference into a fresh warehouse and the SQL lookup functions."""
from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from ioc_pipeline.reference.admin_units import load_into_warehouse, load_reference

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[2] / "include" / "sql" / "migrations"

# Phường Hòa Hương, Tam Kỳ (Quảng Nam, legacy 49): merged into 2025 unit 20350; the code
# 20344 names no commune in the 2025 scheme.
QUANG_NAM_LEGACY = "20344"


@pytest.fixture
def warehouse(empty_db):
    conn = psycopg2.connect(empty_db)
    with conn, conn.cursor() as cur:
        for name in ("001", "002"):
            (sql_file,) = MIGRATIONS.glob(f"{name}_*.sql")
            cur.execute(sql_file.read_text(encoding="utf-8"))
    yield conn
    conn.close()


def _one(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def test_load_and_lookup(warehouse):
    ref = load_reference()
    with warehouse:
        counts = load_into_warehouse(warehouse)
    assert counts == {"admin_unit": 63 + 696 + 10035 + 34 + 3321,
                      "commune_map_legacy_2025": 9564 + 471}
    assert counts["admin_unit"] == len(ref.units)

    conn = warehouse
    assert _one(conn, "SELECT count(*) FROM core.admin_unit"
                      " WHERE scheme = '2025' AND level = 'commune' AND province_code = '48'") == 94
    assert _one(conn, "SELECT name FROM core.admin_unit"
                      " WHERE scheme = 'legacy' AND level = 'commune' AND code = '00004'") == "Phường Trúc Bạch"
    assert _one(conn, "SELECT district_code FROM core.admin_unit"
                      " WHERE scheme = 'legacy' AND level = 'commune' AND code = '00004'") == "001"
    assert _one(conn, "SELECT count(*) FROM core.commune_map_legacy_2025"
                      " WHERE rule = 'divided_default'") == 471

    # legacy Quảng Nam code: before July 2025 it maps, after it names nothing
    assert ref.province("legacy", "49").name == "Tỉnh Quảng Nam"
    assert _one(conn, "SELECT province_code FROM core.admin_unit WHERE scheme = 'legacy'"
                      " AND level = 'commune' AND code = %s", QUANG_NAM_LEGACY) == "49"
    assert _one(conn, "SELECT util.current_commune(%s, DATE '2024-05-01')", QUANG_NAM_LEGACY) == "20350"
    assert _one(conn, "SELECT util.current_commune(%s, DATE '2025-08-01')", QUANG_NAM_LEGACY) is None
    assert _one(conn, "SELECT util.commune_province(util.current_commune(%s, DATE '2024-05-01'))",
                QUANG_NAM_LEGACY) == "48"
    # same five digits, different units in the two schemes
    assert _one(conn, "SELECT util.current_commune('00004', DATE '2025-07-01')") == "00004"
    assert _one(conn, "SELECT util.current_commune('20296', DATE '2025-06-30')") == "20197"  # divided
    assert _one(conn, "SELECT util.current_commune('20296', DATE '2025-07-01')") is None
    assert _one(conn, "SELECT util.current_commune(NULL, DATE '2024-01-01')") is None
    assert _one(conn, "SELECT util.commune_province('20197')") == "48"  # Phường Liên Chiểu, Đà Nẵng
    assert _one(conn, "SELECT util.commune_province('00004')") == "01"
    assert _one(conn, "SELECT util.commune_province('99999')") is None


def test_reload_replaces_and_stays_in_callers_transaction(warehouse):
    with warehouse:
        first = load_into_warehouse(warehouse)
    with warehouse:  # second load replaces, does not append
        assert load_into_warehouse(warehouse) == first
    # not committed by the loader: the caller's rollback undoes it
    with warehouse.cursor() as cur:
        cur.execute("DELETE FROM core.commune_map_legacy_2025")
    load_into_warehouse(warehouse)
    warehouse.rollback()
    assert _one(warehouse, "SELECT count(*) FROM core.commune_map_legacy_2025") == first["commune_map_legacy_2025"]
    warehouse.rollback()
