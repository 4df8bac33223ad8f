"""Source 5, `tuition` (Department of Education): the school-fee payment table.

Why this shape: tuition is an SQL source, so the simulator does not serve it over HTTP; it
creates the sector's own table `public.tuition_payments` (the contract's columns and types,
nothing else) in the simulator database, which the pipeline reads with its SQL extractor.
The ground truth (which rows carry which injected fault) lives apart in `sim.tuition_truth`,
so the pipeline never sees it.

Payments follow the school calendar (peaks in September and January, quiet summers); the
non-cash share rises from ~86 % in early 2024 towards ~94 % (the 2024 field figure is 91 %).
Schools sit in communes of the province: a school's commune code is the legacy one for
payments before 2025-07-01 (local date) and its 2025 unit from then on.

Every day's rows are drawn from an RNG seeded by (seed, day), so a store generated in one go
equals one generated day by day. Like a real table without a unique constraint it may hold
the same payment twice: an exact copy (`exact`), or a later corrected row of the same
payment_id (`superseded`: the corrected amount, a later updated_at, must win).
"""
from __future__ import annotations

import dataclasses
import logging
import random
from datetime import date, datetime, time, timedelta

from ioc_pipeline.reference.admin_units import load_reference
from simulator.civil_status import Communes, communes_for
from simulator.store import (ICT, STATE_DDL, GeneratorState, connect, open_state,
                             copy_rows, write_state)

log = logging.getLogger(__name__)

SOURCE = "tuition"
TABLE = "public.tuition_payments"
START = date(2024, 1, 1)
REFORM = date(2025, 7, 1)          # 2025 commune codes from this (local) payment date on
FAULT_RATE = 0.02                  # share of payments given one row fault
EXACT_COPY_RATE = 0.004            # the same row twice in the table (not a row fault)
CORRECTION_RATE = 0.01             # clean payments corrected by a second row later
CORRECTION_LAG_DAYS = 5
SCHOOLS = 80
CHUNK_DAYS = 60

CHANNELS = ("bank_transfer", "qr", "card", "e_wallet", "cash")
NONCASH_MIX = {"bank_transfer": 45, "qr": 30, "e_wallet": 15, "card": 10}
FIELDS = ("payment_id", "school_code", "commune_code", "student_ref", "school_year", "amount_vnd",
          "channel", "paid_at", "updated_at")
LEVELS = {"MN": (800, 3500), "TH": (300, 2500), "THCS": (500, 3500), "THPT": (1000, 5000)}  # kVND

DDL = STATE_DDL + """
CREATE TABLE IF NOT EXISTS public.tuition_payments (
    payment_id   text,
    school_code  text,
    commune_code text,
    student_ref  text,
    school_year  text,
    amount_vnd   bigint,
    channel      text,
    paid_at      timestamptz,
    updated_at   timestamptz
);
CREATE INDEX IF NOT EXISTS tuition_payments_updated ON public.tuition_payments (updated_at, payment_id);
COMMENT ON TABLE public.tuition_payments IS
    'Simulator SOURCE side of tuition (synthetic): the Department of Education payment table.';
CREATE TABLE IF NOT EXISTS sim.tuition_truth (
    payment_id    text PRIMARY KEY,
    sim_fault     text,            -- NULL = clean; else the injected row fault (quarantine expected)
    sim_duplicate text             -- NULL, 'exact' (row twice) or 'superseded' (a corrected row won)
);
"""

# Fault label -> relative weight. Labels are what tests match on; see _apply_fault.
FAULT_WEIGHTS = {
    "missing_required": 3, "enum_invalid": 2, "amount_not_positive": 2, "school_year_invalid": 2,
    "commune_unknown": 1, "commune_outside_province": 1, "legacy_code_after_reform": 2,
    "new_code_before_reform": 1, "paid_in_future": 1,
}


@dataclasses.dataclass(frozen=True)
class School:
    code: str
    level: str
    legacy_commune: str
    commune_2025: str

    def commune_on(self, d: date) -> str:
        return self.legacy_commune if d < REFORM else self.commune_2025


@dataclasses.dataclass(frozen=True)
class Pools:
    communes: Communes
    schools: tuple[School, ...]


def pools_for(province_code: str) -> Pools:
    """The province's schools (each in a legacy commune with a 2025 unit of the province)."""
    ref = load_reference()
    communes = communes_for(province_code)
    rng = random.Random(f"tuition-schools:{province_code}")
    schools = []
    for i in range(SCHOOLS):
        level = rng.choice(sorted(LEVELS))
        legacy = rng.choice(communes.legacy_inside)
        schools.append(School(f"{province_code}{level}{i + 1:03d}", level, legacy, ref.to_2025(legacy)))
    return Pools(communes, tuple(schools))


