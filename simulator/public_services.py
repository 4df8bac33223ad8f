"""Source 3, `public_services` (provincial administrative-procedure system): dossier generator.

Why this shape: a dossier is not written once; it moves received -> processing -> completed
(or rejected / withdrawn) and its result may be digitized days later, and every move bumps
`updated_at`. The incremental pipeline must see those moves night after night. So each
dossier gets its whole life planned at birth (seeded by (seed, day)) and stored in
`sim_plan`; the served row is the plan's state at the store's cut-off (`until` + 1 day,
00:00 +07:00). Extending `until` only applies the planned events that fall before the new
cut-off, so a store generated in one go equals one generated day by day.

Faults of sources.md ("What goes wrong") are injected at a small rate and labelled in
`sim_fault` (ground truth for tests); a dossier whose plan ends `completed` without
`completed_at` is clean until that last event, and labelled from then on.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import unicodedata
from datetime import date, datetime, time, timedelta

from ioc_pipeline.reference.admin_units import load_reference
from simulator.civil_status import Communes, communes_for
from simulator.resource import IncrementalResource
from simulator.store import (ICT, STATE_DDL, GeneratorState, connect, open_state,
                             copy_rows, write_state)

log = logging.getLogger(__name__)

SOURCE = "public_services"
START = date(2024, 1, 1)
REFORM = date(2025, 7, 1)          # 2025 commune codes from this (local) submission date on
FAULT_RATE = 0.02                  # share of new dossiers given one row fault
SERVED_TWICE_RATE = 0.004          # exact duplicates on the wire (not a row fault)
PROVINCE_LEVEL_SHARE = 0.15        # dossiers received by province-level agencies: no commune
ESSENTIAL_SHARE = 0.6
ON_TIME = 0.90
DIGITIZED_AT_COMPLETION = 0.72     # then a third of the rest is digitized later: ~81 %
LATE_DIGITIZATION = 0.33
CHUNK_ROWS = 20_000

CHANNELS = ("online", "in_person", "postal")
STATUSES = ("received", "processing", "completed", "rejected", "withdrawn")
FIELDS = ("dossier_id", "procedure_code", "essential_service", "commune_code", "receiving_agency",
          "channel", "submitted_at", "due_at", "status", "completed_at", "result_digitized",
          "updated_at")
STATIC = ("dossier_id", "procedure_code", "essential_service", "commune_code", "receiving_agency",
          "channel", "submitted_at", "due_at")
COLUMNS = FIELDS + ("sim_fault", "sim_served_twice", "sim_wire_override", "sim_plan", "sim_next_event_at")

# Procedure code (national format) -> legal processing time in days. Synthetic codes.
ESSENTIAL_PROCEDURES = {f"1.00{4000 + 37 * k}": days for k, days in enumerate(
    (1, 3, 3, 5, 5, 7, 2, 3, 10, 15, 5, 3, 1, 7, 10, 5, 3, 2, 15, 7, 5, 3, 10, 5, 3))}
OTHER_PROCEDURES = {f"2.00{1000 + 53 * k}": days for k, days in enumerate(
    (5, 10, 15, 20, 7, 3, 30, 10, 5, 15, 12, 8, 20, 5, 10))}
PROVINCE_AGENCIES = ("Sở Tư pháp", "Sở Xây dựng", "Sở Nông nghiệp và Môi trường", "Sở Y tế",
                     "Sở Giáo dục và Đào tạo", "Sở Nội vụ", "Sở Tài chính", "Công an thành phố",
                     "Trung tâm Phục vụ hành chính công")

DDL = STATE_DDL + """
CREATE TABLE IF NOT EXISTS sim.public_services_dossiers (
    dossier_id        text PRIMARY KEY,
    procedure_code    text,
    essential_service boolean,
    commune_code      text,
    receiving_agency  text,
    channel           text,
    submitted_at      timestamptz,
    due_at            timestamptz,
    status            text,
    completed_at      timestamptz,
    result_digitized  boolean,
    updated_at        timestamptz NOT NULL,
    sim_fault         text,              -- NULL = clean; else the injected fault's label
    sim_served_twice  boolean NOT NULL DEFAULT false,
    sim_wire_override jsonb,             -- values sent instead of the typed ones (bad types)
    sim_plan          jsonb NOT NULL,    -- the dossier's planned events (see module doc)
    sim_next_event_at timestamptz        -- first planned event not applied yet; NULL = none
);
CREATE INDEX IF NOT EXISTS public_services_dossiers_updated
    ON sim.public_services_dossiers (updated_at, dossier_id) INCLUDE (sim_served_twice);
