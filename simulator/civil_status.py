"""Source 1, `civil_status` (Department of Justice): generator of the source's records.

Why this shape: the pipeline reads this REST source incrementally, so the simulator must
hold a realistic history (2005 to `until`), produce new work for every later day, and inject
every row fault of sources.md at small rates, labelled in `sim_fault` so tests can compute
expected indicator values without the pipeline.

Generation is per day, each day seeded by (seed, day): a day's new registrations and its
updates of earlier records never depend on how many days were generated before, so
extending `until` only adds days, and repeating a call changes nothing. The daily rate is
fixed by the first call (`records` spread over 2005-01-01..until) and kept for extensions.
"""
from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ioc_pipeline.reference.admin_units import load_reference
from simulator import people
from simulator.resource import IncrementalResource
from simulator.store import (ICT, STATE_DDL, GeneratorState, connect, open_state,
                             copy_rows, write_state)

log = logging.getLogger(__name__)

SOURCE = "civil_status"
START = date(2005, 1, 1)
REFORM = date(2025, 7, 1)          # 2025 commune codes from this record date on
CCCD_REQUIRED_FROM = date(2016, 1, 1)
FAULT_RATE = 0.03                  # share of new records given one row fault
SERVED_TWICE_RATE = 0.004          # exact duplicates on the wire (not a row fault)
UPDATE_SHARE = 0.25                # updates of earlier records per day, relative to new ones
CAMPAIGN_FROM = date(2022, 1, 1)   # Project 06: digitization/sync of old books, more updates
CAMPAIGN_UPDATE_SHARE = 1.0
CHUNK_ROWS = 50_000                # rows per COPY/commit: bounds memory at any `records`

REGISTRATION_TYPES = ("birth", "death", "marriage", "marital_status",
                      "parent_child_recognition", "guardianship", "name_change")
_TYPE_WEIGHTS = (45, 20, 17, 10, 3, 1, 4)
# (min, max) age in years of the subject at registration, per type
_AGE = {"death": (35, 98), "marriage": (18, 45), "marital_status": (18, 75),
        "parent_child_recognition": (0, 15), "guardianship": (0, 17), "name_change": (1, 45)}

FIELDS = ("record_id", "registration_type", "registered_on", "commune_code", "subject_cccd",
          "subject_full_name", "subject_birth_date", "subject_sex", "book_digitized",
          "synced_to_ministry", "updated_at")
COLUMNS = FIELDS + ("sim_fault", "sim_served_twice", "sim_wire_override")


DDL = STATE_DDL + """
CREATE TABLE IF NOT EXISTS sim.civil_status_records (
    record_id          text PRIMARY KEY,
    registration_type  text,
    registered_on      date,
    commune_code       text,
    subject_cccd       text,
    subject_full_name  text,
    subject_birth_date date,
    subject_sex        text,
    book_digitized     boolean,
    synced_to_ministry boolean,
    updated_at         timestamptz NOT NULL,
    sim_fault          text,              -- NULL = clean; else the injected fault's label
    sim_served_twice   boolean NOT NULL DEFAULT false,
    sim_wire_override  jsonb              -- values sent instead of the typed ones (bad types)
);
-- INCLUDE lets the server skip to a page with an index-only scan (see server._page)
CREATE INDEX IF NOT EXISTS civil_status_records_updated
    ON sim.civil_status_records (updated_at, record_id) INCLUDE (sim_served_twice);
COMMENT ON TABLE sim.civil_status_records IS
    'Simulator SOURCE side of civil_status (clear IDs and names, synthetic). Current version per record.';
"""

RESOURCE = IncrementalResource(path="/api/v1/civil-status/records",
                               table="sim.civil_status_records", key="record_id", fields=FIELDS,
                               ddl=DDL)

# Fault label -> relative weight. Labels are what tests match on; see _apply_fault.
FAULT_WEIGHTS = {
    "missing_required": 3, "cccd_missing_after_2016": 1, "enum_invalid": 2,
    "cccd_bad_format": 1, "cccd_bad_prefix": 1, "cccd_birth_year_mismatch": 1,
    "cccd_sex_mismatch": 1, "cccd_birth_year_future": 1, "commune_unknown": 1,
    "commune_outside_province": 1, "legacy_code_after_reform": 6, "new_code_before_reform": 1,
    "registered_in_future": 1, "birth_in_future": 1, "date_invalid": 1, "bool_as_string": 1,
}


