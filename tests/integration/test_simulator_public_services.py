"""Simulator, public_services generator: determinism, `until` extension, true fault labels,
realistic rates, and the served data through the pipeline against an oracle from ground truth.

The labels are checked against an independent reading of sources.md §3 written here (not the
pipeline's suite): a clean dossier must break no rule, a labelled one must break its rule.
"""
from __future__ import annotations

import re
import threading
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone, UTC
from decimal import ROUND_HALF_UP, Decimal

import psycopg2
import pytest

from ioc_pipeline.ingest import runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline.views import refresh
from ioc_pipeline.reference.admin_units import load_reference
from ioc_pipeline.extract import rest
from simulator import public_services as ps
from simulator.server import make_server
from simulator.store import GeneratorStateError
from tests.integration.warehouse_helpers import PROVINCE, migrated, session

pytestmark = pytest.mark.integration

UNTIL = date(2026, 11, 20)
ICT = timezone(timedelta(hours=7))
REFORM = date(2025, 7, 1)
_REF = load_reference()
LEGACY = {u.code for u in _REF.units if u.scheme == "legacy" and u.level == "commune"}
CURRENT = {u.code: u.province_code for u in _REF.units if u.scheme == "2025" and u.level == "commune"}
INDICATORS = ("PUBLIC_SERVICE_ONLINE_PCT", "PUBLIC_SERVICE_ONTIME_PCT", "PUBLIC_SERVICE_RESULT_DIGITIZED_PCT")


def _rows(dsn: str) -> list[dict]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM sim.public_services_dossiers ORDER BY dossier_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def _digest(dsn: str) -> str:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT md5(string_agg(t::text, '|' ORDER BY dossier_id)) FROM sim.public_services_dossiers t")
        return cur.fetchone()[0]


def _ts_ok(value) -> bool:
    if isinstance(value, datetime):
        return True
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)", value):
        return False
    try:
        datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def commune_2025(code: str | None, submitted: datetime) -> str | None:
    """The current commune a (code, submission instant) names, by the local submission date."""
    if code is None:
        return None
    if submitted.astimezone(ICT).date() < REFORM:
        return _REF.to_2025(code) if code in LEGACY else None
    return code if code in CURRENT else None


def violations(r: dict, until: date) -> set[str]:
    """Every contract rule the dossier (as served) breaks, named like the simulator's labels."""
    v: set[str] = set()
    wire = r["sim_wire_override"] or {}
    served = {**r, **wire}
    for f in ("procedure_code", "essential_service", "receiving_agency", "channel", "submitted_at",
              "due_at", "status", "result_digitized"):
        if served[f] is None or served[f] == "":
            v.add("missing_required")
    for f in ("essential_service", "result_digitized"):
        if served[f] not in (None, True, False):
            v.add("bool_as_string")
    for f in ("submitted_at", "due_at", "completed_at"):
        if served[f] not in (None, "") and not _ts_ok(served[f]):
            v.add("timestamp_invalid")
    if served["channel"] not in ("", None, *ps.CHANNELS) or served["status"] not in ("", None, *ps.STATUSES):
        v.add("enum_invalid")
    if served["status"] == "completed" and served["completed_at"] is None:
        v.add("completed_without_completed_at")
    sub, code = r["submitted_at"], r["commune_code"]
    if sub is not None and "submitted_at" not in wire:
        if sub.astimezone(ICT).date() > until:
            v.add("submitted_in_future")
        if code is not None:
            new = commune_2025(code, sub)
            if new is None:
                before = sub.astimezone(ICT).date() < REFORM
                v.add(("new_code_before_reform" if code in CURRENT else "commune_unknown") if before
                      else ("legacy_code_after_reform" if code in LEGACY else "commune_unknown"))
            elif CURRENT[new] != "48":
                v.add("commune_outside_province")
    return v


