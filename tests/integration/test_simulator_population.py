"""Simulator, population: determinism, realistic counts, true fault labels, and the REST route.

The labels are checked against an independent reading of sources.md §2 written here (not the
pipeline's suite): a clean row must break no rule, a labelled one must break its rule.
"""
from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import psycopg2
import pytest
import requests

from ioc_pipeline.reference.admin_units import load_reference
from simulator import population
from simulator.server import make_server
from simulator.store import GeneratorStateError

pytestmark = pytest.mark.integration

UNTIL = date(2026, 11, 20)
TOKEN = "test-token"
_REF = load_reference()
CURRENT = {u.code: u.province_code for u in _REF.units if u.scheme == "2025" and u.level == "commune"}
DA_NANG = sorted(c for c, p in CURRENT.items() if p == "48")


def _rows(dsn: str) -> list[dict]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM sim.population_snapshots ORDER BY snapshot_date, seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def _digest(dsn: str) -> str:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT md5(string_agg(t::text, '|' ORDER BY snapshot_date, seq)) FROM sim.population_snapshots t")
        return cur.fetchone()[0]


def _violations(r: dict) -> set[str]:
    """Every contract rule the row (as it goes on the wire) breaks, named like the labels."""
    item = population.RESOURCE.to_item(r)
    v: set[str] = set()
    for f in population.FIELDS:
        if item[f] is None or item[f] == "":
            v.add("missing_field")
    counts = {}
    for f in population.COUNTS:
        value = item[f]
        if isinstance(value, str):
            v.add("int_as_string")
        elif isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                v.add("negative_count")
            else:
                counts[f] = value
    for small, large in population.INVARIANTS:
        if small in counts and large in counts and counts[small] > counts[large]:
            v.add("invariant_broken")
    code = item["commune_code"]
    if code:
        if code not in CURRENT:
            v.add("commune_unknown")
        elif CURRENT[code] != "48":
            v.add("commune_outside_province")
    as_of = item["as_of"]
    if as_of:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of):
            v.add("as_of_invalid")
        else:
            try:
                if date.fromisoformat(as_of) != r["snapshot_date"]:
                    v.add("as_of_mismatch")
            except ValueError:
                v.add("as_of_invalid")
    return v


def test_generate_is_deterministic_idempotent_and_extends_by_day(make_database):
    a, b = make_database(), make_database()
    first = population.generate(a, until=UNTIL, days=10, seed=6)
    population.generate(b, until=UNTIL - timedelta(days=1), days=9, seed=6)
    assert first["days"] == 10 and 900 <= first["rows"] <= 960
    assert population.generate(a, until=UNTIL, days=10, seed=6) == {"days": 0, "rows": 0}
    added = population.generate(b, until=UNTIL, days=10, seed=6)   # only the new last day
    assert added["days"] == 1
    assert _digest(a) == _digest(b)
    c = make_database()
    population.generate(c, until=UNTIL, days=10, seed=7)
    assert _digest(c) != _digest(a)
    with pytest.raises(GeneratorStateError):
        population.generate(a, until=UNTIL, days=10, seed=7)