@dataclass(frozen=True)
class Communes:
    """The code pools a province's records draw from, clean and faulty."""

    legacy: tuple[str, ...]           # legacy communes of the province's legacy provinces
    legacy_inside: tuple[str, ...]    # of those, the ones whose 2025 unit is in the province
    current: tuple[str, ...]          # 2025 communes of the province
    legacy_outside: tuple[str, ...]   # legacy communes mapping outside the province
    current_outside: tuple[str, ...]  # 2025 communes of other provinces
    legacy_not_2025: tuple[str, ...]  # own legacy codes that name no 2025 unit
    current_not_legacy: tuple[str, ...]  # own 2025 codes that name no legacy unit
    unknown: tuple[str, ...]          # 5-digit codes naming no unit in either scheme
    home_prefixes: tuple[str, ...]    # CCCD prefixes of the legacy provinces


def communes_for(province_code: str) -> Communes:
    ref = load_reference()
    legacy_provs = ref.legacy_provinces_of(province_code)
    if not legacy_provs:
        raise ValueError(f"no 2025 province {province_code!r} in the reference data")
    legacy = tuple(u.code for p in legacy_provs for u in ref.communes("legacy", p))
    current = tuple(u.code for u in ref.communes("2025", province_code))
    all_legacy = {u.code for u in ref.units if u.scheme == "legacy" and u.level == "commune"}
    all_current = {u.code for u in ref.units if u.scheme == "2025" and u.level == "commune"}
    own = set(current)
    # Neighbours give realistic "outside" codes: Hue (46) and Quang Ngai (51) in the demo.
    others = [p for p in ("46", "51", "01", "79") if p != province_code and p not in legacy_provs]
    legacy_outside = tuple(u.code for p in others for u in ref.communes("legacy", p)
                           if ref.to_2025(u.code) and ref.to_2025(u.code) not in own)
    current_outside = tuple(u.code for p in others for u in ref.communes("2025", p))
    rng = random.Random(f"unknown-codes:{province_code}")
    unknown = {"99999", "00000"}
    while len(unknown) < 40:
        unknown.add(f"{rng.randrange(33000, 99999):05d}")
    unknown -= all_legacy | all_current
    return Communes(
        legacy=legacy, legacy_inside=tuple(c for c in legacy if ref.to_2025(c) in own), current=current, legacy_outside=legacy_outside,
        current_outside=current_outside,
        legacy_not_2025=tuple(c for c in legacy if c not in all_current),
        current_not_legacy=tuple(c for c in current if c not in all_legacy),
        unknown=tuple(sorted(unknown)),
        home_prefixes=tuple("0" + p for p in legacy_provs))


# ---------------------------------------------------------------------------- per day

def _day_weight(d: date) -> float:
    """Offices work weekdays, half of Saturday, rarely Sunday."""
    return (1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.1)[d.weekday()]


def _rounded(rng: random.Random, x: float) -> int:
    """Stochastic rounding: the expected value is x."""
    return int(x) + (1 if rng.random() < x - int(x) else 0)


def day_count(seed: int, rate: float, d: date) -> int:
    """Number of records registered on day d (its own RNG: callable for any day)."""
    return _rounded(random.Random(f"{seed}:n:{d.isoformat()}"), rate * _day_weight(d))


def record_id(d: date, i: int) -> str:
    return f"CS{d:%Y%m%d}{i:05d}"


def _moment(rng: random.Random, d: date, start_h: float, end_h: float) -> datetime:
    secs = rng.randrange(int(start_h * 3600), int(end_h * 3600))
    return datetime.combine(d, time(), ICT) + timedelta(seconds=secs)


def _years_before(d: date, years: float, rng: random.Random) -> date:
    return d - timedelta(days=int(years * 365.25) + rng.randrange(365))


def _shift_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _clean_record(rng: random.Random, d: date, i: int, pools: Communes) -> dict:
    rtype = rng.choices(REGISTRATION_TYPES, _TYPE_WEIGHTS)[0]
    sex = "M" if rng.random() < 0.5 else "F"
    if rtype == "birth":  # mostly within 60 days of birth, some late registrations
        late = rng.random() < 0.03
        birth = d - timedelta(days=rng.randrange(60, 3650) if late else rng.randrange(0, 60))
    else:
        lo, hi = _AGE[rtype]
        birth = min(d, _years_before(d, rng.randrange(lo, hi + 1), rng))
    cccd = None
    if d >= CCCD_REQUIRED_FROM or rng.random() >= 0.4:
        cccd = people.cccd(rng, birth, sex, people.local_prefix(rng, pools.home_prefixes))
    # Older paper books were digitized less completely.
    p_digitized = 0.64 + 0.22 * min(1.0, (d - START).days / 3650)
    return {
        "record_id": record_id(d, i),
        "registration_type": rtype,
        "registered_on": d,
        "commune_code": rng.choice(pools.legacy if d < REFORM else pools.current),
        "subject_cccd": cccd,
        "subject_full_name": people.full_name(rng, sex),
        "subject_birth_date": birth,
        "subject_sex": sex,
        "book_digitized": rng.random() < p_digitized,
        "synced_to_ministry": rng.random() < 0.70,
        "updated_at": _moment(rng, d, 7.5, 17.5),
        "sim_fault": None,
        "sim_served_twice": False,
        "sim_wire_override": None,
    }