def test_generate_is_deterministic_and_extends_day_by_day(make_database):
    a, b = make_database(), make_database()
    # the daily rate is fixed by the first call: both stores start at the same `until`
    first = ps.generate(a, until=UNTIL - timedelta(days=40), dossiers=3000, seed=6)
    assert 2800 <= first["inserted"] <= 3200       # `dossiers` is the expected total
    ps.generate(a, until=UNTIL, dossiers=3000, seed=6)             # one jump of 40 days
    # the same store reached in steps: the planned events are applied as the cut-off moves
    ps.generate(b, until=UNTIL - timedelta(days=40), dossiers=3000, seed=6)
    ps.generate(b, until=UNTIL - timedelta(days=1), dossiers=3000, seed=6)
    before = {r["dossier_id"]: r for r in _rows(b)}
    step = ps.generate(b, until=UNTIL, dossiers=3000, seed=6)
    assert step["days"] == 1 and step["inserted"] > 0 and step["updates"] > 0
    assert _digest(a) == _digest(b)
    after = {r["dossier_id"]: r for r in _rows(b)}
    moved = [k for k in before if before[k]["updated_at"] != after[k]["updated_at"]]
    assert moved, "earlier dossiers moved on (processing, completed, digitized) on the new day"
    day_start = datetime.combine(UNTIL, time(), ICT)
    assert all(day_start <= after[k]["updated_at"] < ps.cutoff(UNTIL) for k in moved)
    assert ps.generate(a, until=UNTIL, dossiers=3000, seed=6) == {"days": 0, "inserted": 0, "updates": 0}
    c = make_database()
    ps.generate(c, until=UNTIL - timedelta(days=40), dossiers=3000, seed=7)
    ps.generate(c, until=UNTIL, dossiers=3000, seed=7)
    assert _digest(c) != _digest(a)
    with pytest.raises(GeneratorStateError):
        ps.generate(a, until=UNTIL, dossiers=3000, seed=7)


def _dossiers_5000(dsn):
    ps.generate(dsn, until=UNTIL, dossiers=5000, seed=6)


def test_labels_are_true_and_rates_realistic(simulator_db):
    rows = _rows(simulator_db("ps_5000_s6", _dossiers_5000))
    labels: dict[str, int] = defaultdict(int)
    for r in rows:
        v = violations(r, UNTIL)
        if r["sim_fault"] is None:
            assert not v, (r["dossier_id"], v)
        else:
            assert r["sim_fault"] in v, (r["dossier_id"], r["sim_fault"], v)
            labels[r["sim_fault"]] += 1
    assert set(labels) == set(ps.FAULT_WEIGHTS), "every fault kind occurs"
    assert 0.01 <= sum(labels.values()) / len(rows) <= 0.03
    assert 0 < sum(r["sim_served_twice"] for r in rows) < 0.01 * len(rows)

    clean = [r for r in rows if r["sim_fault"] is None]
    essential = [r for r in clean if r["essential_service"]]
    completed = [r for r in clean if r["status"] == "completed"]
    assert 0.85 <= sum(r["channel"] == "online" for r in essential) / len(essential) <= 0.97
    assert 0.86 <= sum(r["completed_at"] <= r["due_at"] for r in completed) / len(completed) <= 0.94
    assert 0.75 <= sum(r["result_digitized"] for r in completed) / len(completed) <= 0.86
    assert 0.10 <= sum(r["commune_code"] is None for r in clean) / len(clean) <= 0.20
    assert {r["status"] for r in clean} == set(ps.STATUSES)
    # the scheme follows the local submission date: legacy-only codes before, 2025 codes after
    for r in clean:
        if r["commune_code"] is not None:
            local = r["submitted_at"].astimezone(ICT).date()
            assert (r["commune_code"] in LEGACY) if local < REFORM else (r["commune_code"] in CURRENT)
    assert any(r["commune_code"] not in CURRENT for r in clean
               if r["commune_code"] and r["submitted_at"] < datetime(2025, 7, 1, tzinfo=ICT))
    # online dossiers arrive around midnight too: local and UTC dates differ for some
    assert any(r["submitted_at"].astimezone(ICT).date() != r["submitted_at"].astimezone(UTC).date()
               for r in clean)
    assert max(r["updated_at"] for r in rows) < ps.cutoff(UNTIL)


# ----------------------------------------------------------------------------- served, loaded, counted

