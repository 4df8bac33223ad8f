"""Which statement writes a batch into a core table fastest: the choice behind the merge
envelope (ingest/merge.py), measured rather than guessed.

A typed staging table of N rows (tuition's shape: text key, a timestamp guard, a secondary
index on the core side) is written into a core table with the same primary key and index by
  on_conflict  INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE guard (the pipeline's)
  sorted       the same, the SELECT ordered by the key (index pages touched in order)
  merge        MERGE INTO core USING staging ON key WHEN MATCHED AND guard THEN UPDATE
               WHEN NOT MATCHED THEN INSERT (PostgreSQL 15+)
first into an empty core table (a first load), then again with every row already there and
newer (an update of every row). Each case runs in a fresh table, commit included.

    python bench/bench_core_write.py [--rows 1000000] [--server embedded|DSN]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

CORE = """CREATE TABLE bench_core (payment_id text PRIMARY KEY, school_code text NOT NULL, commune_code text NOT NULL,
             commune_code_2025 text NOT NULL, amount_vnd bigint NOT NULL, paid_at timestamptz NOT NULL,
             paid_on date NOT NULL, updated_at timestamptz NOT NULL, batch_id bigint NOT NULL);
          CREATE INDEX ON bench_core (paid_on, commune_code_2025)"""
STAGED = """CREATE UNLOGGED TABLE bench_staged AS
            SELECT g AS _row_id, 'PAY' || lpad(((g::bigint * 7919) %% %(n)s)::text, 9, '0') AS payment_id,
                   'SCH' || (g %% 500) AS school_code, '2' || lpad((g %% 3000)::text, 4, '0') AS commune_code,
                   '2' || lpad((g %% 3000)::text, 4, '0') AS _commune_code_2025, (100000 + g %% 900000)::bigint AS amount_vnd,
                   timestamptz '2025-01-01 00:00+07' + (g %% 600) * interval '1 day' AS _paid_at,
                   timestamptz '2026-01-01 00:00+07' + g * interval '1 second' + %(shift)s * interval '1 day' AS _updated_at
              FROM generate_series(1, %(n)s) g"""
COLS = "payment_id, school_code, commune_code, commune_code_2025, amount_vnd, paid_at, paid_on, updated_at, batch_id"
SELECT = ("SELECT payment_id, school_code, commune_code, _commune_code_2025, amount_vnd, _paid_at,"
          " (_paid_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, _updated_at, %(batch)s FROM bench_staged")
UPDATE_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLS.split(", ")[1:])
STATEMENTS = {
    "on_conflict": f"INSERT INTO bench_core AS c ({COLS}) {SELECT} ON CONFLICT (payment_id) DO UPDATE SET {UPDATE_SET}"
                   " WHERE c.updated_at <= EXCLUDED.updated_at",
    "sorted": f"INSERT INTO bench_core AS c ({COLS}) {SELECT} ORDER BY payment_id ON CONFLICT (payment_id) DO UPDATE"
              f" SET {UPDATE_SET} WHERE c.updated_at <= EXCLUDED.updated_at",
    "merge": "MERGE INTO bench_core c USING (" + SELECT.replace("SELECT payment_id, school_code, commune_code, _commune_code_2025, amount_vnd, _paid_at,",
                                                                  "SELECT payment_id, school_code, commune_code, _commune_code_2025 AS commune_code_2025, amount_vnd, _paid_at AS paid_at,")
             .replace("::date, _updated_at, %(batch)s", "::date AS paid_on, _updated_at AS updated_at, %(batch)s AS batch_id")
             + ") s ON c.payment_id = s.payment_id"
             " WHEN MATCHED AND c.updated_at <= s.updated_at THEN UPDATE SET "
             + ", ".join(f"{c} = s.{c}" for c in COLS.split(", ")[1:])
             + f" WHEN NOT MATCHED THEN INSERT ({COLS}) VALUES (" + ", ".join(f"s.{c}" for c in COLS.split(", ")) + ")",
}


def run(dsn: str, n: int, name: str, prefilled: bool) -> float:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_core, bench_staged")
            cur.execute(CORE)
            if prefilled:   # every key there already, older
                cur.execute(STAGED, {"n": n, "shift": 0})
                cur.execute(STATEMENTS["on_conflict"], {"batch": 1})
                cur.execute("DROP TABLE bench_staged")
            cur.execute(STAGED, {"n": n, "shift": 1 if prefilled else 0})
            cur.execute("ANALYZE bench_staged")
            cur.execute("ANALYZE bench_core")
        conn.commit()
        with conn.cursor() as cur:
            t = time.perf_counter()
            cur.execute(STATEMENTS[name], {"batch": 2})
            conn.commit()
            return time.perf_counter() - t
    finally:
        conn.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--server", default="")
    args = ap.parse_args(argv)
    params, label, started_here = benchlib.resolve_server(args.server)
    created: list[str] = []
    try:
        dsn = benchlib.create_database(params, "core_write", created)
        info = benchlib.machine(params, label)
        import os
        before = os.getloadavg()
        lines = []
        for prefilled in (False, True):
            for name in STATEMENTS:
                s = run(dsn, args.rows, name, prefilled)
                lines.append((name, "every key present, older" if prefilled else "empty core table", f"{args.rows:,}",
                              f"{s:.2f}", f"{args.rows / s:,.0f}"))
                print(*lines[-1], flush=True)
        print(benchlib.machine_line(info, before, os.getloadavg()))
        print(benchlib.format_table(("statement", "core table before", "rows", "s", "rows/s"), lines))
    finally:
        benchlib.drop_databases(params, created)
        benchlib.stop_embedded(started_here)
    return 0


if __name__ == "__main__":
    sys.exit(main())