def _applicable(kind: str, r: dict, pools: Communes) -> bool:
    d = r["registered_on"]
    if kind.startswith("cccd_") and kind != "cccd_missing_after_2016":
        return r["subject_cccd"] is not None
    return {
        "cccd_missing_after_2016": d >= CCCD_REQUIRED_FROM,
        "legacy_code_after_reform": d >= REFORM and bool(pools.legacy_not_2025),
        "new_code_before_reform": d < REFORM and bool(pools.current_not_legacy),
        "commune_outside_province": bool(pools.legacy_outside if d < REFORM else pools.current_outside),
    }.get(kind, True)


def _apply_fault(rng: random.Random, r: dict, kind: str, pools: Communes) -> None:
    """Turn a clean record into one that breaks exactly the rule named by `kind`."""
    d, cccd, sex = r["registered_on"], r["subject_cccd"], r["subject_sex"]
    if kind == "missing_required":
        field = rng.choice(("registration_type", "registered_on", "commune_code",
                            "subject_full_name", "subject_sex", "book_digitized",
                            "synced_to_ministry"))
        text = field in ("registration_type", "commune_code", "subject_full_name", "subject_sex")
        r[field] = "" if text and rng.random() < 0.5 else None
    elif kind == "cccd_missing_after_2016":
        r["subject_cccd"] = "" if rng.random() < 0.3 else None
    elif kind == "enum_invalid":
        if rng.random() < 0.6:
            r["registration_type"] = rng.choice(("adoption", "Birth", "khai_sinh", "divorce", "BIRTH"))
        else:
            r["subject_sex"] = rng.choice(("X", "Nam", "Nữ", "male", "m"))
    elif kind == "cccd_bad_format":
        variant = rng.randrange(4)
        r["subject_cccd"] = (cccd[1:], cccd + str(rng.randrange(10)),
                             cccd[:5] + "O" + cccd[6:], cccd[:6] + " " + cccd[6:])[variant]
    elif kind == "cccd_bad_prefix":
        r["subject_cccd"] = rng.choice(people.BAD_PREFIXES) + cccd[3:]
    elif kind == "cccd_birth_year_mismatch":
        if rng.random() < 0.7:  # wrong YY
            yy = (int(cccd[4:6]) + rng.randrange(1, 10)) % 100
            r["subject_cccd"] = f"{cccd[:4]}{yy:02d}{cccd[6:]}"
        else:  # wrong century, sex digit parity kept
            g = int(cccd[3])
            r["subject_cccd"] = f"{cccd[:3]}{(g + 2) % 10}{cccd[4:]}"
    elif kind == "cccd_sex_mismatch":
        g = int(cccd[3])
        r["subject_cccd"] = f"{cccd[:3]}{g ^ 1}{cccd[4:]}"
    elif kind == "cccd_birth_year_future":
        # Born after any plausible as-of date; no birth date to contradict it.
        year = rng.choice((2060 + rng.randrange(40), 2100 + rng.randrange(100)))
        r["subject_birth_date"] = None
        r["subject_cccd"] = f"{cccd[:3]}{people.century_sex_digit(year, sex)}{year % 100:02d}{cccd[6:]}"
    elif kind == "commune_unknown":
        r["commune_code"] = rng.choice(pools.unknown)
    elif kind == "commune_outside_province":
        r["commune_code"] = rng.choice(pools.legacy_outside if d < REFORM else pools.current_outside)
    elif kind == "legacy_code_after_reform":
        r["commune_code"] = rng.choice(pools.legacy_not_2025)
    elif kind == "new_code_before_reform":
        r["commune_code"] = rng.choice(pools.current_not_legacy)
    elif kind == "registered_in_future":  # a year typo: decades ahead of any as-of date
        r["registered_on"] = _shift_years(d, 40)
    elif kind == "birth_in_future":
        r["subject_birth_date"] = _shift_years(d, 40)
    elif kind == "date_invalid":
        field = rng.choice(("registered_on", "subject_birth_date"))
        value = r[field] or d
        r["sim_wire_override"] = {field: rng.choice((
            value.strftime("%d/%m/%Y"), value.strftime("%Y%m%d"), f"{value.year}-02-30"))}
    elif kind == "bool_as_string":
        field = rng.choice(("book_digitized", "synced_to_ministry"))
        r["sim_wire_override"] = {field: rng.choice(("true", "false", "1", "yes", "có"))}
    else:  # pragma: no cover - FAULT_WEIGHTS and this function must list the same kinds
        raise ValueError(kind)
    r["sim_fault"] = kind