def cutoff(day: date) -> datetime:
    """Rows of `day` carry updated_at before this instant."""
    return datetime.combine(day + timedelta(days=1), time(), ICT)


def _day_weight(d: date) -> float:
    """School calendar (fees at the start of each semester) times the week."""
    month = (0.6, 1.6, 1.0, 0.6, 0.6, 0.4, 0.2, 0.2, 0.5, 2.5, 1.5, 0.7, 0.7)[d.month]
    return month * (1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.3)[d.weekday()]


def _rounded(rng: random.Random, x: float) -> int:
    return int(x) + (1 if rng.random() < x - int(x) else 0)


def day_count(seed: int, rate: float, d: date) -> int:
    return _rounded(random.Random(f"{seed}:tun:{d.isoformat()}"), rate * _day_weight(d))


def payment_id(d: date, i: int) -> str:
    return f"HP{d:%Y%m%d}{i:05d}"


def school_year_of(d: date) -> str:
    """The school year runs from August to the next July."""
    y = d.year if d.month >= 8 else d.year - 1
    return f"{y}-{y + 1}"


def noncash_share(d: date) -> float:
    progress = min(1.0, max(0.0, (d - START).days / 1095))
    return 0.86 + 0.08 * progress


def _paid_at(rng: random.Random, d: date, channel: str) -> datetime:
    day0 = datetime.combine(d, time(), ICT)
    if channel == "cash":  # at the school's office
        return day0 + timedelta(seconds=rng.randrange(7 * 3600, 17 * 3600))
    u = rng.random()       # apps: daytime, evenings, a few around midnight
    hours = rng.uniform(6, 18) if u < 0.7 else rng.uniform(18, 24) if u < 0.95 else rng.uniform(0, 6)
    return day0 + timedelta(seconds=min(int(hours * 3600), 86399))


def _clean_payment(rng: random.Random, d: date, i: int, pools: Pools) -> dict:
    school = rng.choice(pools.schools)
    if rng.random() < noncash_share(d):
        channel = rng.choices(list(NONCASH_MIX), list(NONCASH_MIX.values()))[0]
    else:
        channel = "cash"
    lo, hi = LEVELS[school.level]
    paid = _paid_at(rng, d, channel)
    # posted by the school's system seconds to an hour later, within the same day
    updated = min(paid + timedelta(seconds=rng.randrange(5, 3600)), cutoff(d) - timedelta(seconds=1))
    year = school_year_of(d)
    return {
        "payment_id": payment_id(d, i), "school_code": school.code, "commune_code": school.commune_on(d),
        "student_ref": f"{school.code}-{year[2:4]}{rng.randrange(1, 2500):04d}",
        "school_year": year, "amount_vnd": rng.randrange(lo, hi) * 1000, "channel": channel,
        "paid_at": paid, "updated_at": updated, "fault": None,
    }


def _applicable(kind: str, d: date, pools: Pools) -> bool:
    c = pools.communes
    return {
        "legacy_code_after_reform": d >= REFORM and bool(c.legacy_not_2025),
        "new_code_before_reform": d < REFORM and bool(c.current_not_legacy),
        "commune_outside_province": bool(c.legacy_outside if d < REFORM else c.current_outside),
    }.get(kind, True)


def _apply_fault(rng: random.Random, p: dict, kind: str, d: date, pools: Pools) -> None:
    """Make a clean payment break exactly the rule named by `kind`."""
    c = pools.communes
    if kind == "missing_required":
        field = rng.choice(("school_code", "commune_code", "student_ref", "school_year", "amount_vnd",
                            "channel", "paid_at"))
        text = field not in ("amount_vnd", "paid_at")
        p[field] = "" if text and rng.random() < 0.5 else None
    elif kind == "enum_invalid":
        p["channel"] = rng.choice(("Cash", "tien_mat", "chuyen_khoan", "momo", "QR", "transfer"))
    elif kind == "amount_not_positive":
        p["amount_vnd"] = rng.choice((0, -p["amount_vnd"]))
    elif kind == "school_year_invalid":
        y = int(p["school_year"][:4])
        p["school_year"] = rng.choice((f"{y}/{y + 1}", f"{y}-{y + 2}", f"{y % 100}-{(y + 1) % 100}",
                                       str(y), f"{y + 1}-{y}", f"HK1 {y}-{y + 1}"))
    elif kind == "commune_unknown":
        p["commune_code"] = rng.choice(c.unknown)
    elif kind == "commune_outside_province":
        p["commune_code"] = rng.choice(c.legacy_outside if d < REFORM else c.current_outside)
    elif kind == "legacy_code_after_reform":
        p["commune_code"] = rng.choice(c.legacy_not_2025)
    elif kind == "new_code_before_reform":
        p["commune_code"] = rng.choice(c.current_not_legacy)
    elif kind == "paid_in_future":  # a year typo: decades after any as-of date
        p["paid_at"] = p["paid_at"].replace(year=p["paid_at"].year + 40)
    else:  # pragma: no cover - FAULT_WEIGHTS and this function must list the same kinds
        raise ValueError(kind)
    p["fault"] = kind


