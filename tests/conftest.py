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

import pytest

from devtools import embedded_pg

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_server() -> dict:
    """Connection parameters (libpq keywords, no dbname) of the PostgreSQL server under test."""
    try:
        return embedded_pg.choose_server(os.environ.get("IOC_TEST_POSTGRES", ""), REPO / ".data" / "test-pg").params
    except ValueError as exc:
        pytest.fail(f"IOC_TEST_POSTGRES: {exc}")


def _databases(pg_server):
    """Factory: create a new empty database, return its libpq DSN; dropped when the generator ends."""
    created: list[str] = []

    def _make(prefix: str = "ioc_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        embedded_pg.maintenance(pg_server, f'CREATE DATABASE "{name}"')
        created.append(name)
        return " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name}.items())

    yield _make
    for name in created:
        embedded_pg.maintenance(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_database(pg_server):
    """Factory: create a new empty database, return its libpq DSN; dropped at teardown."""
    yield from _databases(pg_server)


@pytest.fixture(scope="session")
def make_session_database(pg_server):
    """Like make_database, for a session-wide fixture (dropped at the end of the session)."""
    yield from _databases(pg_server)


@pytest.fixture
def empty_db(make_database) -> str:
    """DSN of a fresh empty database."""
    return make_database()
