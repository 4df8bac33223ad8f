"""Run the page next to the pipeline (scripts/pipeline.py: `make web`, `make demo`): create its
login, start `python -m ioc_web` in the background. The login is made here,
with the warehouse owner's connection, so that the page's own process only ever holds the
ioc_reader login."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

DASHBOARD_LOGIN = "ioc_dashboard"


def ensure_login(admin_dsn: str, password: str, role: str = DASHBOARD_LOGIN) -> None:
    """`role` LOGIN with `password`, member of ioc_reader (migrations created it) and nothing
    else, allowed to connect to the warehouse's database. Idempotent and safe when two
    launchers race (roles are cluster-wide)."""
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE ioc_reader").format(sql.Identifier(role)))
            except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
                pass   # made before, or by a launcher running at the same moment
            # the attributes only when one is wrong: PostgreSQL 16 lets a non-superuser owner (CREATEROLE,
            # no CREATEDB) set a password but not name the CREATEDB attribute
            cur.execute("SELECT rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = %s", (role,))
            attrs = sql.SQL(" NOSUPERUSER NOCREATEDB NOCREATEROLE") if cur.fetchone()[0] else sql.SQL("")
            cur.execute(sql.SQL("ALTER ROLE {} LOGIN{} PASSWORD {}").format(
                sql.Identifier(role), attrs, sql.Literal(password)))
            cur.execute(sql.SQL("GRANT ioc_reader TO {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(role)))
    finally:
        conn.close()


def provision(admin_dsn: str, password: str, role: str = DASHBOARD_LOGIN) -> None:
    """Migrate the warehouse (the migrations create ioc_reader and the views), then the login."""
    from ioc_pipeline import warehouse

    conn = warehouse.connect(admin_dsn)
    try:
        warehouse.migrate(conn)
    finally:
        conn.close()
    ensure_login(admin_dsn, password, role)


def answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start(dsn: str, *, port: int, pid_file: Path, log_file: Path, data_docs: Path | None = None,
          repo: Path) -> str:
    """Start the page in the background (its pid in `pid_file`); return its URL once it answers."""
    url = f"http://127.0.0.1:{port}/"
    if answers(url):
        raise SystemExit(f"port {port} already serves a page (another checkout?): stop it, or set IOC_WEB_PORT")
    env = {**os.environ, "IOC_WEB_DSN": dsn}   # the DSN and its password never go on a command line
    if data_docs:
        env["IOC_DATA_DOCS_DIR"] = str(data_docs)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ioc_web", "--port", str(port)], cwd=repo, env=env,
                                stdout=log, stderr=log, start_new_session=True)
    pid_file.write_text(str(proc.pid))
    for _ in range(150):
        if answers(url):
            return url
        if proc.poll() is not None:
            raise SystemExit(f"the page exited with {proc.returncode}; see {log_file}")
        time.sleep(0.2)
    raise SystemExit(f"the page did not answer within 30 s; see {log_file}")


def main() -> int:
    """`python -m ioc_web.serve`: provision the page's login in a deployment (docker-compose.yaml,
    service ioc-web-login). The owner's connection comes from AIRFLOW_CONN_IOC_WAREHOUSE_OWNER (JSON;
    AIRFLOW_CONN_IOC_WAREHOUSE when unset), the login's password from IOC_WEB_PASSWORD; the page's
    own service gets neither."""
    import json

    conn = json.loads(os.environ.get("AIRFLOW_CONN_IOC_WAREHOUSE_OWNER") or os.environ["AIRFLOW_CONN_IOC_WAREHOUSE"])
    admin = psycopg2.extensions.make_dsn(host=conn["host"], port=conn.get("port"), user=conn["login"],
                                         password=conn.get("password"), dbname=conn["schema"])
    provision(admin, os.environ["IOC_WEB_PASSWORD"])
    print(f"login {DASHBOARD_LOGIN} ready (IN ROLE ioc_reader)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
