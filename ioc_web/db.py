"""The page's only way into the warehouse: a small pool of read-only sessions of a login that
is a member of `ioc_reader`, running the SQL files of ioc_web/sql with bound parameters."""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import psycopg2
import psycopg2.extras
import psycopg2.pool

SQL_DIR = Path(__file__).resolve().parent / "sql"
# Per request: seconds spent waiting for PostgreSQL (the app's Server-Timing "db" part).
DB_SECONDS: ContextVar[list | None] = ContextVar("ioc_web_db_seconds", default=None)
# Schemas the pipeline writes: a login that can use any of them is not the IOC's reader.
PIPELINE_SCHEMAS = ("staging", "core", "quarantine", "audit", "mart", "util")


class LoginRefused(RuntimeError):
    """The configured login may read more than schema ioc (or is not an ioc_reader)."""


@cache
def sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def check_login(conn) -> str:
    """Refuse a login that is a superuser, not a member of ioc_reader, or able to use a schema
    of the pipeline: the pipeline's credentials must never serve the page. Returns the role."""
    with conn.cursor() as cur:
        cur.execute("""SELECT current_user, r.rolsuper,
                              EXISTS (SELECT FROM pg_roles WHERE rolname = 'ioc_reader')
                                  AND pg_has_role(current_user, 'ioc_reader', 'MEMBER'),
                              ARRAY(SELECT nspname::text FROM pg_namespace
                                     WHERE nspname = ANY(%s) AND has_schema_privilege(oid, 'USAGE')
                                     ORDER BY 1)
                         FROM pg_roles r WHERE r.rolname = current_user""", (list(PIPELINE_SCHEMAS),))
        user, superuser, reader, schemas = cur.fetchone()
    conn.rollback()
    if superuser:
        raise LoginRefused(f"login {user!r} is a superuser: give the page a login IN ROLE ioc_reader")
    if not reader:
        raise LoginRefused(f"login {user!r} is not a member of ioc_reader")
    if schemas:
        raise LoginRefused(f"login {user!r} can use schema(s) {', '.join(schemas)}: the page reads schema ioc only")
    return user


class Session:
    def __init__(self, conn):
        self._conn = conn

    def rows(self, name: str, **params) -> list[dict]:
        """Rows of ioc_web/sql/<name>.sql run with `params` bound by the driver (never formatted in)."""
        t0 = time.perf_counter()
        with self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql(name), params)
            rows = cur.fetchall()
        spent = DB_SECONDS.get()
        if spent is not None:
            spent[0] += time.perf_counter() - t0
        return [dict(r) for r in rows]


class Warehouse:
    """Thread-safe pool; every session read-only, search_path ioc, dates in Asia/Ho_Chi_Minh."""

    def __init__(self, dsn: str, *, max_connections: int = 8, statement_timeout_ms: int = 10000):
        options = (f"-c default_transaction_read_only=on -c search_path=ioc -c TimeZone=Asia/Ho_Chi_Minh -c DateStyle=ISO "
                   f"-c statement_timeout={statement_timeout_ms}")
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            1, max_connections, dsn, options=options, application_name="ioc_web")
        try:
            with self.connection() as conn:
                self.login = check_login(conn)
        except BaseException:
            self._pool.closeall()
            raise

    @contextmanager
    def connection(self):
        conn = self._pool.getconn()
        try:
            if not conn.readonly:
                # one snapshot per page: its numbers agree even while a refresh commits
                conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
            yield conn
        finally:
            conn.rollback()
            self._pool.putconn(conn)

    @contextmanager
    def session(self):
        """A read-only snapshot for one page: `session.rows(name, **params)`."""
        with self.connection() as conn:
            yield Session(conn)

    def close(self) -> None:
        self._pool.closeall()