CREATE INDEX IF NOT EXISTS public_services_dossiers_next
    ON sim.public_services_dossiers (sim_next_event_at) WHERE sim_next_event_at IS NOT NULL;
COMMENT ON TABLE sim.public_services_dossiers IS
    'Simulator SOURCE side of public_services (synthetic). Current version per dossier.';
"""

RESOURCE = IncrementalResource(path="/api/v1/public-services/dossiers",
                               table="sim.public_services_dossiers", key="dossier_id",
                               fields=FIELDS, ddl=DDL)

# Fault label -> relative weight. Labels are what tests match on; see _apply_fault.
FAULT_WEIGHTS = {
    "missing_required": 3, "enum_invalid": 2, "completed_without_completed_at": 2,
    "commune_unknown": 1, "commune_outside_province": 1, "legacy_code_after_reform": 3,
    "new_code_before_reform": 1, "submitted_in_future": 1, "bool_as_string": 1,
    "timestamp_invalid": 1,
}


@dataclasses.dataclass(frozen=True)
class Pools:
    """Commune code pools (shared with civil_status) and the names agencies are called by."""

    communes: Communes
    names: dict[str, str]            # commune code (either scheme) -> unit name


def pools_for(province_code: str) -> Pools:
    ref = load_reference()
    names = {u.code: u.name for u in ref.units if u.level == "commune"
             and u.province_code in (province_code, *ref.legacy_provinces_of(province_code))}
    return Pools(communes_for(province_code), names)


def cutoff(day: date) -> datetime:
    """Changes before this instant are in the store generated up to `day`."""
    return datetime.combine(day + timedelta(days=1), time(), ICT)


def _day_weight(d: date) -> float:
    """Offices work weekdays; online dossiers also arrive at weekends."""
    return (1.0, 1.0, 1.0, 1.0, 1.0, 0.4, 0.25)[d.weekday()]


def _rounded(rng: random.Random, x: float) -> int:
    return int(x) + (1 if rng.random() < x - int(x) else 0)


def day_count(seed: int, rate: float, d: date) -> int:
    return _rounded(random.Random(f"{seed}:psn:{d.isoformat()}"), rate * _day_weight(d))


def dossier_id(d: date, i: int) -> str:
    return f"HS{d:%Y%m%d}{i:05d}"


def _online_share(d: date, essential: bool) -> float:
    """Essential services: ~86 % online early 2024 rising to ~96 % late 2026 (Project 06)."""
    progress = min(1.0, max(0.0, (d - START).days / 1095))
    return (0.86 + 0.10 * progress) if essential else (0.45 + 0.20 * progress)


def _submitted_at(rng: random.Random, d: date, channel: str) -> datetime:
    day0 = datetime.combine(d, time(), ICT)
    if channel != "online":  # office hours
        return day0 + timedelta(seconds=rng.randrange(int(7.5 * 3600), 17 * 3600))
    u = rng.random()  # online: mostly daytime, some evenings, a few around midnight
    hours = (rng.uniform(7, 18) if u < 0.75 else rng.uniform(18, 24) if u < 0.95 else rng.uniform(0, 7))
    return day0 + timedelta(seconds=min(int(hours * 3600), 86399))


def _plan_events(rng: random.Random, submitted: datetime, due: datetime) -> list[dict]:
    """received -> processing -> completed/rejected/withdrawn, then maybe a late digitization."""
    ev = [{"at": submitted, "status": "received", "completed_at": None, "result_digitized": False}]
    start = submitted + timedelta(seconds=rng.uniform(600, max(900, min(86400, (due - submitted).total_seconds() / 2))))
    ev.append({"at": start, "status": "processing", "completed_at": None, "result_digitized": False})
    outcome = rng.choices(("completed", "rejected", "withdrawn"), (90, 6, 4))[0]
    if outcome != "completed":
        end = start + timedelta(seconds=rng.uniform(3600, max(7200, (due - start).total_seconds())))
        ev.append({"at": end, "status": outcome, "completed_at": None, "result_digitized": False})
        return ev
    if rng.random() < ON_TIME:
        done = start + timedelta(seconds=rng.uniform(60, max(120, (due - start).total_seconds())))
        done = min(done, due)
    else:
        done = due + timedelta(seconds=rng.uniform(3600, 10 * 86400))
    digitized = rng.random() < DIGITIZED_AT_COMPLETION
    ev.append({"at": done, "status": "completed", "completed_at": done, "result_digitized": digitized})
    if not digitized and rng.random() < LATE_DIGITIZATION:
        ev.append({"at": done + timedelta(seconds=rng.uniform(3600, 20 * 86400)), "status": "completed",
                   "completed_at": done, "result_digitized": True})
    return ev


def _clean_dossier(rng: random.Random, d: date, i: int, pools: Pools) -> dict:
    essential = rng.random() < ESSENTIAL_SHARE
    procs = ESSENTIAL_PROCEDURES if essential else OTHER_PROCEDURES
    code = rng.choice(sorted(procs))
    if rng.random() < _online_share(d, essential):
        channel = "online"
    else:
        channel = "postal" if rng.random() < 0.05 else "in_person"
    if rng.random() < PROVINCE_LEVEL_SHARE:
        commune, agency = None, rng.choice(PROVINCE_AGENCIES)
    else:
        commune = rng.choice(pools.communes.legacy if d < REFORM else pools.communes.current)
        agency = f"UBND {pools.names[commune]}"
    if rng.random() < 0.1:  # NFD text is legal (normalised by the pipeline), not a fault
        agency = unicodedata.normalize("NFD", agency)
    submitted = _submitted_at(rng, d, channel)
    due = datetime.combine(submitted.date() + timedelta(days=procs[code]), time(17), ICT)
    return {
        "dossier_id": dossier_id(d, i), "procedure_code": code, "essential_service": essential,
        "commune_code": commune, "receiving_agency": agency, "channel": channel,
        "submitted_at": submitted, "due_at": due,
        "events": _plan_events(rng, submitted, due),
        "fault": None, "wire": None, "served_twice": False,
    }


def _applicable(kind: str, p: dict, d: date, pools: Pools) -> bool:
    c = pools.communes
    return {
        "completed_without_completed_at": p["events"][-1]["status"] == "completed",
        "legacy_code_after_reform": d >= REFORM and bool(c.legacy_not_2025),
        "new_code_before_reform": d < REFORM and bool(c.current_not_legacy),
        "commune_outside_province": bool(c.legacy_outside if d < REFORM else c.current_outside),
    }.get(kind, True)


def _wire_timestamp(rng: random.Random, value: datetime) -> str:
    local = value.astimezone(ICT)
    return rng.choice((local.strftime("%Y-%m-%dT%H:%M:%S"),       # no offset: instant unknown
                       local.strftime("%d/%m/%Y %H:%M"), local.strftime("%Y-%m-%d")))


def _apply_fault(rng: random.Random, p: dict, kind: str, d: date, pools: Pools) -> None:
    """Make a clean plan break exactly the rule named by `kind`."""
    c = pools.communes
    if kind == "missing_required":
        field = rng.choice(("procedure_code", "essential_service", "receiving_agency", "channel",
                            "submitted_at", "due_at", "result_digitized"))
        if field == "result_digitized":
            for e in p["events"]:
                e["result_digitized"] = None
        elif field in ("procedure_code", "receiving_agency", "channel") and rng.random() < 0.5:
            p[field] = ""
        else:
            p[field] = None
    elif kind == "enum_invalid":
        if rng.random() < 0.5:
            p["channel"] = rng.choice(("Online", "truc_tuyen", "email", "kiosk", "truc_tiep"))
        else:
            bogus = rng.choice(("pending", "DONE", "da_xu_ly", "cancelled", "Completed"))
            for e in p["events"]:
                e["status"] = bogus
    elif kind == "completed_without_completed_at":
        # the fault starts with the completion event (clean before), and stays
        for e in p["events"][2:]:
            e["completed_at"], e["fault"] = None, kind
        return
    elif kind == "commune_unknown":
        p["commune_code"] = rng.choice(c.unknown)
    elif kind == "commune_outside_province":
        p["commune_code"] = rng.choice(c.legacy_outside if d < REFORM else c.current_outside)
    elif kind == "legacy_code_after_reform":
        p["commune_code"] = rng.choice(c.legacy_not_2025)
    elif kind == "new_code_before_reform":
        p["commune_code"] = rng.choice(c.current_not_legacy)
    elif kind == "submitted_in_future":  # a year typo: decades after any as-of date
        p["submitted_at"] = p["submitted_at"].replace(year=p["submitted_at"].year + 40)
    elif kind == "bool_as_string":
        field = rng.choice(("essential_service", "result_digitized"))
        p["wire"] = {field: rng.choice(("true", "false", "1", "yes", "có"))}
    elif kind == "timestamp_invalid":
        field = rng.choice(("submitted_at", "due_at"))
        p["wire"] = {field: _wire_timestamp(rng, p[field])}
    else:  # pragma: no cover - FAULT_WEIGHTS and this function must list the same kinds
        raise ValueError(kind)
    p["fault"] = kind


def day_dossiers(seed: int, rate: float, d: date, pools: Pools) -> list[dict]:
    """The plans of the dossiers submitted on (local) day d, faults included."""
    rng = random.Random(f"{seed}:ps:{d.isoformat()}")
    kinds, weights = list(FAULT_WEIGHTS), list(FAULT_WEIGHTS.values())
    out = []
    for i in range(day_count(seed, rate, d)):
        p = _clean_dossier(rng, d, i, pools)
        if rng.random() < FAULT_RATE:
            ok = [(k, w) for k, w in zip(kinds, weights) if _applicable(k, p, d, pools)]
            _apply_fault(rng, p, rng.choices([k for k, _ in ok], [w for _, w in ok])[0], d, pools)
        p["served_twice"] = rng.random() < SERVED_TWICE_RATE
        out.append(p)
    return out


# ---------------------------------------------------------------------------- plan <-> row

def _iso(v):
    return v.isoformat() if isinstance(v, datetime) else v


def plan_json(p: dict) -> dict:
    """The plan as stored in sim_plan (JSON-safe)."""
    out = {k: _iso(p[k]) for k in STATIC}
    out["fault"] = p["fault"]
    out["events"] = [{k: _iso(v) for k, v in e.items()} for e in p["events"]]
    return out


def state_at(plan: dict, cut: datetime) -> tuple[dict, datetime | None]:
    """(row of the dossier at instant `cut`, first event at or after `cut`). The first event is
    the submission itself, so a planned dossier always has a state once it exists."""
    ts = lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v  # noqa: E731
    applied = [e for e in plan["events"] if ts(e["at"]) < cut] or plan["events"][:1]
    pending = [ts(e["at"]) for e in plan["events"] if ts(e["at"]) >= cut]
    last = applied[-1]
    row = {k: ts(plan[k]) if k in ("submitted_at", "due_at") else plan[k] for k in STATIC}
    row.update(status=last["status"], completed_at=ts(last["completed_at"]),
               result_digitized=last["result_digitized"], updated_at=ts(last["at"]),
               sim_fault=plan["fault"] or last.get("fault"))
    return row, (min(pending) if pending else None)


# ---------------------------------------------------------------------------- loading

def _advance(cur, cut: datetime) -> int:
    """Apply every planned event before `cut` to the stored dossiers."""
    cur.execute("SELECT dossier_id, sim_plan FROM sim.public_services_dossiers"
                " WHERE sim_next_event_at < %s", (cut,))
    changed = []
    for did, plan in cur.fetchall():
        row, nxt = state_at(plan, cut)
        changed.append((did, row["status"], row["completed_at"], row["result_digitized"],
                        row["updated_at"], row["sim_fault"], nxt))
    if not changed:
        return 0
    cols = ("dossier_id", "status", "completed_at", "result_digitized", "updated_at", "sim_fault",
            "sim_next_event_at")
    cur.execute("CREATE TEMP TABLE ps_advance (dossier_id text, status text, completed_at timestamptz,"
                " result_digitized boolean, updated_at timestamptz, sim_fault text,"
                " sim_next_event_at timestamptz) ON COMMIT DROP")
    copy_rows(cur, "pg_temp.ps_advance", cols, changed)
    cur.execute("""UPDATE sim.public_services_dossiers d
                      SET status = a.status, completed_at = a.completed_at,
                          result_digitized = a.result_digitized, updated_at = a.updated_at,
                          sim_fault = a.sim_fault, sim_next_event_at = a.sim_next_event_at
                     FROM pg_temp.ps_advance a WHERE d.dossier_id = a.dossier_id""")
    return len(changed)


def _flush(conn, plans: list[dict], cut: datetime, state: GeneratorState) -> int:
    """Advance stored dossiers to `cut`, add the new ones at `cut`, save the state: one transaction."""
    with conn.cursor() as cur:
        moved = _advance(cur, cut)
        rows = []
        for p in plans:
            stored = plan_json(p)
            row, nxt = state_at(stored, cut)
            row.update(sim_served_twice=p["served_twice"], sim_wire_override=p["wire"],
                       sim_plan=stored, sim_next_event_at=nxt)
            rows.append(tuple(row[c] for c in COLUMNS))
        copy_rows(cur, RESOURCE.table, COLUMNS, rows)
        write_state(cur, state)
    conn.commit()
    return moved


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--dossiers": ("dossiers", 5000, "public-service dossiers from 2024-01-01 to --until"),
}


def generate(dsn: str, *, province_code: str = "48", until: date, dossiers: int = 5000,
             seed: int = 6) -> dict:
    """Generate (or extend up to `until`) the public_services source in schema `sim` of `dsn`.

    `dossiers` is the expected number submitted from 2024-01-01 to the first call's `until`
    (the daily rate is then kept for extensions). Returns {"days", "inserted", "updates"}.
    Raises GeneratorStateError if the store was generated with another seed, volume or province.
    """
    pools = pools_for(province_code)
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="dossiers", volume=dossiers, seed=seed,
                           province_code=province_code, start=START, until=until, day_weight=_day_weight)
        totals = {"days": 0, "inserted": 0, "updates": 0}
        day = state.generated_until + timedelta(days=1)
        plans: list[dict] = []
        while day <= until:
            plans += day_dossiers(seed, state.daily_rate, day, pools)
            totals["days"] += 1
            if len(plans) >= CHUNK_ROWS or day == until:
                state = dataclasses.replace(state, generated_until=day)
                totals["updates"] += _flush(conn, plans, cutoff(day), state)
                totals["inserted"] += len(plans)
                log.info("public_services generated up to %s (%d dossiers so far)", day, totals["inserted"])
                plans = []
            day += timedelta(days=1)
        log.info("public_services generation done until %s: %s", until, totals)
        return totals
    finally:
        conn.close()

