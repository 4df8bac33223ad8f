"""Source 2, `population` (Provincial Police): daily snapshots per commune, served over REST.

Why this shape: the pipeline asks this source for the snapshot of one date (`as_of=D`) and
keeps, per commune, the latest valid snapshot on or before D. So the simulator holds one
snapshot per day for a range of recent days, one row per current commune of the province,
with counts that grow slowly from day to day, and a few faulty rows per day labelled in
`sim_fault` so tests can compute the expected indicators without the pipeline.

Determinism: a commune's profile is seeded by (seed, commune) and its counts on day d are a
closed-form function of d, and a day's faults are seeded by (seed, d). Any day can be made
on its own: extending `until` only adds days, and repeating a call changes nothing.

Faults per day are few (at most MAX_FAULTS_PER_DAY rows of ~94), so a day's quarantine share
stays under the 5% threshold and the batch commits: the faults test quarantine, not failure.
A commune may also not report on a day (its row is absent): the pipeline then counts its
previous snapshot. A row may be served twice on the wire (`sim_served_twice`): an exact
duplicate, resolved by the pipeline, never quarantined, so it is not a `sim_fault`.
"""
from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from simulator.civil_status import Communes, communes_for
from simulator.store import (STATE_DDL, GeneratorState, GeneratorStateError, connect, copy_rows,
                             read_state, write_state)

log = logging.getLogger(__name__)

SOURCE = "population"
PATH = "/api/v1/population/communes"
EPOCH = date(2025, 7, 1)           # profiles are anchored on the reorganisation day
DEFAULT_DAYS = 60                  # days of snapshots kept back from `until`
NOT_REPORTED_RATE = 0.01           # a commune's row absent from a day's snapshot
SERVED_TWICE_RATE = 0.005          # exact duplicate rows on the wire
MAX_FAULTS_PER_DAY = 3
_FAULTS_PER_DAY_WEIGHTS = (40, 32, 18, 10)   # P(0..3 faulty rows in a day)

COUNTS = ("residents", "residents_14_plus", "cccd_issued", "vneid_level2_active",
          "records_verified", "bhyt_holders", "bhyt_linked_vneid")
FIELDS = ("commune_code", "as_of") + COUNTS
COLUMNS = ("snapshot_date", "seq") + FIELDS + ("sim_fault", "sim_served_twice", "sim_wire_override")
# (smaller, larger): the contract's invariants smaller <= larger
INVARIANTS = (("residents_14_plus", "residents"), ("cccd_issued", "residents_14_plus"),
              ("vneid_level2_active", "residents_14_plus"), ("records_verified", "residents"),
              ("bhyt_holders", "residents"), ("bhyt_linked_vneid", "bhyt_holders"))

# Fault label -> relative weight. Labels are what tests match on; see _apply_fault.
FAULT_WEIGHTS = {
    "invariant_broken": 4, "negative_count": 2, "commune_unknown": 1,
    "commune_outside_province": 1, "missing_field": 2, "int_as_string": 2,
    "as_of_mismatch": 2, "as_of_invalid": 1,
}

DDL = STATE_DDL + """
CREATE TABLE IF NOT EXISTS sim.population_snapshots (
    snapshot_date       date NOT NULL,     -- the as_of this row is served for
    seq                 integer NOT NULL,  -- order on the wire
    commune_code        text,
    as_of               date,
    residents           bigint,
    residents_14_plus   bigint,
    cccd_issued         bigint,
    vneid_level2_active bigint,
    records_verified    bigint,
    bhyt_holders        bigint,
    bhyt_linked_vneid   bigint,
    sim_fault           text,              -- NULL = clean; else the injected fault's label
    sim_served_twice    boolean NOT NULL DEFAULT false,
    sim_wire_override   jsonb,             -- values sent instead of the typed ones (bad types)
    PRIMARY KEY (snapshot_date, seq)
);
COMMENT ON TABLE sim.population_snapshots IS
    'Simulator SOURCE side of population: one synthetic snapshot per day and commune.';
"""


# ---------------------------------------------------------------------------- values

@dataclass(frozen=True)
class Profile:
    """A commune's counts at EPOCH and their daily growth; shares are of the parent count."""

    residents: int
    residents_growth: float       # relative, per day
    share_14_plus: float
    cccd: tuple[float, float, float]       # (share at EPOCH, gain per day, cap)
    vneid: tuple[float, float, float]
    verified: tuple[float, float, float]
    bhyt: tuple[float, float, float]
    linked: tuple[float, float, float]