def day_payments(seed: int, rate: float, d: date, pools: Pools) -> list[dict]:
    """The payments made on (local) day d, faults included, in payment_id order."""
    rng = random.Random(f"{seed}:tu:{d.isoformat()}")
    kinds = [k for k in FAULT_WEIGHTS if _applicable(k, d, pools)]
    out = []
    for i in range(day_count(seed, rate, d)):
        p = _clean_payment(rng, d, i, pools)
        if rng.random() < FAULT_RATE:
            _apply_fault(rng, p, rng.choices(kinds, [FAULT_WEIGHTS[k] for k in kinds])[0], d, pools)
        p["duplicate"] = "exact" if rng.random() < EXACT_COPY_RATE else None
        out.append(p)
    return out


def day_corrections(seed: int, rate: float, d: date, pools: Pools) -> list[dict]:
    """Corrected rows written on day d for clean payments of CORRECTION_LAG_DAYS earlier: the
    amount recalculated (a discount or a missed item), updated_at on day d."""
    d0 = d - timedelta(days=CORRECTION_LAG_DAYS)
    if d0 < START:
        return []
    rng = random.Random(f"{seed}:tuc:{d.isoformat()}")
    out = []
    for p in day_payments(seed, rate, d0, pools):
        if p["fault"] is None and p["duplicate"] is None and rng.random() < CORRECTION_RATE:
            fixed = dict(p, amount_vnd=max(1000, p["amount_vnd"] + rng.choice((-1, 1)) * rng.randrange(1, 300) * 1000),
                         updated_at=datetime.combine(d, time(), ICT) + timedelta(seconds=rng.randrange(8 * 3600, 17 * 3600)),
                         duplicate="superseded")
            out.append(fixed)
    return out


def _flush(conn, rows: list[dict], state: GeneratorState) -> None:
    """Rows (copies included) and their truth, and the generation state: one transaction."""
    table_rows, truth = [], {}
    for p in rows:
        copies = 2 if p["duplicate"] == "exact" else 1
        table_rows += [tuple(p[f] for f in FIELDS)] * copies
        truth[p["payment_id"]] = (p["payment_id"], p["fault"], p["duplicate"])
    with conn.cursor() as cur:
        copy_rows(cur, TABLE, FIELDS, table_rows)
        cur.execute("CREATE TEMP TABLE tu_truth (payment_id text, sim_fault text, sim_duplicate text) ON COMMIT DROP")
        copy_rows(cur, "pg_temp.tu_truth", ("payment_id", "sim_fault", "sim_duplicate"), truth.values())
        cur.execute("""INSERT INTO sim.tuition_truth SELECT * FROM pg_temp.tu_truth
                       ON CONFLICT (payment_id) DO UPDATE SET sim_duplicate = EXCLUDED.sim_duplicate""")
        write_state(cur, state)
    conn.commit()


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--tuition-payments": ("payments", 3000, "school-fee payments from 2024-01-01 to --until"),
}


def generate(dsn: str, *, province_code: str = "48", until: date, payments: int = 3000,
             seed: int = 6) -> dict:
    """Generate (or extend up to `until`) public.tuition_payments and sim.tuition_truth in `dsn`.

    `payments` is the expected number made from 2024-01-01 to the first call's `until` (the
    daily rate is then kept for extensions). Returns {"days", "payments", "rows"}.
    Raises GeneratorStateError if the store was generated with another seed, volume or province.
    """
    pools = pools_for(province_code)
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="payments", volume=payments, seed=seed,
                           province_code=province_code, start=START, until=until, day_weight=_day_weight)
        totals = {"days": 0, "payments": 0, "rows": 0}
        day = state.generated_until + timedelta(days=1)
        pending: list[dict] = []
        while day <= until:
            new = day_payments(seed, state.daily_rate, day, pools)
            pending += new + day_corrections(seed, state.daily_rate, day, pools)
            totals["days"] += 1
            totals["payments"] += len(new)
            if totals["days"] % CHUNK_DAYS == 0 or day == until:
                state = dataclasses.replace(state, generated_until=day)
                _flush(conn, pending, state)
                totals["rows"] += sum(2 if p["duplicate"] == "exact" else 1 for p in pending)
                pending = []
            day += timedelta(days=1)
        log.info("tuition generation done until %s: %s", until, totals)
        return totals
    finally:
        conn.close()
