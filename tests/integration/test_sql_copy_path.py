"""SQL sources are staged database to database in COPY format (sql_source fetch.stage). The
staged rows must be exactly what the item path (rows.row_builder over the extractor's items)
stages for the same hostile values: cleaning, nulls, personal IDs hashed and masked, order.
The COPY path also stages the values the source's own typed columns hold (native columns):
dedupe's typed columns must be exactly what parsing the text gives, whatever the value."""
import datetime as dt
import json
import threading

import psycopg2
import pytest

from ioc_pipeline import warehouse
from ioc_pipeline.declaration import catalog
from ioc_pipeline.extract import fetchers
from ioc_pipeline.ingest import batch, row_workers, staging
from tests.integration.warehouse_helpers import KEY, PROVINCE, migrated

AS_OF = dt.date(2026, 11, 19)
HOSTILE = [
    # certificate_no, owner_cccd, parcel_id: tabs, newlines, backslashes, escapes' letters before a
    # combining mark, whitespace only (ASCII and Unicode), decomposed text, a spaced CCCD
    ("C1", " 048090001234 ", "P\t1\\n"),
    ("C2", "\u3000\u00a0", "a\nb\u0301"),
    ("C3", None, "\\t\u0301 x\r\n"),
    ("C4", "04809000123", "Cafe\u0301 \u1e9b\u0323"),
    ("C5", "", "   "),
    ("C6", "abc\\def", "\\N"),
    ("C7", "048190001234", "\u2000"),
    ("C8", "\u00a0048190001234", "\u3000P8"),   # text after leading Unicode whitespace
]


def _source_table(dsn: str) -> None:
    land = catalog.get("land")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE public.land_certificates (" + ", ".join(
            f"{f} {'timestamptz' if f == 'updated_at' else 'text'}" for f in land.field_names) + ", remarks text)")
        for n, (cert, cccd, parcel) in enumerate(HOSTILE):
            cur.execute("INSERT INTO public.land_certificates (certificate_no, owner_cccd, parcel_id, commune_code,"
                        " owner_kind, issued_on, digitized, cleaned, updated_at, remarks)"
                        " VALUES (%s, %s, %s, '20194', 'person', '2024-01-0' || %s, 'true', 'false',"
                        " '2026-11-01T00:00:00+07'::timestamptz + %s * interval '1 hour', 'x')",
                        (cert, cccd, parcel, n + 1, n))
    conn.close()


def _staged(dsn: str, table: str, columns: str = "*") -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {staging.SCHEMA}.{table} ORDER BY _row_id")
        out = cur.fetchall()
    conn.close()
    return out


def _source_conn(monkeypatch, source, dsn: str) -> None:
    p = psycopg2.extensions.parse_dsn(dsn)
    monkeypatch.setenv(f"AIRFLOW_CONN_{source.connection.upper()}", json.dumps(
        {"conn_type": "postgres", "host": p["host"], "port": int(p["port"]) if p.get("port") else None,
         "login": p.get("user", "postgres"), "password": p.get("password"), "schema": p["dbname"]}))


