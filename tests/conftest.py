"""Shared fixtures: a real PostgreSQL for integration tests.

Server choice (IOC_TEST_POSTGRES):
- unset: the server on 127.0.0.1:5432 if one answers, else the embedded one;
- `embedded`: always the embedded server (what a fresh machine without PostgreSQL gets);
- any libpq DSN/URI of a maintenance database: that server, and fail if it does not answer.
Every test database is created by the fixture and dropped afterwards, so the tests never
depend on the server's state.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg2
import pytest

from ioc_pipeline import embedded_pg

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LOCAL = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _answers(dsn: str) -> bool:
    try:
        psycopg2.connect(dsn).close()
        return True
    except psycopg2.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server() -> dict:
    """Connection parameters (libpq keywords, no dbname) of the PostgreSQL server under test."""
    choice = os.environ.get("IOC_TEST_POSTGRES", "")
    if choice and choice != "embedded":
        if not _answers(choice):
            pytest.fail(f"IOC_TEST_POSTGRES={choice!r} does not answer")
        params = psycopg2.extensions.parse_dsn(choice)
    elif not choice and _answers(DEFAULT_LOCAL):
        params = psycopg2.extensions.parse_dsn(DEFAULT_LOCAL)
    else:
        socket_dir = embedded_pg.ensure_server(REPO / ".data" / "test-pg")
        params = {"host": socket_dir, "user": "postgres"}
    params.pop("dbname", None)
    return params


def _maintenance_sql(pg_server: dict, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on the maintenance db."""
    conn = psycopg2.connect(dbname="postgres", **pg_server)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def make_database(pg_server):
    """Factory: create a new empty database, return its libpq DSN; dropped at teardown."""
    created: list[str] = []

    def _make(prefix: str = "ioc_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        _maintenance_sql(pg_server, f'CREATE DATABASE "{name}"')
        created.append(name)
        return " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name}.items())

    yield _make
    for name in created:
        _maintenance_sql(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_db(make_database) -> str:
    """DSN of a fresh empty database."""
    return make_database()
