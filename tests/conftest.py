"""Shared fixtures: a real PostgreSQL for integration tests.

Server choice (IOC_TEST_POSTGRES):
- unset: the server on 127.0.0.1:5432 if one answers, else the embedded one;
- `embedded`: always the embedded server (what a fresh machine without PostgreSQL gets);
- any libpq DSN/URI of a maintenance database: that server, and fail if it does not answer.
Every test database is created by the fixture and dropped afterwards, so the tests never
depend on the server's state.

What is expensive to build (a migrated warehouse, a simulator store) is built once per session
into a template database and cloned for each test (CREATE DATABASE ... TEMPLATE copies files,
it does not replay the work), so a test still gets a database of its own that it may change.
The session-scoped real Airflow run shared by the end-to-end checks is `pipeline_run`
(tests/fixtures/pipeline_run.py).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from devtools import embedded_pg
from tests.fixtures import databases
from tests.fixtures.pipeline_run import pipeline_run  # noqa: F401  (a fixture, shared by every test package)

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]


# Tests that must share one worker under pytest-xdist (`make test` runs `-n auto --dist
# loadgroup`): the users of the session's real Airflow run (fixture pipeline_run, built once per
# worker that asks for it: in this group, once). The other end-to-end tests start their own
# Airflow or stack and run on whichever worker is free.
SERIAL_GROUP = "airflow_e2e"


def pytest_configure(config):
    """Choose the server once, in the controlling process, before any xdist worker starts: the
    workers inherit IOC_TEST_POSTGRES, so two workers never start the embedded server at once."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    try:
        choice = embedded_pg.choose_server(os.environ.get("IOC_TEST_POSTGRES", ""), REPO / ".data" / "test-pg")
    except ValueError as exc:
        raise pytest.UsageError(f"IOC_TEST_POSTGRES: {exc}") from None
    os.environ["IOC_TEST_POSTGRES"] = " ".join(f"{k}={v}" for k, v in {**choice.params, "dbname": "postgres"}.items())
    _create_cluster_roles(choice.params)


# Roles are the server's, not a database's: the migrations create them (001, 060) if missing.
MIGRATION_ROLES = ("ioc_reader", "ioc_loader")


def _create_cluster_roles(params: dict) -> None:
    """On a fresh server, migrate a scratch database once before the workers start: two workers
    migrating at the same moment would both find a role missing and both create it (the second
    fails on the duplicate). The migrations themselves create the roles, as on any server."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **params)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", (list(MIGRATION_ROLES),))
            if cur.fetchone()[0] == len(MIGRATION_ROLES):
                return
    finally:
        conn.close()
    name = f"ioc_roles_{uuid.uuid4().hex[:8]}"
    try:
        _migrate(databases.create(params, name))
    finally:
        databases.drop(params, name)


# tryfirst: xdist reads the xdist_group marks in its own collection hook (it suffixes the node
# id with the group); a mark added after it is ignored and the group is silently split.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        # the browser test asks for the run inside its `page` fixture (after its skip checks)
        if "pipeline_run" in item.fixturenames or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))


@pytest.fixture(scope="session")
def pg_server() -> dict:
    """Connection parameters (libpq keywords, no dbname) of the PostgreSQL server under test
    (chosen in pytest_configure)."""
    try:
        return embedded_pg.choose_server(os.environ.get("IOC_TEST_POSTGRES", ""), REPO / ".data" / "test-pg").params
    except ValueError as exc:
        pytest.fail(f"IOC_TEST_POSTGRES: {exc}")


@pytest.fixture(scope="session")
def database_template(pg_server):
    """Factory: database_template(key, build) -> name of a template database that `build(dsn)`
    filled, built the first time a key is asked for in the session, then closed to connections
    so that it can only be cloned (make_database(template=...)). Dropped at the session's end."""
    built: dict[str, str] = {}

    def _template(key: str, build) -> str:
        if key not in built:
            name = f"ioc_tpl_{key}_{uuid.uuid4().hex[:8]}"
            try:
                build(databases.create(pg_server, name))
                databases.freeze(pg_server, name)
            except BaseException:
                databases.drop(pg_server, name)
                raise
            built[key] = name
        return built[key]

    yield _template
    for name in built.values():
        databases.drop(pg_server, name)


@pytest.fixture(scope="session")
def dropper(pg_server):
    """Drops the tests' databases in the background (tests/fixtures/databases.Dropper)."""
    dropper = databases.Dropper(pg_server)
    yield dropper
    errors = dropper.close()
    assert not errors, f"test databases left behind: {errors}"


@pytest.fixture
def make_database(pg_server, dropper):
    """Factory: make_database(prefix, template=None) creates a new database (empty, or a clone
    of a template from `database_template`) and returns its libpq DSN; dropped after the test."""
    created: list[str] = []

    def _make(prefix: str = "ioc_test", template: str | None = None) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return databases.create(pg_server, name, template)

    yield _make
    for name in created:
        dropper.drop(name)


@pytest.fixture
def empty_db(make_database) -> str:
    """DSN of a fresh empty database."""
    return make_database()


def _migrate(dsn: str) -> None:
    from ioc_pipeline import warehouse

    conn = warehouse.connect(dsn)
    try:
        warehouse.migrate(conn)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def migrated_template(database_template) -> str:
    """Name of a template database with every migration and the reference data applied."""
    return database_template("migrated", _migrate)


@pytest.fixture
def warehouse_db(make_database, migrated_template) -> str:
    """DSN of a fresh warehouse with every migration applied (a clone of `migrated_template`:
    the same as migrating an empty database, without paying for it in every test)."""
    return make_database("ioc_wh", template=migrated_template)


@pytest.fixture
def make_warehouse(make_database, migrated_template):
    """Factory: make_warehouse(prefix) -> DSN of another fresh migrated warehouse (for tests
    that compare two warehouses)."""
    return lambda prefix="ioc_wh": make_database(prefix, template=migrated_template)


@pytest.fixture
def simulator_db(make_database, database_template):
    """Factory: simulator_db(key, generate) -> DSN of a fresh copy of the simulator store that
    generate(dsn) fills. The store is generated once per session for each key, so the key must
    name everything that decides its content (sources, seed, size, until)."""
    return lambda key, generate: make_database("ioc_sim", template=database_template(key, generate))