def test_copy_path_stages_what_the_item_path_stages(make_database, monkeypatch):
    warehouse_dsn, source_dsn = make_database(), make_database()
    _source_table(source_dsn)
    p = psycopg2.extensions.parse_dsn(source_dsn)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_LAND", json.dumps(
        {"conn_type": "postgres", "host": p["host"], "port": int(p["port"]) if p.get("port") else None,
         "login": p.get("user", "postgres"), "password": p.get("password"), "schema": p["dbname"]}))
    source = catalog.get("land")
    conn = migrated(warehouse_dsn)
    plan = batch.begin(conn, source, "copy-path", AS_OF, key=KEY, province_code=PROVINCE)
    fetch = fetchers.fetcher_for(source, plan.window)
    assert hasattr(fetch, "copy_to")

    stats = batch.extract(conn, source, plan, fetch, key=KEY)
    built = ", ".join(f'"{c}"' for c in staging.rows_mod.staging_columns(source))
    by_copy = _staged(warehouse_dsn, plan.staging_table, built)
    # updated_at is timestamptz in this table: staged natively too; issued_on is text: not
    natives = _staged(warehouse_dsn, plan.staging_table, "_updated_at_native, _issued_on_native")
    assert all(u is not None and d is None for u, d in natives)

    items, _ = fetch()
    n, checksum, _seen, extra = batch.stage_items(conn, source, plan, items, key=KEY)
    by_items = _staged(warehouse_dsn, plan.staging_table, built)

    # the item path of a large batch: chunks encoded by worker processes, in order
    monkeypatch.setattr(row_workers, "CHUNK_ROWS", 3)
    items, _ = fetch()
    n_workers, checksum_workers, _seen, _extra = batch.stage_items(conn, source, plan, items, key=KEY)
    by_workers = _staged(warehouse_dsn, plan.staging_table, built)
    conn.close()

    assert stats.rows_read == n == n_workers == len(HOSTILE)
    assert stats.distinct_keys is None   # no source total to check: dedupe counts them
    assert stats.extra_columns == sorted(extra) == ["remarks"]
    assert by_copy == by_items == by_workers
    assert checksum_workers == checksum
    cols = list(staging.rows_mod.staging_columns(source))
    first = dict(zip(cols, by_copy[0]))
    assert first["owner_cccd_mask"] == "048*********" and first["owner_cccd_well_formed"] is True
    assert "048090001234" not in repr(by_copy)


# Values of the source's typed columns around the ranges staged natively (staging.NATIVE_TYPES):
# before 1970 (Asia/Ho_Chi_Minh's offsets had seconds before 1906, +08 until 1975), BC, year
# 10000, infinities, leap days, microseconds. Each must come out of dedupe as parsing its text does.
EDGE_INSTANTS = ["-infinity", "0001-01-01 00:00:00+00", "0044-03-15 12:00:00+00 BC", "1900-01-01 00:00:00+07",
                 "1969-12-31 23:59:59.999999+00", "1970-01-01 00:00:00+00", "1975-06-13 00:00:00+08",
                 "2024-02-29 12:00:00+07", "2026-11-19 10:23:45.123456+07", "8999-12-31 23:59:59.999999+00",
                 "9000-01-01 00:00:00+00", "9999-12-31 23:59:59+00", "10000-01-01 00:00:00+00", "infinity", None]
EDGE_DATES = ["-infinity", "4713-01-01 BC", "0001-01-01", "1900-02-28", "2024-02-29", "9999-12-31",
              "10000-01-01", "infinity", None]


@pytest.mark.parametrize("code, field, values, in_range", [
    ("tuition", "paid_at", EDGE_INSTANTS, 5),    # 1970-01-01 .. 8999-12-31
    ("land", "issued_on", EDGE_DATES, 4),        # 0001-01-01 .. 9999-12-31
])
def test_natively_typed_values_come_out_of_dedupe_as_their_text_parses(make_database, monkeypatch, code, field,
                                                                       values, in_range):
    warehouse_dsn, source_dsn = make_database(), make_database()
    source = catalog.get(code)
    with psycopg2.connect(source_dsn) as c, c.cursor() as cur:
        if code == "tuition":
            cur.execute("CREATE TABLE public.tuition_payments (payment_id text, school_code text, commune_code text,"
                        " student_ref text, school_year text, amount_vnd bigint, channel text,"
                        " paid_at timestamptz, updated_at timestamptz)")
        else:
            cur.execute("CREATE TABLE public.land_certificates (certificate_no text, parcel_id text, commune_code text,"
                        " owner_cccd text, owner_kind text, issued_on date, digitized boolean, cleaned boolean,"
                        " updated_at timestamptz)")
        target = source.extra["table"]
        for n, value in enumerate(values):
            cur.execute(f"INSERT INTO {target} ({source.key[0]}, commune_code, {field}, updated_at)"
                        " VALUES (%s, '20194', %s, '2026-11-01T00:00:00+07'::timestamptz + %s * interval '1 hour')",
                        (f"K{n}", value, n))
        # two rows without a key, and K0 again, later: dedupe keeps len(values) + 2 rows
        cur.execute(f"INSERT INTO {target} ({source.key[0]}, commune_code, updated_at)"
                    " VALUES (NULL, '20194', '2026-11-02T00:00:00+07'), (NULL, '20194', '2026-11-02T00:00:00+07'),"
                    " ('K0', '20194', '2026-11-03T00:00:00+07')")
    c.close()
    _source_conn(monkeypatch, source, source_dsn)
    conn = migrated(warehouse_dsn)
    plan = batch.begin(conn, source, "natives", AS_OF, key=KEY, province_code=PROVINCE)
    batch.extract(conn, source, plan, fetchers.fetcher_for(source, plan.window), key=KEY)
    natives = _staged(warehouse_dsn, plan.staging_table, f"_{field}_native")
    counted = batch.count_keys(conn, source, plan)
    removed, distinct = batch.dedupe(conn, source, plan)
    parser = staging.PARSERS[next(f.type for f in source.fields if f.name == field)][1]
    compared = _staged(warehouse_dsn, plan.staging_table,
                       f"{field}, _{field}, {parser}({field}), _{field} IS NOT DISTINCT FROM {parser}({field})")
    conn.close()

    # the rows dedupe keeps are the distinct keys as count_keys counts them (a keyless row: one)
    assert (removed, distinct, counted) == (1, len(values) + 2, len(values) + 2)
    assert len(compared) == len(values) + 2
    assert [row for row in compared if not row[3]] == []
    # staged natively where the range allows it, and only there (the parser may accept more:
    # 1969-12-31 in +08); some values parse to nothing
    assert sum(v is not None for (v,) in natives) == in_range
    assert sum(row[1] is not None for row in compared) >= in_range
    assert any(row[1] is None and row[0] is not None for row in compared)


