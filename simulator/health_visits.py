"""Source 6, `health_visits` (hospitals, via the Department of Health): daily CSV exports.

Why this shape: each health-insurance facility exports one CSV per day into the landing folder
(`health/bhyt_visits_<facility_code>_<YYYYMMDD>.csv`, sources.md §6) and the pipeline takes
each file as one batch. The simulator writes those files as the contract says, and as real
exporters bend it (a BOM from some hospital systems, CRLF or LF), and keeps the ground truth
apart in its own database: `sim.health_visits_truth` (one row per delivered row version, clear
IDs: this is the source side) and `sim.file_deliveries` (one row per delivered file).

Volume scales: rows stream to the CSV, never a whole file in memory. Every facility-day is
drawn from an RNG seeded by (seed, source, facility, day), so a later `until` only adds files
(and the corrections that fall due by then), and a folder extended in steps equals one
extended in one go from the same first call.

What goes wrong, labelled so tests can match on it:
- row faults (`sim_fault`, FAULT_WEIGHTS) on ~1.2 % of visits;
- duplicates (`sim_duplicate`): `exact_copy` (the same row twice), `superseded_in_file` then
  `in_file_winner` (the same visit_id twice in a file, other content: the later row wins),
  `superseded_by_later_file` / `repeated_from_earlier_file` (a late-evening visit exported
  again at the top of the next day's file, its identification completed: the later file wins);
- file faults (`sim.file_deliveries.sim_file_fault`): `missing_header_column` (unreadable),
  `extra_unknown_column` (schema drift, loads), `many_bad_rows` (an export bug: the file's
  quarantine share exceeds 5 %), `correction` (the file delivered again 1-3 days later under
  the same name: a few rows changed, `sim_correction = 'changed'`, one row removed, named in
  `sim_detail`).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import random
import unicodedata
from datetime import date, datetime, time, timedelta
from pathlib import Path
from collections.abc import Iterator

from ioc_pipeline.reference.admin_units import load_reference
from simulator import file_truth, landing, people
from simulator.civil_status import Communes, communes_for
from simulator.store import (ICT, STATE_DDL, GeneratorStateError, connect, copy_rows, open_state,
                             write_state)

log = logging.getLogger(__name__)

SOURCE = "health_visits"
TRUTH = "sim.health_visits_truth"
REFORM = date(2025, 7, 1)           # 2025 commune codes for visits from this local date on
FIELDS = ("visit_id", "facility_code", "commune_code", "visit_at", "patient_cccd", "bhyt_card_no",
          "identification")
TRUTH_COLUMNS = ("file_name", "delivery_no", "row_no") + FIELDS + ("sim_fault", "sim_duplicate",
                                                                    "sim_correction")
IDENTIFICATIONS = ("chip_cccd", "vneid_qr", "bhyt_card", "paper")
CHIP = ("chip_cccd", "vneid_qr")
EXTRA_COLUMN = "khoa"               # the department: what a newer export version adds
DEPARTMENTS = ("Khoa Khám bệnh", "Khoa Nội", "Khoa Nhi", "Khoa Ngoại", "Khoa Cấp cứu",
               "Khoa Sản", "Khoa Mắt", "Khoa Răng Hàm Mặt", "Khoa Y học cổ truyền")
FAULT_RATE = 0.012
BAD_FILE_FAULT_RATE = 0.15          # rows given a fault in a `many_bad_rows` file
EXACT_COPY_RATE = 0.004
IN_FILE_REPEAT_RATE = 0.004
CARRY_RATE = 0.35                   # of eligible visits from 19:00 on: exported again next day
# file faults, per facility-day file
MISSING_COLUMN_RATE = 0.025
EXTRA_COLUMN_RATE = 0.03
MANY_BAD_ROWS_RATE = 0.02
CORRECTION_RATE = 0.04
MAX_CORRECTION_LAG = 3
CORRECTION_CHANGE_SHARE = 0.05      # of the eligible rows a correction changes

DDL = STATE_DDL + file_truth.DDL + """
CREATE TABLE IF NOT EXISTS sim.health_visits_truth (
    file_name      text NOT NULL,
    delivery_no    integer NOT NULL,
    row_no         integer NOT NULL,     -- 1-based data row in the file
    visit_id       text,
    facility_code  text,
    commune_code   text,
    visit_at       text,                 -- as written: local time, no offset
    patient_cccd   text,
    bhyt_card_no   text,
    identification text,
    sim_fault      text,                 -- NULL = clean; else the injected row fault
    sim_duplicate  text,                 -- see the module docstring
    sim_correction text,                 -- 'changed' in a correction delivery
    PRIMARY KEY (file_name, delivery_no, row_no)
);
COMMENT ON TABLE sim.health_visits_truth IS
    'Simulator SOURCE side of health_visits (synthetic, clear IDs): every delivered row version.';
