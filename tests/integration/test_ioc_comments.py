"""Every ioc view and column carries a description in Vietnamese and English (BI tools show
them), and a later migration that re-creates a view does not lose them."""
from __future__ import annotations

import shutil

import psycopg2
import pytest

from ioc_pipeline import warehouse

pytestmark = pytest.mark.integration

UNDESCRIBED = """
SELECT c.relname, NULL AS column_name, obj_description(c.oid, 'pg_class') AS comment
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ioc' AND c.relkind IN ('v', 'm', 'r')
UNION ALL
SELECT c.relname, a.attname, col_description(c.oid, a.attnum)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = 'ioc' AND c.relkind IN ('v', 'm', 'r')
"""


def descriptions(dsn: str) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(UNDESCRIBED)
        return cur.fetchall()


def assert_all_described(dsn: str) -> None:
    rows = descriptions(dsn)
    assert len({r[0] for r in rows}) >= 6
    missing = [(r[0], r[1]) for r in rows if not r[2]]
    assert missing == [], f"ioc objects without COMMENT ON (add them to include/sql/ioc/comments.sql): {missing}"
    for view, column, comment in rows:
        vi, sep, en = comment.partition(" — ")
        assert sep and vi.strip() and en.strip(), (view, column, comment)   # "<Vietnamese> — <English>"


def test_every_ioc_view_and_column_is_described(empty_db):
    conn = warehouse.connect(empty_db)
    try:
        warehouse.migrate(conn)
    finally:
        conn.close()
    assert_all_described(empty_db)


def test_comments_come_back_after_a_migration_recreates_a_view(empty_db, tmp_path, monkeypatch):
    migrations = tmp_path / "migrations"
    shutil.copytree(warehouse.MIGRATIONS_DIR, migrations)
    monkeypatch.setattr(warehouse, "MIGRATIONS_DIR", migrations)
    conn = warehouse.connect(empty_db)
    try:
        warehouse.migrate(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_get_viewdef('ioc.source_freshness'::regclass)")
            definition = cur.fetchone()[0]
        conn.rollback()
        # a later migration drops and re-creates a view: PostgreSQL drops its comments with it
        (migrations / "099_recreate_source_freshness.sql").write_text(
            f"DROP VIEW ioc.source_freshness;\nCREATE VIEW ioc.source_freshness AS {definition}\n"
            "GRANT SELECT ON ioc.source_freshness TO ioc_reader;\n")
        assert warehouse.migrate(conn) == ["099_recreate_source_freshness.sql"]
        assert warehouse.migrate(conn) == []   # nothing pending: the comments are not rewritten
    finally:
        conn.close()
    assert_all_described(empty_db)
