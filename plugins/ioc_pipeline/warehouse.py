"""The warehouse: connections, SQL files and idempotent migrations.

Migrations are the numbered files of include/sql/migrations, applied once each, in order,
under an advisory lock (parallel DAG runs may start together), and recorded in
audit.schema_migration. The administrative-unit reference data is loaded in the same pass
and recorded under its package version, so it is read at migration time, never at run time;
so is the indicator catalog (include/indicators.yaml), recorded under its checksum.

Migrations run as the warehouse's owner, in a step of their own (`make migrate`, the compose
service warehouse-migrate, before any DAG runs); the DAGs log in as a member of ioc_loader and
only check (check_migrated) that everything is applied and unchanged. A migration file changed
after it was applied stops both, naming the file: restore it, or put the change in a new file.
"""
from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions

from ioc_pipeline import config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = config.SQL_DIR / "migrations"
IOC_COMMENTS = config.SQL_DIR / "ioc" / "comments.sql"   # descriptions of the ioc views (not a migration)
_MIGRATION_LOCK = 0x10C_06  # pg_advisory_xact_lock key: one migrator at a time
_MIGRATION_FILE = re.compile(r"(\d{3})_[a-z0-9_]+\.sql")
MIGRATE_HINT = ("run `make migrate` (docker compose: the warehouse-migrate service) with the owner's login, "
                "then the DAG again")


class MigrationError(config.ConfigError):
    """The warehouse does not match include/sql/migrations (or the reference data, the indicator
    catalog): a migration is missing, or a file changed after it was applied. Retrying cannot fix it."""


def connect(dsn: str | None = None, *, application_name: str = "ioc_pipeline"):
    """A psycopg2 connection to the warehouse (`ioc_warehouse` unless a DSN is given)."""
    dsn = dsn or config.postgres_params(config.WAREHOUSE_CONN_ID).dsn()
    conn = psycopg2.connect(dsn, application_name=application_name)
    with conn.cursor() as cur:
        # Explicit zones in SQL decide local dates; a fixed session zone keeps output stable.
        cur.execute("SET TIME ZONE 'UTC'")
    conn.commit()
    return conn


@contextmanager
def transaction(conn) -> Iterator[psycopg2.extensions.cursor]:
    """Cursor in a transaction that commits on success and rolls back on any error."""
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def read_sql(relative: str) -> str:
    """Text of include/sql/<relative>."""
    return (config.SQL_DIR / relative).read_text(encoding="utf-8")


def migration_files() -> list[Path]:
    files = sorted(p for p in MIGRATIONS_DIR.glob("*.sql"))
    for p in files:
        if not _MIGRATION_FILE.fullmatch(p.name):
            raise RuntimeError(f"migration file name {p.name!r} is not NNN_lower_snake.sql")
    return files


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()


def _changed(path: Path, recorded: str, checksum: str) -> str:
    return (f"migration {path.name} changed after it was applied (checksum {recorded[:12]} applied, "
            f"{checksum[:12]} in the file): restore the applied file (git log -p -- include/sql/migrations/{path.name}) and put "
            f"the change in a new migration")


def _expected() -> list[tuple[str, str, str]]:
    """(version, checksum, what) of everything migrate records, in the order it applies them."""
    from ioc_pipeline.reference import admin_units
    from ioc_pipeline.views import indicator_catalog

    ref = "reference:" + admin_units.REFERENCE_VERSION
    indicators = indicator_catalog.version()
    return ([(p.name, _checksum(p), f"migration {p.name}") for p in migration_files()]
            + [(ref, ref, f"the administrative units of {admin_units.REFERENCE_VERSION}"),
               (indicators, indicators, "the indicator catalog as include/indicators.yaml is now"),
               ("ioc/comments.sql", _checksum(IOC_COMMENTS), "the descriptions of the ioc views (ioc/comments.sql)")])


def check_migrated(conn) -> None:
    """Raise MigrationError unless every migration, the reference data, the indicator catalog
    and the ioc views' descriptions are applied, each as its file is now (what the DAGs run first:
    they never migrate, their login may not). Reads audit.schema_migration only."""
    with transaction(conn) as cur:
        cur.execute("SELECT to_regclass('audit.schema_migration') IS NOT NULL")
        if not cur.fetchone()[0]:
            raise MigrationError(f"the warehouse is not migrated (no audit.schema_migration): {MIGRATE_HINT}")
        cur.execute("SELECT version, checksum FROM audit.schema_migration")
        done = dict(cur.fetchall())
    for path in migration_files():
        if path.name in done and done[path.name] != (checksum := _checksum(path)):
            raise MigrationError(_changed(path, done[path.name], checksum))
    missing = [what for version, checksum, what in _expected() if done.get(version) != checksum]
    if missing:
        raise MigrationError(f"the warehouse is not migrated: {'; '.join(missing)} not applied: {MIGRATE_HINT}")


def migrate(conn) -> list[str]:
    """Apply pending migrations and reference data; return what was applied. MigrationError,
    and nothing applied, when a migration changed after it was applied."""
    log.info("warehouse: checking migrations (the first run also loads the administrative units)")
    from ioc_pipeline.reference import admin_units  # the reference loader pulls in its package data only here
    from ioc_pipeline.views import indicator_catalog

    applied: list[str] = []
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        cur.execute(
            """CREATE SCHEMA IF NOT EXISTS audit;
               CREATE TABLE IF NOT EXISTS audit.schema_migration (
                   version    text PRIMARY KEY,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
        )
        cur.execute("SELECT version, checksum FROM audit.schema_migration")
        done = dict(cur.fetchall())
        files = migration_files()
        for path in files:
            if path.name in done and done[path.name] != (checksum := _checksum(path)):
                raise MigrationError(_changed(path, done[path.name], checksum))
        for path in files:
            if path.name in done:
                continue
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()
            log.info("applying migration %s", path.name)
            cur.execute(text)
            cur.execute("INSERT INTO audit.schema_migration (version, checksum) VALUES (%s, %s)", (path.name, checksum))
            applied.append(path.name)
        ref = "reference:" + admin_units.REFERENCE_VERSION
        if ref not in done:
            counts = admin_units.load_into_warehouse(conn)
            log.info("loaded administrative units from %s: %s", admin_units.REFERENCE_VERSION, counts)
            cur.execute("INSERT INTO audit.schema_migration (version, checksum) VALUES (%s, %s)", (ref, ref))
            applied.append(ref)
        indicators = indicator_catalog.version()
        if indicators not in done:
            indicator_catalog.upsert(cur)
            cur.execute("INSERT INTO audit.schema_migration (version, checksum) VALUES (%s, %s)",
                        (indicators, indicators))
            applied.append(indicators)
        _apply_ioc_comments(cur, done, migrated=bool(applied))
    return applied


def _apply_ioc_comments(cur, done: dict, *, migrated: bool) -> None:
    """COMMENT ON every ioc view and column after any migration (one may have re-created a view)
    or a change of the file; recorded like a migration, under its own name."""
    text = IOC_COMMENTS.read_text(encoding="utf-8")
    checksum = hashlib.sha256(text.encode()).hexdigest()
    if not migrated and done.get("ioc/comments.sql") == checksum:
        return
    cur.execute(text)
    cur.execute("""INSERT INTO audit.schema_migration (version, checksum) VALUES (%s, %s)
                   ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = clock_timestamp()""",
                ("ioc/comments.sql", checksum))