"""

# Fault label -> relative weight. Labels are what tests match on; see _apply_fault.
FAULT_WEIGHTS = {
    "missing_required": 3, "no_patient_id": 2, "cccd_bad_format": 1, "cccd_bad_prefix": 1,
    "cccd_birth_year_future": 1, "bhyt_card_malformed": 2, "commune_unknown": 1,
    "commune_outside_province": 1, "legacy_code_after_reform": 2, "new_code_before_reform": 1,
    "visit_in_future": 1, "visit_at_invalid": 1, "enum_invalid": 2,
}
_CARD_KINDS = {"child": ("TE",), "pupil": ("HS",), "adult": ("DN", "GD", "HC", "CN", "HN", "BT"),
               "senior": ("HT", "GD", "BT", "CC")}


@dataclasses.dataclass(frozen=True)
class Facility:
    code: str
    legacy_commune: str
    commune_2025: str
    share: float          # of the province's visits
    bom: bool             # its export tool writes a UTF-8 BOM
    line_end: str
    chip_offset: float    # how far ahead of the province its chip-reader roll-out is

    def commune_on(self, d: date) -> str:
        return self.legacy_commune if d < REFORM else self.commune_2025


@dataclasses.dataclass(frozen=True)
class Pools:
    communes: Communes
    facilities: tuple[Facility, ...]


def pools_for(province_code: str, facilities: int) -> Pools:
    """The province's facilities, each in a legacy commune whose 2025 unit is in the province.
    Drawn in order from a fixed RNG: the first k facilities are the same whatever the count."""
    if facilities <= 0:
        raise ValueError("facilities must be positive")
    ref = load_reference()
    communes = communes_for(province_code)
    rng = random.Random(f"health-facilities:{province_code}")
    drawn = []
    for i in range(facilities):
        legacy = rng.choice(communes.legacy_inside)
        weight = 3.0 if i == 0 else rng.uniform(0.5, 1.6)   # the provincial general hospital first
        # export tools differ: every third one writes a BOM, every other one CRLF
        drawn.append((f"{province_code}{i + 1:03d}", legacy, ref.to_2025(legacy), weight,
                      i % 3 == 1, "\r\n" if i % 2 == 0 else "\n", rng.uniform(-0.08, 0.08)))
    total = sum(w for _, _, _, w, _, _, _ in drawn)
    return Pools(communes, tuple(Facility(c, lg, nw, w / total, bom, le, off)
                                 for c, lg, nw, w, bom, le, off in drawn))


def file_name(facility_code: str, d: date) -> str:
    return f"health/bhyt_visits_{facility_code}_{d:%Y%m%d}.csv"


def _rounded(rng: random.Random, x: float) -> int:
    return int(x) + (1 if rng.random() < x - int(x) else 0)


def _weekday(d: date) -> float:
    """Outpatient clinics close on Sunday afternoons; emergencies never do."""
    return (1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.35)[d.weekday()]


def chip_share(d: date, facility: Facility) -> float:
    """Share of visits identified by chip ID or VNeID QR: readers rolled out since 2023,
    approaching the 2024 field figure (~62 %)."""
    base = 0.62 - 0.40 * math.exp(-(d - date(2023, 1, 1)).days / 400)
    return min(0.95, max(0.02, base + facility.chip_offset))


def _qr_share(d: date) -> float:
    """Of chip+QR identifications, the VNeID QR share grows as level-2 accounts spread."""
    return min(0.6, 0.15 + max(0, (d - date(2023, 1, 1)).days) / 2500)


def _second(rng: random.Random) -> int:
    """Seconds after midnight: outpatient hours mostly, emergencies around the clock."""
    u = rng.random()
    if u < 0.55:
        return rng.randrange(7 * 3600, 11 * 3600 + 1800)
    if u < 0.85:
        return rng.randrange(13 * 3600 + 1800, 16 * 3600 + 1800)
    return rng.randrange(86400)


def _bhyt_card(rng: random.Random, age: int) -> str:
    group = "child" if age < 6 else "pupil" if age < 18 else "adult" if age < 60 else "senior"
    kind = rng.choice(_CARD_KINDS[group])
    benefit = rng.choices("12345", (10, 15, 20, 50, 5))[0]
    province = rng.choices(("48", "49", "46", "51", "79", "01"), (75, 15, 3, 3, 2, 2))[0]
    return f"{kind}{benefit}{province}{rng.randrange(10**10):010d}"


def _clean_visit(rng: random.Random, fac: Facility, d: date, i: int, second: int,
                 communes: Communes) -> dict:
    age = rng.choices((rng.randint(0, 5), rng.randint(6, 14), rng.randint(15, 59),
                       rng.randint(60, 95)), (12, 8, 50, 30))[0]
    birth = date(d.year - age, rng.randint(1, 12), rng.randint(1, 28))
    has_cccd = rng.random() < (0.97 if age >= 14 else 0.75)
    cccd = people.cccd(rng, birth, rng.choice("MF"), people.local_prefix(rng, communes.home_prefixes)) \
        if has_cccd else ""
    card = _bhyt_card(rng, age) if (rng.random() < 0.96 or not has_cccd) else ""
    if has_cccd and rng.random() < chip_share(d, fac) / 0.93:
        ident = "vneid_qr" if rng.random() < _qr_share(d) else "chip_cccd"
    else:
        ident = "bhyt_card" if card and rng.random() < 0.8 else "paper"
    at = datetime.combine(d, time()) + timedelta(seconds=second)
    return {"visit_id": f"{fac.code}{d:%y%m%d}{i:05d}", "facility_code": fac.code,
            "commune_code": fac.commune_on(d), "visit_at": f"{at:%Y-%m-%d %H:%M:%S}",
            "patient_cccd": cccd, "bhyt_card_no": card, "identification": ident,
            "fault": None, "dup": None, "correction": None}


def _applicable(kind: str, d: date, c: Communes) -> bool:
    return {"legacy_code_after_reform": d >= REFORM and bool(c.legacy_not_2025),
            "new_code_before_reform": d < REFORM and bool(c.current_not_legacy),
            "commune_outside_province": bool(c.legacy_outside if d < REFORM else c.current_outside),
            }.get(kind, True)


def _apply_fault(rng: random.Random, v: dict, kind: str, d: date, c: Communes) -> None:
    """Make a clean visit break exactly the rule named by `kind`."""
    if kind in ("cccd_bad_format", "cccd_bad_prefix", "cccd_birth_year_future") and not v["patient_cccd"]:
        v["patient_cccd"] = people.cccd(rng, date(1980, 5, 5), "F", rng.choice(c.home_prefixes))
    x = v["patient_cccd"]
    if kind == "missing_required":
        v[rng.choice(("facility_code", "commune_code", "visit_at", "identification"))] = ""
    elif kind == "no_patient_id":
        v["patient_cccd"] = v["bhyt_card_no"] = ""
        v["identification"] = "paper"
    elif kind == "cccd_bad_format":
        v["patient_cccd"] = rng.choice((x[:11], x[:6] + "O" + x[7:], x + "7", f"{x[:3]} {x[3:6]} {x[6:]}"))
    elif kind == "cccd_bad_prefix":
        v["patient_cccd"] = rng.choice(people.BAD_PREFIXES) + x[3:]
    elif kind == "cccd_birth_year_future":
        v["patient_cccd"] = x[:3] + rng.choice("4567") + x[4:]
    elif kind == "bhyt_card_malformed":
        card = v["bhyt_card_no"] or _bhyt_card(rng, 40)
        v["bhyt_card_no"] = rng.choice((card.lower(), card[:-1], card + "0", f"{card[:2]} {card[2:]}",
                                        card[:2] + card[3:], "X" + card[1:2] + "-" + card[2:]))
    elif kind == "commune_unknown":
        v["commune_code"] = rng.choice(c.unknown)
    elif kind == "commune_outside_province":
        v["commune_code"] = rng.choice(c.legacy_outside if d < REFORM else c.current_outside)
    elif kind == "legacy_code_after_reform":
        v["commune_code"] = rng.choice(c.legacy_not_2025)
    elif kind == "new_code_before_reform":
        v["commune_code"] = rng.choice(c.current_not_legacy)
    elif kind == "visit_in_future":   # a year typo at the reception desk
        v["visit_at"] = str(d.year + 40) + v["visit_at"][4:]
    elif kind == "visit_at_invalid":
        at = datetime.strptime(v["visit_at"], "%Y-%m-%d %H:%M:%S")
        v["visit_at"] = rng.choice((f"{at:%d/%m/%Y %H:%M}", f"{at:%Y-%m-}{32 + at.day % 5} {at:%H:%M:%S}",
                                    f"{at:%Y-%m-%d} 25:{at:%M:%S}"))
    elif kind == "enum_invalid":
        v["identification"] = rng.choice(("CCCD", "chip", "VNeID", "the_bhyt", "QR", "giay_to_khac"))
    else:  # pragma: no cover - FAULT_WEIGHTS and this function must list the same kinds
        raise ValueError(kind)
    v["fault"] = kind


@dataclasses.dataclass(frozen=True)
class FilePlan:
    fault: str | None          # missing_header_column | extra_unknown_column | many_bad_rows
    detail: str | None         # the missing or extra column
    delivered_at: datetime
    correction_lag: int | None
    corrected_at: datetime | None


def file_plan(seed: int, fac: Facility, d: date) -> FilePlan:
    rng = random.Random(f"{seed}:{SOURCE}:file:{fac.code}:{d.isoformat()}")
    u = rng.random()
    missing = rng.choice(FIELDS[1:])
    fault, detail = None, None
    if u < MISSING_COLUMN_RATE:
        fault, detail = "missing_header_column", missing
    elif u < MISSING_COLUMN_RATE + EXTRA_COLUMN_RATE:
        fault, detail = "extra_unknown_column", EXTRA_COLUMN
    elif u < MISSING_COLUMN_RATE + EXTRA_COLUMN_RATE + MANY_BAD_ROWS_RATE:
        fault = "many_bad_rows"
    # the nightly export runs after midnight; a correction in office hours days later
    delivered = datetime.combine(d + timedelta(days=1), time(0, 20), ICT) + timedelta(seconds=rng.randrange(5400))
    lag = rng.randint(1, MAX_CORRECTION_LAG)
    corrected = rng.random() < CORRECTION_RATE and fault is None
    at = datetime.combine(d + timedelta(days=lag), time(9), ICT) + timedelta(seconds=rng.randrange(7 * 3600))
    return FilePlan(fault, detail, delivered, lag if corrected else None, at if corrected else None)


@dataclasses.dataclass(frozen=True)
class Ctx:
    seed: int
    visits_per_day: int
    pools: Pools
    first_day: date                  # the first day with files: nothing carries into it


def _day_visits(ctx: Ctx, fac: Facility, d: date) -> Iterator[dict]:
    """The visits of (facility, day) in file order, faults and in-file duplicates included."""
    c = ctx.pools.communes
    rng = random.Random(f"{ctx.seed}:{SOURCE}:{fac.code}:{d.isoformat()}")
    rate = FAULT_RATE if file_plan(ctx.seed, fac, d).fault != "many_bad_rows" else BAD_FILE_FAULT_RATE
    n = _rounded(rng, ctx.visits_per_day * fac.share * _weekday(d))
    seconds = sorted(_second(rng) for _ in range(n))
    kinds = [k for k in FAULT_WEIGHTS if _applicable(k, d, c)]
    for i, second in enumerate(seconds):
        v = _clean_visit(rng, fac, d, i + 1, second, c)
        if rng.random() < rate:
            _apply_fault(rng, v, rng.choices(kinds, [FAULT_WEIGHTS[k] for k in kinds])[0], d, c)
        u, carry = rng.random(), rng.random()
        if u < EXACT_COPY_RATE:
            v["dup"] = "exact_copy"
            yield v
            yield dict(v)
        elif u < EXACT_COPY_RATE + IN_FILE_REPEAT_RATE:
            stale = dict(v, identification="paper" if v["identification"] != "paper" else "bhyt_card",
                         dup="superseded_in_file")
            v["dup"] = "in_file_winner"
            yield stale
            yield v
        else:
            if (v["fault"] is None and second >= 19 * 3600 and v["patient_cccd"]
                    and v["identification"] in ("bhyt_card", "paper") and carry < CARRY_RATE):
                v["dup"] = "superseded_by_later_file"
            yield v


def _carried_in(ctx: Ctx, fac: Facility, d: date) -> list[dict]:
    """Yesterday's late visits, exported again today with the VNeID check completed."""
    prev = d - timedelta(days=1)
    if prev < ctx.first_day:
        return []
    return [dict(v, identification="vneid_qr", dup="repeated_from_earlier_file")
            for v in _day_visits(ctx, fac, prev) if v["dup"] == "superseded_by_later_file"]


