"""Settings and connections, resolved the way operations.md fixes them.

Everything comes from Airflow connections and variables, so any secrets backend works and
`AIRFLOW_CONN_<ID>` / `AIRFLOW_VAR_<NAME>` environment variables work too. Nothing secret has
a default here: the Makefile provides the demo's values, never the code.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[2]
# The declarations (catalog, suites, SQL); IOC_INCLUDE_DIR points at another copy, e.g. to try
# a new source in a scratch tree (docs/adding_a_source.md).
INCLUDE_DIR = Path(os.environ.get("IOC_INCLUDE_DIR") or REPO_ROOT / "include").resolve()
SQL_DIR = INCLUDE_DIR / "sql"
EXPECTATIONS_DIR = INCLUDE_DIR / "expectations"

WAREHOUSE_CONN_ID = "ioc_warehouse"          # the DAGs' login: IN ROLE ioc_loader in a deployment
# The owner's login (migrations, the IOC page's login): AIRFLOW_CONN_IOC_WAREHOUSE_OWNER in the
# environment of `make migrate` / warehouse-migrate / ioc-web-login only, never in Airflow's store
# (the DAGs must not hold it). Unset: the owner is ioc_warehouse's login (embedded: the superuser).
WAREHOUSE_OWNER_CONN_ID = "ioc_warehouse_owner"
# Assets are fixed at parse time, before any connection is read: they name a warehouse table by
# the warehouse's logical host and database (the OpenLineage events carry the real address).
WAREHOUSE_ASSET_AUTHORITY = "ioc-warehouse:5432"
WAREHOUSE_ASSET_DB = "ioc"
LOCAL_TZ = "Asia/Ho_Chi_Minh"
DEFAULT_PROVINCE_CODE = "48"  # demo default (operations.md): Da Nang, incl. former Quang Nam


class ConfigError(Exception):
    """A missing or malformed setting; the message says which and where to set it."""


@dataclass(frozen=True)
class PgParams:
    """Connection parameters of a PostgreSQL connection (warehouse or SQL source)."""

    host: str
    port: int | None
    dbname: str
    user: str
    password: str | None

    def dsn(self, **extra: str) -> str:
        """libpq keyword DSN; values quoted so a socket path or password cannot break it."""
        parts = {"host": self.host, "dbname": self.dbname, "user": self.user}
        if self.port:
            parts["port"] = str(self.port)
        if self.password:
            parts["password"] = self.password
        parts.update(extra)
        return " ".join(f"{k}='{_libpq_escape(v)}'" for k, v in parts.items())

    def sqlalchemy_url(self) -> str:
        """SQLAlchemy URL; a Unix-socket host goes in the query (GX needs a host in the URL)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        port = f":{self.port}" if self.port else ""   # a socket's port too: it names the socket file
        if self.host.startswith("/"):
            return f"postgresql+psycopg2://{auth}@localhost{port}/{quote(self.dbname)}?host={quote(self.host)}"
        return f"postgresql+psycopg2://{auth}@{self.host}{port}/{quote(self.dbname)}"


def warehouse_asset_uri(qualified_table: str) -> str:
    """The Asset URI of a warehouse table (`schema.table`), in the standard postgres scheme."""
    schema, table = qualified_table.split(".", 1)
    return f"postgres://{WAREHOUSE_ASSET_AUTHORITY}/{WAREHOUSE_ASSET_DB}/{schema}/{table}"


def _libpq_escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def get_connection(conn_id: str):
    """An Airflow connection (environment, secrets backend or metadata database)."""
    from airflow.sdk import Connection  # lazy: keep DAG parsing and unit tests light

    try:
        return Connection.get(conn_id)
    except Exception as exc:  # noqa: BLE001 - the SDK raises its own not-found type, which moved between versions
        raise ConfigError(
            f"connection '{conn_id}' is not defined: set AIRFLOW_CONN_{conn_id.upper()} "
            f"or add it in a secrets backend ({type(exc).__name__})"
        ) from None


def _json_env_connection(conn_id: str):
    """AIRFLOW_CONN_<ID> given as JSON (what `make` and the docs set), read without importing
    Airflow (seconds saved on every command-line tool); None when absent or in another form."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "").strip()
    if not raw.startswith("{"):
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    return SimpleNamespace(**{k: fields.get(k) for k in ("host", "port", "schema", "login", "password")})


def postgres_params(conn_id: str) -> PgParams:
    conn = _json_env_connection(conn_id) or get_connection(conn_id)
    if not conn.host or not conn.schema:
        raise ConfigError(f"connection '{conn_id}' needs a host and a schema (the database name)")
    return PgParams(
        host=conn.host,
        port=int(conn.port) if conn.port else None,
        dbname=conn.schema,
        user=conn.login or "postgres",
        password=conn.password or None,
    )


def owner_params() -> PgParams:
    """The warehouse owner's connection (WAREHOUSE_OWNER_CONN_ID, read from the environment
    only), else ioc_warehouse's (the embedded defaults: one superuser does everything)."""
    if os.environ.get(f"AIRFLOW_CONN_{WAREHOUSE_OWNER_CONN_ID.upper()}", "").strip():
        return postgres_params(WAREHOUSE_OWNER_CONN_ID)
    return postgres_params(WAREHOUSE_CONN_ID)


def get_variable(name: str, default: str | None = None) -> str | None:
    """An Airflow variable; AIRFLOW_VAR_<NAME> is honoured by Airflow itself."""
    from airflow.sdk import Variable

    try:
        return Variable.get(name)
    except Exception:  # noqa: BLE001 - not set (or unreadable): the default
        return default


def province_code() -> str:
    """The IOC's province, current (post-July-2025) 2-digit code."""
    code = os.environ.get("IOC_PROVINCE_CODE") or get_variable("ioc_province_code") or DEFAULT_PROVINCE_CODE
    if not re.fullmatch(r"\d{2}", code):
        raise ConfigError(f"IOC_PROVINCE_CODE must be a 2-digit province code, got {code!r}")
    return code


def pii_key() -> bytes:
    """Key of the keyed hash of personal IDs (Airflow variable `ioc_pii_key`, a secret)."""
    key = get_variable("ioc_pii_key")
    if not key or len(key) < 16:
        raise ConfigError(
            "Airflow variable 'ioc_pii_key' is missing or shorter than 16 characters: set it in the "
            "secrets backend (or AIRFLOW_VAR_IOC_PII_KEY); it pseudonymises every personal ID"
        )
    return key.encode("utf-8")
