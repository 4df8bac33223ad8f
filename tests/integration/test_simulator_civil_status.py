"""Simulator, civil_status generator: determinism, `until` extension, and true fault labels.

The labels are checked against an independent reading of sources.md written here (not the
pipeline's suites): a clean record must break no rule, a labelled one must break its rule.
"""
from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from datetime import date, datetime, timedelta, timezone

import psycopg2
import pytest

from ioc_pipeline.reference.admin_units import load_reference
from simulator import civil_status
from simulator.store import GeneratorStateError

pytestmark = pytest.mark.integration

UNTIL = date(2026, 11, 20)
ICT = timezone(timedelta(hours=7))
_REF = load_reference()
VALID_PREFIXES = {"0" + u.code for u in _REF.units if u.scheme == "legacy" and u.level == "province"}
LEGACY = {u.code for u in _REF.units if u.scheme == "legacy" and u.level == "commune"}
CURRENT = {u.code: u.province_code for u in _REF.units if u.scheme == "2025" and u.level == "commune"}


def _rows(dsn: str) -> list[dict]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM sim.civil_status_records ORDER BY record_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def _db(dsn: str, sql: str) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _digest(dsn: str) -> str:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT md5(string_agg(t::text, '|' ORDER BY record_id)) FROM sim.civil_status_records t")
        return cur.fetchone()[0]


def _violations(r: dict, until: date) -> set[str]:
    """Every contract rule the record breaks, named like the simulator's labels."""
    v: set[str] = set()
    for f in ("registration_type", "commune_code", "subject_full_name", "subject_sex",
              "registered_on", "book_digitized", "synced_to_ministry"):
        if r[f] is None or r[f] == "":
            v.add("missing_required")
    for field, value in (r["sim_wire_override"] or {}).items():
        if field in ("book_digitized", "synced_to_ministry") and not isinstance(value, bool):
            v.add("bool_as_string")
        if field in ("registered_on", "subject_birth_date"):
            try:
                ok = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and date.fromisoformat(value)
            except ValueError:
                ok = False
            if not ok:
                v.add("date_invalid")
    if r["registration_type"] not in ("", None, *civil_status.REGISTRATION_TYPES):
        v.add("enum_invalid")
    if r["subject_sex"] not in ("", None, "M", "F"):
        v.add("enum_invalid")
    on, birth, cccd = r["registered_on"], r["subject_birth_date"], r["subject_cccd"]
    if cccd in (None, ""):
        if on is not None and on >= date(2016, 1, 1):
            v.add("cccd_missing_after_2016")
    elif not re.fullmatch(r"[0-9]{12}", cccd):
        v.add("cccd_bad_format")
    else:
        g, yy = int(cccd[3]), int(cccd[4:6])
        year = 1900 + 100 * (g // 2) + yy
        if cccd[:3] not in VALID_PREFIXES:
            v.add("cccd_bad_prefix")
        if year > until.year:
            v.add("cccd_birth_year_future")
        if birth is not None and birth.year != year:
            v.add("cccd_birth_year_mismatch")
        if r["subject_sex"] in ("M", "F") and ("M" if g % 2 == 0 else "F") != r["subject_sex"]:
            v.add("cccd_sex_mismatch")
    code = r["commune_code"]
    if code and on is not None:
        legacy, current = LEGACY, CURRENT
        if on < date(2025, 7, 1):
            new = _REF.to_2025(code) if code in legacy else None
            if code not in legacy:
                v.add("new_code_before_reform" if code in current else "commune_unknown")
        else:
            new = code if code in current else None
            if new is None:
                v.add("legacy_code_after_reform" if code in legacy else "commune_unknown")
        if new is not None and current[new] != "48":
            v.add("commune_outside_province")
    if on is not None and on > until:
        v.add("registered_in_future")
    if birth is not None and birth > until:
        v.add("birth_in_future")
    return v


def test_generate_is_deterministic_and_idempotent(make_database):
    a, b = make_database(), make_database()
    first = civil_status.generate(a, until=UNTIL, records=4000, seed=6)
    civil_status.generate(b, until=UNTIL, records=4000, seed=6)
    assert _digest(a) == _digest(b)
    assert 3800 <= first["inserted"] <= 4200  # `records` is the expected total
    again = civil_status.generate(a, until=UNTIL, records=4000, seed=6)
    assert again == {"days": 0, "inserted": 0, "updates": 0}
    assert _digest(a) == _digest(b)
    c = make_database()
    civil_status.generate(c, until=UNTIL, records=4000, seed=7)
    assert _digest(c) != _digest(a)
    with pytest.raises(GeneratorStateError):
        civil_status.generate(a, until=UNTIL, records=4000, seed=7)


def _default_scale(dsn):
    civil_status.generate(dsn, until=UNTIL, records=20000, seed=6)


def test_labels_are_true_and_rates_realistic(simulator_db):
    rows = _rows(simulator_db("civil_20000_s6", _default_scale))
    n = len(rows)
    labels: dict[str, int] = {}
    for r in rows:
        v = _violations(r, UNTIL)
        if r["sim_fault"] is None:
            assert not v, (r["record_id"], v)
        else:
            assert r["sim_fault"] in v, (r["record_id"], r["sim_fault"], v)
            labels[r["sim_fault"]] = labels.get(r["sim_fault"], 0) + 1
    assert set(labels) == set(civil_status.FAULT_WEIGHTS), "every fault kind occurs"
    assert 0.02 <= sum(labels.values()) / n <= 0.04
    twice = sum(r["sim_served_twice"] for r in rows)
    assert 0 < twice < 0.01 * n

    clean = [r for r in rows if r["sim_fault"] is None]
    assert 0.80 <= sum(r["book_digitized"] for r in clean) / len(clean) <= 0.90
    assert 0.70 <= sum(r["synced_to_ministry"] for r in clean) / len(clean) <= 0.82
    old = [r for r in clean if r["registered_on"] < date(2008, 1, 1)]
    assert sum(r["book_digitized"] for r in old) / len(old) < 0.85  # old books less digitized
    # NFD names occur (legal, not a fault); the type of every clean name is NFC-able text
    assert any(not unicodedata.is_normalized("NFC", r["subject_full_name"]) for r in clean)
    assert min(r["registered_on"] for r in clean) < date(2005, 1, 15)
    assert max(r["registered_on"] for r in clean) <= UNTIL
    # null IDs only before 2016 among clean records, and some there
    assert any(r["subject_cccd"] is None for r in clean if r["registered_on"] < date(2016, 1, 1))
    end = datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), ICT)
    for r in rows:
        assert r["updated_at"] < end
    # the last day has work for an incremental run: new records and updates of older ones
    last_day = [r for r in rows if r["updated_at"] >= end - timedelta(days=1)]
    assert any(r["registered_on"] == UNTIL for r in last_day)
    assert any(r["registered_on"] < UNTIL - timedelta(days=60) for r in last_day)