def file_rows(ctx: Ctx, fac: Facility, d: date) -> Iterator[dict]:
    """The rows of the first delivery of (facility, day)'s file."""
    yield from _carried_in(ctx, fac, d)
    yield from _day_visits(ctx, fac, d)


def _corrected_rows(ctx: Ctx, fac: Facility, d: date) -> tuple[list[int] | None, Iterator[dict]]:
    """(removed visit_id, rows) of a correction: a few clean, unduplicated rows get another
    identification, one is removed. Two passes over the regenerated file keep memory flat."""
    eligible = [i for i, v in enumerate(file_rows(ctx, fac, d)) if v["fault"] is None and v["dup"] is None]
    rng = random.Random(f"{ctx.seed}:{SOURCE}:correction:{fac.code}:{d.isoformat()}")
    if not eligible:
        return None, file_rows(ctx, fac, d)
    removed = rng.choice(eligible)
    rest = [i for i in eligible if i != removed]
    changed = set(rng.sample(rest, min(len(rest), max(1, round(CORRECTION_CHANGE_SHARE * len(rest))))))
    removed_id: list = []

    def rows():
        for i, v in enumerate(file_rows(ctx, fac, d)):
            if i == removed:
                removed_id.append(v["visit_id"])
                continue
            if i in changed:
                options = [x for x in (IDENTIFICATIONS if v["patient_cccd"] else ("bhyt_card", "paper"))
                           if x != v["identification"] and (x != "bhyt_card" or v["bhyt_card_no"])]
                v = dict(v, identification=rng.choice(options), correction="changed")
            yield v
    return removed_id, rows()


