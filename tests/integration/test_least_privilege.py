"""Least privilege (operations.md, "Roles and migrations"): the migrations run as the owner, the
DAGs' login is a member of ioc_loader and can load, refresh, reconcile and report, but not change
the warehouse's structure, the reference data or the record of migrations; a migration changed
after it was applied stops the DAGs' check and the migrate step, naming the file."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from ioc_pipeline import warehouse
from ioc_pipeline.quality import data_docs
from ioc_pipeline.views import indicator_catalog, reconciliation, refresh
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import run_batch, run_file_deliveries

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 11, 20)


def _admin(dsn: str):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


@pytest.fixture
def loader_dsn(warehouse_db):
    """DSN of a new login IN ROLE ioc_loader (and nothing else) on the migrated warehouse_db.
    Roles are cluster-wide: a unique name per test, its objects and the role dropped after."""
    role = f"ioc_lp_{uuid.uuid4().hex[:10]}"
    with _admin(warehouse_db) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE ioc_loader")
                    .format(sql.Identifier(role)))
    params = psycopg2.extensions.parse_dsn(warehouse_db)
    yield psycopg2.extensions.make_dsn(**{**params, "user": role})
    conn = _admin(warehouse_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))   # its staging tables
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    finally:
        conn.close()


def test_the_loader_loads_and_refreshes_but_cannot_change_the_structure(loader_dsn, tmp_path):
    conn = warehouse.connect(loader_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False, False)
        conn.commit()
        warehouse.check_migrated(conn)   # what every DAG's first task runs

        # a REST batch: staging table, validation, a quarantined row, the publish to core
        items = [rec(f"G{i}", subject_cccd=f"048225{i:06d}") for i in range(60)]
        items.append(rec("BAD", registration_type="bogus"))
        plan, summary = run_batch(conn, loader_dsn, "civil_status", AS_OF, [items], run_id="as_loader")
        assert summary["rows_loaded"] == 60 and summary["rows_quarantined"] == 1
        # a file source's run: delivery records, a failed file's evidence
        path = tmp_path / "health" / "bhyt_visits_BV-01_20261115.csv"
        path.parent.mkdir(parents=True)
        path.write_text("visit_id,facility_code\nv1,48001\n", encoding="utf-8")   # columns missing: fails
        past = time.time() - 120
        os.utime(path, (past, past))
        assert run_file_deliveries(conn, loader_dsn, "health_visits", AS_OF, tmp_path)["files_failed"] == 1

        # the views refresh, the reconciliation, the data-quality report
        assert refresh.refresh(conn, AS_OF, "48")["rows"] > 0
        reconciliation.reconcile(conn, AS_OF, "48")
        assert data_docs.build(conn, tmp_path / "docs").is_file()

        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ioc.indicator_values WHERE indicator_code = 'CIVIL_BOOK_DIGITIZED_PCT'")
            assert cur.fetchone()[0] > 0
        conn.commit()

        refused = [
            "DROP TABLE core.civil_status",
            "ALTER VIEW ioc.indicator_values RENAME TO renamed",
            "ALTER TABLE core.civil_status ADD COLUMN extra text",
            "TRUNCATE core.civil_status",
            "CREATE TABLE core.extra (a int)",
            "CREATE VIEW ioc.extra AS SELECT 1 AS a",
            "DROP FUNCTION util.try_date(text)",
            "DELETE FROM audit.schema_migration",
            "INSERT INTO audit.schema_migration (version, checksum) VALUES ('999_forged.sql', 'x')",
            "UPDATE core.admin_unit SET name = 'x'",
            "UPDATE mart.indicator_catalog SET target_value = 0",
            "ALTER TABLE core.civil_status OWNER TO CURRENT_USER",
        ]
        allowed = []
        for statement in refused:
            try:
                with warehouse.transaction(conn) as cur:
                    cur.execute(statement)
                allowed.append(statement)
            except psycopg2.errors.InsufficientPrivilege:
                pass
        assert allowed == [], "the loader may do what only the owner should"
        with warehouse.transaction(conn) as cur:
            cur.execute("SELECT to_regclass('core.civil_status') IS NOT NULL, to_regclass('ioc.indicator_values')")
            assert cur.fetchone() == (True, "ioc.indicator_values")
    finally:
        conn.close()


def test_the_loader_cannot_migrate(loader_dsn, tmp_path, monkeypatch):
    """A new migration is the owner's job: as the loader it fails and nothing is recorded."""
    migrations = tmp_path / "migrations"
    shutil.copytree(warehouse.MIGRATIONS_DIR, migrations)
    (migrations / "099_new_table.sql").write_text("CREATE TABLE core.new_table (a int);\n")
    monkeypatch.setattr(warehouse, "MIGRATIONS_DIR", migrations)
    conn = warehouse.connect(loader_dsn)
    try:
        with pytest.raises(warehouse.MigrationError, match="099_new_table.sql not applied"):
            warehouse.check_migrated(conn)
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            warehouse.migrate(conn)
    finally:
        conn.close()