def expected_values(sim_dsn: str, as_of: date, data_until: date) -> dict[tuple[str, str], tuple[int, int]]:
    """Oracle from the simulator's ground truth (used by the e2e test too): clean dossiers
    changed before data_until + 1 00:00 +07:00, windows by local dates, null commune = province."""
    cut = ps.cutoff(data_until)
    year_start = date(as_of.year, 1, 1)
    counts: dict = defaultdict(lambda: [0, 0])
    with psycopg2.connect(sim_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT commune_code, essential_service, channel, submitted_at, due_at, status,
                              completed_at, result_digitized
                         FROM sim.public_services_dossiers WHERE sim_fault IS NULL AND updated_at < %s""", (cut,))
        for code, essential, channel, submitted, due, status, completed, digitized in cur:
            units = [u for u in (commune_2025(code, submitted), "48") if u]
            if essential and status != "withdrawn" and year_start <= submitted.astimezone(ICT).date() <= as_of:
                for u in units:
                    counts[("PUBLIC_SERVICE_ONLINE_PCT", u)][0] += channel == "online"
                    counts[("PUBLIC_SERVICE_ONLINE_PCT", u)][1] += 1
            if status == "completed" and year_start <= completed.astimezone(ICT).date() <= as_of:
                for u in units:
                    for code_, hit in (("PUBLIC_SERVICE_ONTIME_PCT", completed <= due),
                                       ("PUBLIC_SERVICE_RESULT_DIGITIZED_PCT", digitized)):
                        counts[(code_, u)][0] += bool(hit)
                        counts[(code_, u)][1] += 1
    return {k: tuple(v) for k, v in counts.items()}


def pct(num: int, den: int) -> Decimal | None:
    return (Decimal(100) * num / den).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if den else None


def test_served_dossiers_through_the_pipeline_match_the_oracle(simulator_db, make_warehouse):
    sim_dsn, wh_dsn = simulator_db("ps_5000_s6", _dossiers_5000), make_warehouse()
    server = make_server(sim_dsn, port=0, token="t0ken")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        endpoint = rest.RestEndpoint(f"http://{host}:{port}", ps.RESOURCE.path, "t0ken", page_size=500)
        source = catalog.get("public_services")
        conn = migrated(wh_dsn)
        ses = session(conn, wh_dsn)
        plan = runner.open_window(ses, source, "sim_run", UNTIL)

        def fetch():
            state = {"total": None}

            def items():
                for page in rest.iter_pages(endpoint, {"updated_until": plan.window_end}):
                    state["total"] = page.total_items if state["total"] is None else state["total"]
                    yield from page.items
            return items(), lambda: state["total"]

        staged = runner.run_batch(ses, source, plan, fetch)
        summary = {k: staged[k] for k in ("rows_loaded", "rows_quarantined")}
    finally:
        server.shutdown()
        server.server_close()
    rows = _rows(sim_dsn)
    assert staged["rows_read"] == len(rows) + sum(r["sim_served_twice"] for r in rows)
    assert summary == {"rows_loaded": sum(r["sim_fault"] is None for r in rows),
                       "rows_quarantined": sum(r["sim_fault"] is not None for r in rows)}
    refresh.refresh(conn, UNTIL, PROVINCE)
    with conn.cursor() as cur:
        cur.execute("SELECT indicator_code, admin_code, numerator, denominator, value FROM ioc.indicator_values"
                    " WHERE indicator_code LIKE 'PUBLIC_SERVICE_%%'")
        actual = {(r[0], r[1]): r[2:] for r in cur.fetchall()}
    conn.close()
    expected = expected_values(sim_dsn, UNTIL, UNTIL)
    assert len(actual) == 3 * 95
    for key, (num, den, value) in actual.items():
        e_num, e_den = expected.get(key, (0, 0))
        assert (num, den, value) == (e_num, e_den, pct(e_num, e_den)), key
    assert expected[("PUBLIC_SERVICE_ONLINE_PCT", "48")][1] > 500


def test_cli_generate_includes_public_services(empty_db):
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-m", "simulator", "generate", "--dsn", empty_db, "--until", "2026-11-20",
         "--records", "300", "--dossiers", "800", "--seed", "6"],
        cwd=Path(ps.__file__).resolve().parents[1], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    with psycopg2.connect(empty_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sim.public_services_dossiers")
        (count,) = cur.fetchone()
        cur.execute("SELECT generated_until FROM sim.generator_state WHERE source = 'public_services'")
        assert cur.fetchone() == (UNTIL,)
    assert 700 <= count <= 900