def _extra_values(seed: int, fac: Facility, d: date) -> Iterator[str]:
    """The extra column's cells: department names, in NFD from this export tool now and then."""
    rng = random.Random(f"{seed}:{SOURCE}:extra:{fac.code}:{d.isoformat()}")
    while True:
        name = rng.choice(DEPARTMENTS)
        yield unicodedata.normalize("NFD", name) if rng.random() < 0.3 else name


def _deliver(conn, landing_dir, ctx: Ctx, fac: Facility, d: date, rows: Iterator[dict], *,
             delivery_no: int, delivered_at: datetime, file_fault: str | None, detail,
             plan: FilePlan) -> tuple[str, list[dict]]:
    """Write one delivery of the file and its truth; returns (expected status, carried-out rows)."""
    name = file_name(fac.code, d)
    header = [f for f in FIELDS if not (plan.fault == "missing_header_column" and f == plan.detail)]
    extra = _extra_values(ctx.seed, fac, d) if plan.fault == "extra_unknown_column" else None
    if extra is not None:
        header.append(EXTRA_COLUMN)
    tally, truth, carried = file_truth.KeyTally(), [], []

    def lines():
        for row_no, v in enumerate(rows, 1):
            tally.add(v["visit_id"], v["fault"])
            truth.append((name, delivery_no, row_no, *(v[f] for f in FIELDS), v["fault"], v["dup"],
                          v["correction"]))
            if v["dup"] == "superseded_by_later_file":
                carried.append(v)
            yield [v[f] for f in header if f != EXTRA_COLUMN] + ([next(extra)] if extra is not None else [])

    delivered = landing.deliver(landing_dir, name, landing.csv_writer(header, lines(), bom=fac.bom,
                                                                      line_end=fac.line_end), delivered_at)
    with conn.cursor() as cur:
        copy_rows(cur, TRUTH, TRUTH_COLUMNS, truth)
        status = file_truth.record(cur, source=SOURCE, delivered=delivered, delivery_no=delivery_no,
                                   named_date=d, delivered_at=delivered_at, tally=tally,
                                   file_fault=file_fault, detail=detail)
    return status, carried


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--visits-per-day": ("visits_per_day", 600, "health-insurance visits per weekday in the province"),
    "--health-days": ("health_days", 14, "days of visit files up to --until on the first call"),
    "--facilities": ("facilities", 6, "health facilities exporting files"),
}