def test_labels_are_true_and_counts_realistic(empty_db):
    population.generate(empty_db, until=UNTIL, days=120, seed=6)
    rows = _rows(empty_db)
    days = {r["snapshot_date"] for r in rows}
    assert days == {UNTIL - timedelta(days=k) for k in range(120)}
    labels: dict[str, int] = {}
    for r in rows:
        v = _violations(r)
        if r["sim_fault"] is None:
            assert not v, r
        else:
            assert r["sim_fault"] in v, (r, v)
            labels[r["sim_fault"]] = labels.get(r["sim_fault"], 0) + 1
    assert set(labels) == set(population.FAULT_WEIGHTS), "every fault kind occurs"
    per_day = {d: sum(1 for r in rows if r["snapshot_date"] == d and r["sim_fault"]) for d in days}
    assert max(per_day.values()) <= population.MAX_FAULTS_PER_DAY   # a day stays under the 5% threshold
    assert 0.005 <= sum(labels.values()) / len(rows) <= 0.02
    assert 0 < sum(r["sim_served_twice"] for r in rows) < 0.02 * len(rows)

    clean = [r for r in rows if r["sim_fault"] is None]
    assert {r["commune_code"] for r in clean} == set(DA_NANG)        # 94 current communes
    last = [r for r in clean if r["snapshot_date"] == UNTIL]
    assert 85 <= len(last) <= 94                                      # a few may not report
    adults = sum(r["residents_14_plus"] for r in last)
    assert 2_000_000 <= sum(r["residents"] for r in last) <= 4_500_000
    assert 0.90 <= sum(r["cccd_issued"] for r in last) / adults <= 0.99
    assert 0.55 <= sum(r["vneid_level2_active"] for r in last) / adults <= 0.75
    # counts grow slowly: per commune never down from one clean day to the next
    by_commune: dict[str, list[dict]] = {}
    for r in clean:
        by_commune.setdefault(r["commune_code"], []).append(r)
    for series in by_commune.values():
        for prev, cur in zip(series, series[1:]):
            assert cur["residents"] >= prev["residents"] and cur["vneid_level2_active"] >= prev["vneid_level2_active"]
    first = min(days)
    assert (sum(r["vneid_level2_active"] for r in last)
            > sum(r["vneid_level2_active"] for r in clean if r["snapshot_date"] == first))


def _generate_30_days(dsn):
    population.generate(dsn, until=UNTIL, days=30, seed=6)


@pytest.fixture
def served(simulator_db):
    dsn = simulator_db("population_30d_s6", _generate_30_days)
    server = make_server(dsn, port=0, token=TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}{population.PATH}", dsn
    server.shutdown()
    server.server_close()
    thread.join(5)


def _get(url, token=TOKEN, **params):
    return requests.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_rest_route_pages_a_snapshot_with_distinct_key_totals(served):
    url, dsn = served
    rows = _rows(dsn)
    # a day with a row served twice shows that total_items counts distinct keys
    day = next(r["snapshot_date"] for r in rows if r["sim_served_twice"])
    stored = [r for r in rows if r["snapshot_date"] == day]
    items, total_pages = [], None
    page = 1
    while total_pages is None or page <= total_pages:
        resp = _get(url, as_of=day.isoformat(), page=page, page_size=40)
        assert resp.status_code == 200
        body = resp.json()
        assert body["total_items"] == len(stored) and body["page"] == page and body["page_size"] == 40
        total_pages = body["total_pages"]
        items += body["items"]
        page += 1
    twice = sum(r["sim_served_twice"] for r in stored)
    assert len(items) == len(stored) + twice and total_pages == -(-len(items) // 40)
    assert items == [population.RESOURCE.to_item(r) for r in stored for _ in range(1 + r["sim_served_twice"])]
    assert set(items[0]) == set(population.FIELDS)
    clean = next(i for i, r in zip(items, stored) if r["sim_fault"] is None)
    assert all(type(clean[f]) is int for f in population.COUNTS) and clean["as_of"] == day.isoformat()


def test_rest_route_auth_bad_queries_and_days_without_a_snapshot(served):
    url, _ = served
    assert _get(url, token="wrong", as_of=UNTIL.isoformat()).status_code == 401
    for params in ({}, {"as_of": "20/11/2026"}, {"as_of": "2026-02-30"}, {"as_of": UNTIL.isoformat(), "page": "0"},
                   {"as_of": UNTIL.isoformat(), "page_size": "1001"}):
        resp = _get(url, **params)
        assert resp.status_code == 400 and resp.json()["error"] == "bad_request", params
    empty = _get(url, as_of=(UNTIL + timedelta(days=1)).isoformat()).json()
    assert (empty["items"], empty["total_items"], empty["total_pages"]) == ([], 0, 0)


def test_cli_generate_makes_population_for_the_same_until(empty_db):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "simulator", "generate", "--dsn", empty_db, "--until", "2026-11-20",
         "--records", "200", "--population-days", "4"],
        cwd=population.__file__.rsplit("/simulator/", 1)[0], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with psycopg2.connect(empty_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT min(snapshot_date), max(snapshot_date), count(DISTINCT snapshot_date)"
                    " FROM sim.population_snapshots")
        assert cur.fetchone() == (date(2026, 11, 17), UNTIL, 4)