def _schema_migration(dsn: str) -> dict:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT version, checksum FROM audit.schema_migration")
        return dict(cur.fetchall())


def test_a_changed_applied_migration_stops_the_check_and_migrate_naming_the_file(warehouse_db, tmp_path, monkeypatch):
    include = tmp_path / "include"
    shutil.copytree(REPO / "include", include)
    migrations = include / "sql" / "migrations"
    changed = migrations / "012_core_land.sql"
    changed.write_text(changed.read_text() + "\nALTER TABLE core.land ADD COLUMN parcel_area numeric;\n")
    (migrations / "099_pending.sql").write_text("CREATE TABLE core.pending (a int);\n")
    monkeypatch.setattr(warehouse, "MIGRATIONS_DIR", migrations)
    before = _schema_migration(warehouse_db)

    conn = warehouse.connect(warehouse_db)
    try:
        with pytest.raises(warehouse.MigrationError) as check:
            warehouse.check_migrated(conn)
        assert "migration 012_core_land.sql changed after it was applied" in str(check.value)
        assert "new migration" in str(check.value)
        with pytest.raises(warehouse.MigrationError, match=r"migration 012_core_land\.sql changed after it was applied"):
            warehouse.migrate(conn)
    finally:
        conn.close()
    assert _schema_migration(warehouse_db) == before, "nothing applied: not even the pending 099"

    # the migrate step (make migrate, the compose service warehouse-migrate) exits 1 naming it
    p = psycopg2.extensions.parse_dsn(warehouse_db)
    owner = json.dumps({"conn_type": "postgres", "host": p["host"], "port": int(p.get("port") or 5432),
                        "login": p["user"], "schema": p["dbname"]})
    run = subprocess.run([sys.executable, "scripts/pipeline.py", "migrate"], cwd=REPO, capture_output=True,
                         text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "IOC_INCLUDE_DIR": str(include),
                              "IOC_DATA_DIR": str(tmp_path / "data"), "AIRFLOW_CONN_IOC_WAREHOUSE_OWNER": owner})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "migration 012_core_land.sql changed after it was applied" in run.stderr
    assert "Traceback" not in run.stderr
    assert _schema_migration(warehouse_db) == before


def test_the_check_names_what_is_missing(empty_db, warehouse_db, tmp_path, monkeypatch):
    conn = warehouse.connect(empty_db)
    try:
        with pytest.raises(warehouse.MigrationError, match="not migrated .*make migrate"):
            warehouse.check_migrated(conn)
    finally:
        conn.close()
    # the indicator catalog changed since the last migrate: the DAGs stop until it is applied
    catalog = tmp_path / "indicators.yaml"
    catalog.write_text(indicator_catalog.CATALOG_PATH.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    monkeypatch.setattr(indicator_catalog, "CATALOG_PATH", catalog)
    conn = warehouse.connect(warehouse_db)
    try:
        with pytest.raises(warehouse.MigrationError, match="indicator catalog"):
            warehouse.check_migrated(conn)
        assert warehouse.migrate(conn) == [indicator_catalog.version()]
        warehouse.check_migrated(conn)
    finally:
        conn.close()


def test_no_dag_task_migrates():
    """The DAGs only check: migrating is the owner's step (make migrate, warehouse-migrate)."""
    factory = (REPO / "plugins" / "ioc_pipeline" / "orchestration" / "dag_factory.py").read_text()
    assert "warehouse.migrate(" not in factory
    assert factory.count("warehouse.check_migrated(") == 3