def generate(dsn: str, landing_dir: Path | str, *, province_code: str = "48", until: date,
             visits_per_day: int = 600, health_days: int = 14, facilities: int = 6,
             seed: int = 6) -> dict:
    """Write (or extend up to `until`) the daily visit files of every facility into
    `landing_dir`/health, with their truth in `dsn`. The first call covers the `health_days`
    days up to `until`; a later call adds the days after the last one generated, plus the
    corrections delivered by then. `visits_per_day` is the province's total on a weekday.
    Returns {"files", "corrections", "rows", "failing_files"}.
    Raises GeneratorStateError if the store was made with another seed, volume, province or
    facility count."""
    if health_days <= 0:
        raise ValueError("health_days must be positive")
    pools = pools_for(province_code, facilities)
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="visits_per_day", volume=visits_per_day,
                           seed=seed, province_code=province_code,
                           start=until - timedelta(days=health_days - 1), until=until)
        with conn.cursor() as cur:
            done = file_truth.recorded(cur, SOURCE)
            cur.execute("SELECT min(named_date), array_agg(DISTINCT split_part(file_name, '_', 3))"
                        " FROM sim.file_deliveries WHERE source = %s", (SOURCE,))
            first_day, codes = cur.fetchone()
        if codes and set(codes) != {f.code for f in pools.facilities}:
            raise GeneratorStateError(f"sim store holds {SOURCE} for facilities {sorted(codes)}; "
                                      "use a fresh database for another facility count")
        ctx = Ctx(seed, state.records, pools, first_day or state.generated_until + timedelta(days=1))
        totals = {"files": 0, "corrections": 0, "rows": 0, "failing_files": 0}
        carried: dict[str, list[dict]] = {}    # facility -> yesterday's carried-out visits
        day = state.generated_until + timedelta(days=1)
        while day <= until:
            for fac in pools.facilities:
                name = file_name(fac.code, day)
                plan = file_plan(seed, fac, day)
                if name in done:
                    continue
                prev = carried.pop(fac.code, None)
                if prev is None or day - timedelta(days=1) < ctx.first_day:
                    rows = file_rows(ctx, fac, day)
                else:
                    rows = iter([dict(v, identification="vneid_qr", dup="repeated_from_earlier_file")
                                 for v in prev] + list(_day_visits(ctx, fac, day)))
                status, carried[fac.code] = _deliver(conn, landing_dir, ctx, fac, day, rows, delivery_no=1,
                                                     delivered_at=plan.delivered_at, file_fault=plan.fault,
                                                     detail=plan.detail, plan=plan)
                totals["files"] += 1
                totals["failing_files"] += status == "fails"
            for lag in range(1, MAX_CORRECTION_LAG + 1):
                d0 = day - timedelta(days=lag)
                for fac in pools.facilities if d0 >= ctx.first_day else ():
                    plan = file_plan(seed, fac, d0)
                    if plan.correction_lag != lag or done.get(file_name(fac.code, d0), 0) >= 2:
                        continue
                    removed, rows = _corrected_rows(ctx, fac, d0)
                    rows = list(rows)   # the removed id is known once the rows are drawn
                    _deliver(conn, landing_dir, ctx, fac, d0, iter(rows), delivery_no=2,
                             delivered_at=plan.corrected_at, file_fault="correction",
                             detail=f"removed {removed[0]}" if removed else None, plan=plan)
                    totals["corrections"] += 1
            with conn.cursor() as cur:
                write_state(cur, dataclasses.replace(state, generated_until=day))
            conn.commit()
            day += timedelta(days=1)
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {TRUTH}")
            totals["rows"] = cur.fetchone()[0]
        log.info("health_visits files done until %s: %s", until, totals)
        return totals
    finally:
        conn.close()


def expected_values(sim_dsn: str, landing_dir: Path | str, as_of: date,
                    files_until: date | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """Oracle from the ground truth alone: BHYT_CHIP_ID_VISITS_PCT per 2025 commune and for the
    province, over the visits whose local date lies in Jan 1 .. as_of of as_of's year, counting
    the version of each visit the contract leaves after every file named on or before
    `files_until` (default as_of) was taken: valid rows of files that load, the later named
    date winning. Legacy codes map to 2025 communes by the reference data."""
    province, rows = file_truth.current_rows(sim_dsn, landing_dir, SOURCE, TRUTH, "visit_id",
                                             "visit_at, commune_code, identification", files_until or as_of)
    return file_truth.flow_counts("BHYT_CHIP_ID_VISITS_PCT", [(at, code, ident in CHIP) for at, code, ident in rows],
                                  as_of, province, load_reference().to_2025)