def test_until_extension_adds_the_new_day_only(make_database):
    a = make_database()
    civil_status.generate(a, until=UNTIL - timedelta(days=1), records=6000, seed=6)
    before = {r["record_id"]: r for r in _rows(a)}
    added = civil_status.generate(a, until=UNTIL, records=6000, seed=6)
    assert added["days"] == 1 and added["inserted"] > 0 and added["updates"] > 0
    after = {r["record_id"]: r for r in _rows(a)}
    day_start = datetime.combine(UNTIL, datetime.min.time(), ICT)
    new = set(after) - set(before)
    assert new and all(after[k]["registered_on"] == UNTIL or after[k]["sim_fault"] for k in new)
    changed = [k for k in before if before[k] != after[k]]
    assert changed, "older records were updated on the new day"
    for k in changed:
        assert after[k]["updated_at"] >= day_start
        assert after[k]["sim_fault"] == before[k]["sim_fault"]
    digest = _digest(a)
    civil_status.generate(a, until=UNTIL, records=6000, seed=6)
    assert _digest(a) == digest
    # the same path from scratch gives the same store
    b = make_database()
    civil_status.generate(b, until=UNTIL - timedelta(days=1), records=6000, seed=6)
    civil_status.generate(b, until=UNTIL, records=6000, seed=6)
    assert _digest(b) == digest


def test_cli_generate(empty_db, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "simulator", "generate", "--dsn", empty_db, "--until", "2026-11-20",
         "--records", "500", "--seed", "6"],
        cwd=civil_status.__file__.rsplit("/simulator/", 1)[0], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with psycopg2.connect(empty_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), max(generated_until) FROM sim.civil_status_records,"
                    " sim.generator_state WHERE source = 'civil_status'")
        count, until = cur.fetchone()
    assert 400 <= count <= 600 and until == date(2026, 11, 20)


def test_rates_on_the_default_scale(simulator_db):
    """The printed shares of the default demo store (kept in the brief's ranges)."""
    (digitized, synced, faulty, recent), = _db(simulator_db("civil_20000_s6", _default_scale), """
        SELECT avg(book_digitized::int) FILTER (WHERE sim_fault IS NULL),
               avg(synced_to_ministry::int) FILTER (WHERE sim_fault IS NULL),
               avg((sim_fault IS NOT NULL)::int),
               count(*) FILTER (WHERE updated_at >= '2026-11-14 00:00+07')
          FROM sim.civil_status_records""")
    assert 0.82 <= digitized <= 0.88 and 0.72 <= synced <= 0.78 and 0.02 <= faulty <= 0.04
    assert recent >= 25  # a week of incremental work