def profile(seed: int, commune: str) -> Profile:
    rng = random.Random(f"{seed}:pop-profile:{commune}")
    u = rng.uniform
    return Profile(
        residents=int(min(150_000, max(3_000, rng.lognormvariate(math.log(30_000), 0.55)))),
        residents_growth=u(0.00001, 0.00008),
        share_14_plus=u(0.74, 0.82),
        cccd=(u(0.90, 0.96), u(0.00002, 0.00008), 0.99),
        vneid=(u(0.52, 0.66), u(0.0001, 0.0004), 0.75),
        verified=(u(0.86, 0.95), u(0.00003, 0.0001), 0.995),
        bhyt=(u(0.88, 0.93), u(0.00001, 0.00004), 0.96),
        linked=(u(0.45, 0.70), u(0.0002, 0.0006), 0.95),
    )


def _share(spec: tuple[float, float, float], t: int) -> float:
    start, gain, cap = spec
    return min(cap, max(0.0, start + gain * t))


def counts(p: Profile, d: date) -> dict[str, int]:
    """The true counts of a commune on day d: growing slowly, every invariant holding."""
    t = (d - EPOCH).days
    residents = round(p.residents * (1 + p.residents_growth * t))
    adults = int(residents * p.share_14_plus)
    holders = int(residents * _share(p.bhyt, t))
    return {
        "residents": residents,
        "residents_14_plus": adults,
        "cccd_issued": int(adults * _share(p.cccd, t)),
        "vneid_level2_active": int(adults * _share(p.vneid, t)),
        "records_verified": int(residents * _share(p.verified, t)),
        "bhyt_holders": holders,
        "bhyt_linked_vneid": int(holders * _share(p.linked, t)),
    }


# ---------------------------------------------------------------------------- faults

