"""Helpers for integration tests that drive the core against a real warehouse database."""
from __future__ import annotations

import datetime as dt

import psycopg2

from ioc_pipeline.ingest import batch, runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline import config, warehouse

KEY = b"test-pii-key-0123456789abcdef"
PROVINCE = "48"


def migrated(dsn: str):
    conn = warehouse.connect(dsn)
    warehouse.migrate(conn)
    return conn


def sqlalchemy_url(dsn: str) -> str:
    p = psycopg2.extensions.parse_dsn(dsn)
    return config.PgParams(host=p["host"], port=int(p["port"]) if p.get("port") else None, dbname=p["dbname"],
                           user=p.get("user", "postgres"), password=p.get("password")).sqlalchemy_url()


def pipeline_env(dsn: str, data_dir, **extra) -> dict:
    """Environment for a `scripts/pipeline.py` subprocess on the test database (JSON connection)."""
    import json
    import os

    p = psycopg2.extensions.parse_dsn(dsn)
    return {**os.environ, "IOC_DATA_DIR": str(data_dir), **extra,
            "AIRFLOW_CONN_IOC_WAREHOUSE": json.dumps({"conn_type": "postgres", "host": p["host"],
                                                       "port": int(p.get("port") or 5432), "login": p["user"],
                                                       "schema": p["dbname"]})}


def session(conn, dsn: str, *, key: bytes = KEY) -> runner.Session:
    """The runner's session on a test database."""
    return runner.Session(conn, key=key, province_code=PROVINCE, sqlalchemy_url=sqlalchemy_url(dsn))


def run_batch(conn, dsn: str, code: str, as_of: dt.date, items_per_extraction, *, run_id: str = "test_run",
              total=None, key: bytes = KEY, source=None):
    """Drive one batch through the runner's sequence (what the DAG's tasks run step by step).

    items_per_extraction: a list of item lists, one per extraction attempt (the REST
    re-extraction rule); `total` the source's own distinct-key count (None: not given);
    `source` a catalog entry to use instead of the catalog's own (a lifted threshold).
    Returns (plan, summary) or raises BatchFailed after recording the failure.
    """
    attempts = iter(items_per_extraction)

    def fetch():
        return iter(next(attempts)), (lambda: total)

    return runner.run_window(session(conn, dsn, key=key), source or catalog.get(code), run_id, as_of, fetch)


# Public reference data: place names such as "Phường Bùi Hữu Nghĩa" are also people's names.
PUBLIC_REFERENCE_TABLES = {("core", "admin_unit")}


def all_text_values(conn) -> list[str]:
    """Every text/json value of every table in every schema of the warehouse (PII scans),
    except the public administrative-unit reference."""
    with conn.cursor() as cur:
        cur.execute("""SELECT table_schema, table_name, column_name FROM information_schema.columns
                        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
                          AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')
                          AND table_name IN (SELECT table_name FROM information_schema.tables
                                              WHERE table_type = 'BASE TABLE')""")
        cols = cur.fetchall()
        values = []
        for schema, table, column in cols:
            if (schema, table) in PUBLIC_REFERENCE_TABLES:
                continue
            cur.execute(f'SELECT "{column}"::text FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL')
            values.extend(r[0] for r in cur.fetchall())
    conn.commit()
    return values


def find_leaks(texts, ids, names) -> list[str]:
    """Clear personal values found in `texts`, in time linear in the text size.

    IDs: every run of 9+ letters and digits in the texts (citizen IDs, insurance card numbers)
    is cut into all windows of each ID length, and the windows are intersected with the clear IDs. Names: every sequence of 2-6 consecutive
    words is intersected with the clear names (NFC, case-sensitive, as stored).
    """
    import re
    import unicodedata

    ids = {i for i in ids if i}
    names = {unicodedata.normalize("NFC", n) for n in names if n and " " in n.strip()}
    lengths = {len(i) for i in ids}
    windows: set[str] = set()
    grams: set[str] = set()
    for text in texts:
        for run in re.findall(r"[A-Za-z0-9]{9,}", text):
            for n in lengths:
                windows.update(run[k:k + n] for k in range(len(run) - n + 1))
        words = unicodedata.normalize("NFC", text).split()
        for n in range(2, 7):
            grams.update(" ".join(words[k:k + n]) for k in range(len(words) - n + 1))
    return sorted((ids & windows) | (names & grams))


def run_file_deliveries(conn, dsn: str, code: str, as_of: dt.date, root, *, run_id: str = "test_run",
                        key: bytes = KEY, settle_seconds: float = 0) -> dict:
    """Drive a file source's run like its DAG does: open the run, take the pending deliveries of
    the landing folder `root` for `as_of`, load each as its own batch, close the run.
    Returns file_batches.load_all's result (files, files_committed, files_failed, failures, ...)."""
    from pathlib import Path

    from ioc_pipeline.ingest import file_batches

    source = catalog.get(code)
    run_key = batch.open_run(conn, source, run_id, as_of, key=key)
    todo = file_batches.pending(conn, source, Path(root), as_of, settle_seconds=settle_seconds)
    return file_batches.load_all(conn, source, run_key, as_of, Path(root), todo, key=key, province_code=PROVINCE,
                                 sqlalchemy_url=sqlalchemy_url(dsn))