def test_source_read_failing_mid_copy_fails_the_extract_naming_the_table(make_database, monkeypatch):
    warehouse_dsn, source_dsn = make_database(), make_database()
    _source_table(source_dsn)
    with psycopg2.connect(source_dsn) as c, c.cursor() as cur:   # enough rows for several chunks
        cur.execute("INSERT INTO public.land_certificates SELECT 'X' || g, parcel_id, commune_code, owner_cccd,"
                    " owner_kind, issued_on, digitized, cleaned, updated_at, remarks"
                    " FROM public.land_certificates, generate_series(1, 3000) g")
    c.close()
    p = psycopg2.extensions.parse_dsn(source_dsn)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_LAND", json.dumps(
        {"conn_type": "postgres", "host": p["host"], "port": int(p["port"]) if p.get("port") else None,
         "login": p.get("user", "postgres"), "password": p.get("password"), "schema": p["dbname"]}))
    monkeypatch.setattr(staging, "_CHUNK_BYTES", 4096)
    transform = staging.copy_text_transform
    seen = {"chunks": 0}

    def dropping(source, key):
        inner = transform(source, key)

        def t(chunk):
            seen["chunks"] += 1
            if seen["chunks"] == 2:   # the source's operator drops the database under us (elsewhere:
                dropper.start()       # this thread keeps reading, as the staging COPY does)
            return inner(chunk)
        return t

    def drop_source():
        admin = psycopg2.connect(source_dsn.replace(f"dbname={p['dbname']}", "dbname=postgres"))
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE "{p["dbname"]}" WITH (FORCE)')
        admin.close()

    dropper = threading.Thread(target=drop_source)

    monkeypatch.setattr(staging, "copy_text_transform", dropping)
    from ioc_pipeline.extract import sql_source

    source = catalog.get("land")
    conn = migrated(warehouse_dsn)
    plan = batch.begin(conn, source, "copy-fail", AS_OF, key=KEY, province_code=PROVINCE)
    with pytest.raises(sql_source.SqlSourceError, match=r"land: reading public\.land_certificates failed after \d+ rows"):
        batch.extract(conn, source, plan, fetchers.fetcher_for(source, plan.window), key=KEY)
    dropper.join()
    with warehouse.transaction(conn) as cur:   # the warehouse connection is usable again
        cur.execute(f"SELECT count(*) FROM {staging.SCHEMA}.{plan.staging_table}")
        assert cur.fetchone()[0] == 0
    conn.close()