def _apply_fault(rng: random.Random, r: dict, kind: str, pools: Communes, used: set[str]) -> None:
    """Turn a clean row into one that breaks exactly the rule named by `kind`."""
    d = r["snapshot_date"]
    if kind == "invariant_broken":
        small, large = rng.choice(INVARIANTS)
        r[small] = r[large] + rng.randint(1, max(1, r[large] // 50))
    elif kind == "negative_count":
        field = rng.choice(COUNTS)
        r[field] = -rng.randint(1, max(1, r[field] // 100 + 1))
    elif kind in ("commune_unknown", "commune_outside_province"):
        pool = pools.unknown if kind == "commune_unknown" else pools.current_outside
        r["commune_code"] = rng.choice([c for c in pool if c not in used])
    elif kind == "missing_field":
        field = rng.choice(FIELDS)
        if field == "commune_code" and rng.random() < 0.5:
            r["commune_code"] = ""          # an empty string is a null (sources.md)
        else:
            r[field] = None
    elif kind == "int_as_string":
        field = rng.choice(COUNTS)
        r["sim_wire_override"] = {field: str(r[field])}
    elif kind == "as_of_mismatch":      # yesterday's row again, or a date after the request
        r["as_of"] = d + timedelta(days=rng.choice((-1, -1, -7, 1)))
    elif kind == "as_of_invalid":
        r["sim_wire_override"] = {"as_of": rng.choice((d.strftime("%d/%m/%Y"), d.strftime("%Y%m%d"),
                                                       f"{d.year}-02-30"))}
    else:  # pragma: no cover - FAULT_WEIGHTS and this function must list the same kinds
        raise ValueError(kind)
    r["sim_fault"] = kind


def day_rows(seed: int, d: date, pools: Communes) -> list[dict]:
    """The snapshot served for as_of=d, in wire order, faults included."""
    rng = random.Random(f"{seed}:pop:{d.isoformat()}")
    rows = []
    for code in sorted(pools.current):
        if rng.random() < NOT_REPORTED_RATE:
            continue
        rows.append({"snapshot_date": d, "commune_code": code, "as_of": d,
                     **counts(profile(seed, code), d),
                     "sim_fault": None, "sim_served_twice": False, "sim_wire_override": None})
    used = {r["commune_code"] for r in rows}
    # which rows and which kinds: drawn first, from their own stream, so that the values a
    # fault draws never shift the choice of the next fault
    pick = random.Random(f"{seed}:pop-faults:{d.isoformat()}")
    n_faults = min(pick.choices(range(MAX_FAULTS_PER_DAY + 1), _FAULTS_PER_DAY_WEIGHTS)[0], len(rows))
    chosen = pick.sample(range(len(rows)), n_faults)
    kinds = pick.choices(list(FAULT_WEIGHTS), list(FAULT_WEIGHTS.values()), k=n_faults)
    for index, kind in zip(chosen, kinds):
        _apply_fault(rng, rows[index], kind, pools, used)
        used.add(rows[index]["commune_code"])
    for seq, r in enumerate(rows):
        r["seq"] = seq
        r["sim_served_twice"] = rng.random() < SERVED_TWICE_RATE
    return rows


# ---------------------------------------------------------------------------- loading

# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--population-days": ("days", DEFAULT_DAYS, "days of population snapshots up to --until"),
}


def generate(dsn: str, *, province_code: str = "48", until: date, days: int = DEFAULT_DAYS,
             seed: int = 6) -> dict:
    """Generate the snapshots of the `days` days up to `until` (those not there yet).

    Returns {"days": days added, "rows": rows added}. Raises GeneratorStateError if the store
    holds population data of another seed or province (extending would mix two datasets).
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    pools = communes_for(province_code)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(DDL)
            state = read_state(cur, SOURCE)
            if state is not None and (state.seed, state.province_code) != (seed, province_code):
                raise GeneratorStateError(
                    f"sim store holds population for seed={state.seed}, province={state.province_code}; "
                    "use a fresh database for other parameters")
            cur.execute("SELECT DISTINCT snapshot_date FROM sim.population_snapshots")
            have = {r[0] for r in cur.fetchall()}
            new_days = [until - timedelta(days=k) for k in range(days - 1, -1, -1)
                        if until - timedelta(days=k) not in have]
            rows = [r for d in new_days for r in day_rows(seed, d, pools)]
            copy_rows(cur, "sim.population_snapshots", COLUMNS, (tuple(r[c] for c in COLUMNS) for r in rows))
            last = max([until] + ([state.generated_until] if state else []))
            write_state(cur, GeneratorState(SOURCE, seed, days, province_code, 0.0, last))
        conn.commit()
    finally:
        conn.close()
    log.info("population: %d snapshot days added up to %s (%d rows)", len(new_days), until, len(rows))
    return {"days": len(new_days), "rows": len(rows)}


# ---------------------------------------------------------------------------- serving

@dataclass(frozen=True)
class SnapshotResource:
    """What the HTTP server needs for a dated snapshot resource: `?as_of=&page=&page_size=`.

    total_items is the number of distinct keys of the snapshot (one stored row per key);
    rows served twice take a second slot, so total_pages may be larger than keys / size.
    """

    path: str = PATH
    table: str = "sim.population_snapshots"
    fields: tuple[str, ...] = FIELDS
    ddl: str = DDL

    def page(self, cur, as_of: date, page: int, size: int) -> dict:
        """One protocol page of the snapshot of `as_of` (run inside one read-only snapshot)."""
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE sim_served_twice) FROM {self.table}"
                    " WHERE snapshot_date = %s", (as_of,))
        keys, twice = cur.fetchone()
        cols = ", ".join(f"t.{c}" for c in self.fields + ("sim_wire_override",))
        cur.execute(
            f"SELECT {cols} FROM {self.table} t CROSS JOIN LATERAL generate_series(1, CASE WHEN"
            " t.sim_served_twice THEN 2 ELSE 1 END) AS rep(n) WHERE t.snapshot_date = %s"
            " ORDER BY t.seq, rep.n LIMIT %s OFFSET %s", (as_of, size, (page - 1) * size))
        names = [d[0] for d in cur.description]
        items = [self.to_item(dict(zip(names, row))) for row in cur.fetchall()]
        return {"items": items, "page": page, "page_size": size, "total_items": keys,
                "total_pages": math.ceil((keys + twice) / size)}

    def to_item(self, row: dict) -> dict:
        """One wire item: typed values in contract form, then the row's hostile overrides."""
        item = {f: (row[f].isoformat() if isinstance(row[f], date) else row[f]) for f in self.fields}
        override = row.get("sim_wire_override")
        if override:
            item.update(json.loads(override) if isinstance(override, str) else override)
        return item


RESOURCE = SnapshotResource()