def day_records(seed: int, rate: float, d: date, pools: Communes) -> list[dict]:
    """The records first registered on day d, faults included."""
    rng = random.Random(f"{seed}:cs:{d.isoformat()}")
    out = []
    kinds, weights = list(FAULT_WEIGHTS), list(FAULT_WEIGHTS.values())
    for i in range(day_count(seed, rate, d)):
        r = _clean_record(rng, d, i, pools)
        if rng.random() < FAULT_RATE:
            ok = [(k, w) for k, w in zip(kinds, weights) if _applicable(k, r, pools)]
            _apply_fault(rng, r, rng.choices([k for k, _ in ok], [w for _, w in ok])[0], pools)
        r["sim_served_twice"] = rng.random() < SERVED_TWICE_RATE
        out.append(r)
    return out


def day_updates(seed: int, rate: float, d: date) -> list[tuple]:
    """Updates made on day d to records of earlier days: (record_id, updated_at, digitized, synced).

    Half touch the last 60 days (sync to the ministry follows registration), half any
    earlier day (digitization of old books, stepped up from 2022 by Project 06).
    """
    if d <= START:
        return []
    rng = random.Random(f"{seed}:upd:{d.isoformat()}")
    out = []
    share = CAMPAIGN_UPDATE_SHARE if d >= CAMPAIGN_FROM else UPDATE_SHARE
    for _ in range(_rounded(rng, rate * _day_weight(d) * share)):
        span = (d - START).days
        back = 1 + (rng.randrange(min(60, span)) if rng.random() < 0.5 else rng.randrange(span))
        target = d - timedelta(days=back)
        digitized, synced, when = rng.random() < 0.5, rng.random() < 0.4, _moment(rng, d, 7.0, 22.0)
        n = day_count(seed, rate, target)
        if n:
            out.append((record_id(target, rng.randrange(n)), when, digitized, synced))
    return out


# ---------------------------------------------------------------------------- loading

_APPLY_UPDATES = """
UPDATE sim.civil_status_records r
   SET updated_at = u.updated_at,
       -- a faulty record is touched but keeps its fault (labels stay true)
       book_digitized = CASE WHEN r.sim_fault IS NULL AND u.digitized THEN true ELSE r.book_digitized END,
       synced_to_ministry = CASE WHEN r.sim_fault IS NULL AND u.synced THEN true ELSE r.synced_to_ministry END
  FROM (SELECT record_id, max(updated_at) AS updated_at, bool_or(digitized) AS digitized,
               bool_or(synced) AS synced
          FROM pg_temp.cs_updates GROUP BY record_id) u
 WHERE r.record_id = u.record_id AND u.updated_at > r.updated_at
"""


def _flush(conn, rows: list[dict], updates: list[tuple], state: GeneratorState) -> None:
    """Load one chunk of days and advance the state, in one transaction."""
    with conn.cursor() as cur:
        copy_rows(cur, RESOURCE.table, COLUMNS, (tuple(r[c] for c in COLUMNS) for r in rows))
        cur.execute("CREATE TEMP TABLE cs_updates (record_id text, updated_at timestamptz,"
                    " digitized boolean, synced boolean) ON COMMIT DROP")
        copy_rows(cur, "pg_temp.cs_updates", ("record_id", "updated_at", "digitized", "synced"), updates)
        cur.execute(_APPLY_UPDATES)
        write_state(cur, state)
    conn.commit()


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--records": ("records", 20000, "records from 2005-01-01 to --until"),
}


def generate(dsn: str, *, province_code: str = "48", until: date, records: int = 20000,
             seed: int = 6) -> dict:
    """Generate (or extend up to `until`) the civil_status source in schema `sim` of `dsn`.

    Returns counts: {"days": generated days, "inserted": new records, "updates": update events}.
    Raises GeneratorStateError if the store was generated with another seed, records or province.
    """
    pools = communes_for(province_code)
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="records", volume=records, seed=seed,
                           province_code=province_code, start=START, until=until, day_weight=_day_weight)
        totals = {"days": 0, "inserted": 0, "updates": 0}
        day = state.generated_until + timedelta(days=1)
        rows: list[dict] = []
        updates: list[tuple] = []
        while day <= until:
            rows += day_records(seed, state.daily_rate, day, pools)
            updates += day_updates(seed, state.daily_rate, day)
            totals["days"] += 1
            if len(rows) + len(updates) >= CHUNK_ROWS or day == until:
                state = dataclasses.replace(state, generated_until=day)
                _flush(conn, rows, updates, state)
                totals["inserted"] += len(rows)
                totals["updates"] += len(updates)
                log.info("civil_status generated up to %s (%d records so far)", day, totals["inserted"])
                rows, updates = [], []
            day += timedelta(days=1)
        if totals["days"]:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"VACUUM (ANALYZE) {RESOURCE.table}")  # visibility map: index-only scans
        log.info("civil_status generation done until %s: %s", until, totals)
        return totals
    finally:
        conn.close()
