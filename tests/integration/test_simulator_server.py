"""Simulator HTTP server: the REST protocol of sources.md and every switchable fault.

A real ThreadingHTTPServer in a thread, real HTTP with `requests`, real PostgreSQL.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone, UTC

import psycopg2
import pytest
import requests

from simulator import civil_status
from simulator.server import make_server

pytestmark = pytest.mark.integration

UNTIL = date(2026, 11, 20)
ICT = timezone(timedelta(hours=7))
TOKEN = "test-token"
PATH = "/api/v1/civil-status/records"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NO_FAULTS = {"503": 0, "429": 0, "html": 0, "truncate": 0, "slow": 0, "race": 0}


def _generate(dsn):
    civil_status.generate(dsn, until=UNTIL, records=1500, seed=6)


@pytest.fixture
def sim(simulator_db):
    """(base url, dsn) of a served store of ~1500 records; shut down afterwards."""
    dsn = simulator_db("civil_1500_s6", _generate)
    server = make_server(dsn, port=0, token=TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}", dsn
    server.shutdown()
    server.server_close()
    thread.join(5)


def _get(base, **params):
    return requests.get(base + PATH, params=params, headers=AUTH, timeout=10)


def _extract(base, page_size=1000, **window):
    """All pages of a window, as the pipeline would page: (items, first page's body)."""
    first = _get(base, page=1, page_size=page_size, **window)
    assert first.status_code == 200, first.text
    body = first.json()
    items = list(body["items"])
    for page in range(2, body["total_pages"] + 1):
        r = _get(base, page=page, page_size=page_size, **window)
        assert r.status_code == 200
        items += r.json()["items"]
    return items, body


def _db(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def _set_faults(base, **values):
    r = requests.post(base + "/_sim/faults", json=values, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_health_and_token(sim):
    base, _ = sim
    assert requests.get(base + "/_sim/health", timeout=5).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = requests.get(base + PATH, headers=headers, timeout=5)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
    assert requests.post(base + "/_sim/faults", json={"503": 1}, timeout=5).status_code == 401
    assert requests.get(base + "/nope", headers=AUTH, timeout=5).status_code == 404


def test_full_history_paging_order_and_duplicates(sim):
    base, dsn = sim
    items, first = _extract(base, page_size=137)
    (keys, twice), = _db(dsn, "SELECT count(*), count(*) FILTER (WHERE sim_served_twice)"
                              " FROM sim.civil_status_records")
    assert twice > 0, "the fixture store must contain exact duplicates"
    assert first["page"] == 1 and first["page_size"] == 137
    assert first["total_items"] == keys  # distinct keys
    assert len(items) == keys + twice
    assert first["total_pages"] == -(-(keys + twice) // 137)
    assert len({i["record_id"] for i in items}) == keys
    order = [(datetime.fromisoformat(i["updated_at"]), i["record_id"]) for i in items]
    assert order == sorted(order)
    assert all(i["updated_at"].endswith("+07:00") for i in items)
    assert set(items[0]) == set(civil_status.FIELDS)
    # a duplicate is exact and adjacent
    dup = [k for k, n in _count(items).items() if n == 2]
    assert len(dup) == twice
    pos = [n for n, i in enumerate(items) if i["record_id"] == dup[0]]
    assert pos[1] == pos[0] + 1 and items[pos[0]] == items[pos[1]]
    # a page after the last is empty, not an error
    assert _get(base, page=first["total_pages"] + 1, page_size=137).json()["items"] == []


def _count(items):
    out: dict[str, int] = {}
    for i in items:
        out[i["record_id"]] = out.get(i["record_id"], 0) + 1
    return out


def test_window_is_half_open_on_updated_at(sim):
    base, dsn = sim
    since = datetime(2026, 11, 1, tzinfo=ICT)
    until = datetime(2026, 11, 21, tzinfo=ICT)
    items, first = _extract(base, updated_since=since.isoformat(), updated_until=until.isoformat())
    (expected,), = _db(dsn, "SELECT count(*) FROM sim.civil_status_records"
                            " WHERE updated_at >= %s AND updated_at < %s", (since, until))
    assert first["total_items"] == expected > 0
    assert all(since <= datetime.fromisoformat(i["updated_at"]) < until for i in items)
    # the boundary: a record exactly at `since` is inside, exactly at `until` outside
    (edge,), = _db(dsn, "SELECT updated_at FROM sim.civil_status_records"
                        " WHERE updated_at >= %s ORDER BY updated_at LIMIT 1", (since,))
    inside = _extract(base, updated_since=edge.isoformat())[0]
    outside = _extract(base, updated_until=edge.isoformat())[0]
    assert edge in {datetime.fromisoformat(i["updated_at"]) for i in inside}
    assert all(datetime.fromisoformat(i["updated_at"]) < edge for i in outside)
    # other offsets name the same instant
    utc = since.astimezone(UTC).isoformat()
    assert _get(base, updated_since=utc, updated_until=until.isoformat(), page_size=1).json()[
        "total_items"] == expected
    # an empty window is a normal answer
    empty = _get(base, updated_since=until.isoformat(), updated_until=until.isoformat()).json()
    assert empty["items"] == [] and empty["total_items"] == 0 and empty["total_pages"] == 0


def test_bad_queries_are_400_json(sim):
    base, _ = sim
    assert _get(base, page_size=1000).status_code == 200
    for params in ({"page_size": 1001}, {"page": 0}, {"page": "x"}, {"page_size": 0},
                   {"updated_since": "2026-11-01T00:00:00"},  # no offset
                   {"updated_until": "yesterday"}):
        r = _get(base, **params)
        assert r.status_code == 400, params
        assert r.json()["error"] == "bad_request"
    # a raw '+' decodes to a space: rejected, not silently misread
    raw = requests.get(base + PATH + "?updated_since=2026-11-01T00:00:00+07:00", headers=AUTH, timeout=5)
    assert raw.status_code == 400


def test_wire_values_of_faulty_records(sim):
    base, dsn = sim
    items, _ = _extract(base)
    by_key = {i["record_id"]: i for i in items}
    for key, override in _db(dsn, "SELECT record_id, sim_wire_override FROM sim.civil_status_records"
                                  " WHERE sim_wire_override IS NOT NULL"):
        for field, value in override.items():
            assert by_key[key][field] == value
    strings = [i for i in items if isinstance(i["book_digitized"], str) or isinstance(i["synced_to_ministry"], str)]
    (n_bool,), = _db(dsn, "SELECT count(*) FROM sim.civil_status_records WHERE sim_fault = 'bool_as_string'")
    assert len({i["record_id"] for i in strings}) == n_bool


def test_transport_faults(sim):
    base, _ = sim
    assert _set_faults(base, **{"503": 1})["unavailable"] == 1
    r = _get(base)
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    _set_faults(base, **{**NO_FAULTS, "429": 1})
    r = _get(base)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    _set_faults(base, **{**NO_FAULTS, "html": 1})
    r = _get(base)
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        r.json()
    _set_faults(base, **{**NO_FAULTS, "truncate": 1})
    r = _get(base)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    _set_faults(base, **{**NO_FAULTS, "slow": 1, "slow_seconds": 0.6})
    t = time.monotonic()
    r = _get(base, page_size=5)
    assert time.monotonic() - t >= 0.6 and len(r.json()["items"]) == 5
    _set_faults(base, **NO_FAULTS)
    assert _get(base).status_code == 200
    # health and auth are never faulted
    _set_faults(base, **{"503": 1})
    assert requests.get(base + "/_sim/health", timeout=5).status_code == 200
    assert requests.get(base + PATH, timeout=5).status_code == 401
    bad = requests.post(base + "/_sim/faults", json={"503": 2}, headers=AUTH, timeout=5)
    assert bad.status_code == 400


def test_fault_decisions_are_seeded(sim):
    base, _ = sim

    def statuses():
        _set_faults(base, **{**NO_FAULTS, "503": 0.3, "429": 0.3, "seed": 11})
        return [_get(base, page_size=1).status_code for _ in range(30)]

    first = statuses()
    assert {200, 429, 503} <= set(first)
    assert statuses() == first


def test_race_moves_a_record_to_a_later_page(sim):
    base, dsn = sim
    until = datetime(2026, 11, 21, tzinfo=ICT).isoformat()
    (keys,), = _db(dsn, "SELECT count(*) FROM sim.civil_status_records")
    _set_faults(base, race=1)
    items, first = _extract(base, page_size=200, updated_until=until)
    distinct = {i["record_id"] for i in items}
    assert first["total_items"] == keys
    assert len(distinct) < keys, "some record was skipped"
    counts = _count(items)
    (dups,), = _db(dsn, "SELECT count(*) FROM sim.civil_status_records WHERE sim_served_twice")
    assert sum(1 for n in counts.values() if n > 1) > dups, "a moved record appears twice"
    # a moved record's two copies are apart (exact duplicates are adjacent), and it was really
    # updated: its new updated_at is still inside the window
    positions: dict[str, list[int]] = {}
    for n, i in enumerate(items):
        positions.setdefault(i["record_id"], []).append(n)
    moved = [k for k, p in positions.items() if len(p) > 1 and p[-1] - p[0] > 1]
    assert moved
    rows = dict(_db(dsn, "SELECT record_id, updated_at FROM sim.civil_status_records"
                         " WHERE record_id = ANY(%s)", (moved,)))
    assert all(ts < datetime.fromisoformat(until) for ts in rows.values())
    assert all(datetime.fromisoformat(items[positions[k][0]]["updated_at"]) < rows[k] for k in moved)
    _set_faults(base, race=0)
    again, _ = _extract(base, page_size=200, updated_until=until)
    assert len({i["record_id"] for i in again}) == keys  # a clean re-extraction is complete


def test_request_log_has_no_content(sim, caplog):
    base, _ = sim
    caplog.set_level(logging.INFO, logger="simulator.server")
    items = _get(base, page=1, page_size=5).json()["items"]
    _get(base, page_size=5000)
    lines = [r.getMessage() for r in caplog.records if r.name == "simulator.server"]
    assert f"GET {PATH}?page=1&page_size=5 200" in lines
    assert f"GET {PATH}?page_size=5000 400" in lines
    text = "\n".join(lines)
    assert TOKEN not in text
    for item in items:
        assert item["record_id"] not in text
        assert not item["subject_cccd"] or item["subject_cccd"] not in text

