"""Fixtures of the reliability tests: the bundled simulator (all REST and SQL sources) serving
over real HTTP from its own database, with the connections pointed at it."""
from __future__ import annotations

import threading

import pytest

from simulator import civil_status, land, population, public_services, tuition
from simulator.server import make_server
from tests.reliability.support import http_conn_json, point_sources

TOKEN = "reliability-token-5b1e"
SIM_UNTIL = __import__("datetime").date(2026, 11, 20)


def generate_all(sim_dsn: str, until=SIM_UNTIL) -> None:
    """Small stores, each with labelled row faults, under 5 % of a batch."""
    civil_status.generate(sim_dsn, until=until, records=1500, seed=11)
    population.generate(sim_dsn, until=until, days=2, seed=10)  # 3 faulty communes on the day
    public_services.generate(sim_dsn, until=until, dossiers=1500, seed=11)
    land.generate(sim_dsn, until=until, certificates=600, seed=11)
    tuition.generate(sim_dsn, until=until, payments=600, seed=11)


def _serve(sim_dsn, monkeypatch):
    server = make_server(sim_dsn, port=0, token=TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    point_sources(monkeypatch, sim_dsn=sim_dsn, port=port, token=TOKEN)
    yield {"dsn": sim_dsn, "port": port, "server": server}
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def sim(simulator_db, monkeypatch):
    """{"dsn", "port", "server"}: every REST and SQL source generated, served on a free port."""
    yield from _serve(simulator_db("rel_all", generate_all), monkeypatch)


def generate_civil(sim_dsn: str) -> None:
    civil_status.generate(sim_dsn, until=SIM_UNTIL, records=1500, seed=11)


@pytest.fixture
def civil_sim(simulator_db, monkeypatch):
    """The same with civil_status only (the REST protocol tests): quicker."""
    yield from _serve(simulator_db("rel_civil", generate_civil), monkeypatch)


@pytest.fixture
def raw_source(monkeypatch):
    """civil_status served by a RawSource (test_hostile_input.py): one fixed page body, bytes as given."""
    from tests.reliability.test_hostile_input import RawSource

    src = RawSource("raw-token")
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_CIVIL_STATUS", http_conn_json(src.port, "raw-token"))
    yield src
    src.close()
