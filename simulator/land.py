"""Land registry simulator (sources.md §4): the table `public.land_certificates` of the
registry's own PostgreSQL database, which the pipeline reads with its SQL extractor.

Why a table and not an endpoint: the land source is an SQL source; the pipeline must cope with
what a real database hands it (typed columns read ::text, no total, no paging). The table
carries exactly the contract's columns (an extra one would be schema drift on every batch);
the ground truth of every injected fault lives apart in `sim.land_truth(certificate_no,
sim_fault)` so the pipeline never sees it. The table has no unique key, like many sector
systems: an exact duplicate row is possible (labelled `exact_duplicate`: the pipeline keeps
one copy, it is not a quarantine fault).

Deterministic: every day's certificates and backlog updates come from RNGs seeded by
(seed, day); `generate` extends an existing store up to a later `until`.
"""
from __future__ import annotations

import logging
import random
from datetime import date, datetime, time, timedelta

from simulator import people
from simulator.civil_status import Communes, communes_for
from simulator.store import (ICT, STATE_DDL, GeneratorState, connect, open_state, copy_rows,
                             write_state)

log = logging.getLogger(__name__)

SOURCE = "land"
START = date(2012, 1, 1)
REFORM = date(2025, 7, 1)            # 2025 commune codes for certificates issued from this date
CAMPAIGN = date(2023, 1, 1)          # backlog digitization and owner-data cleaning from here on
FAULT_RATE = 0.02
DUPLICATE_RATE = 0.004
ORGANISATION_SHARE = 0.12
COLUMNS = ("certificate_no", "parcel_id", "commune_code", "owner_cccd", "owner_kind", "issued_on",
           "digitized", "cleaned", "updated_at")
FAULTS = ("missing_owner_cccd", "cccd_for_organisation", "cccd_malformed", "cccd_bad_prefix",
          "cccd_future_birth_year", "owner_kind_invalid", "commune_unknown", "commune_outside_province",
          "commune_wrong_scheme", "issued_in_future", "parcel_missing")

DDL = STATE_DDL + """
CREATE TABLE IF NOT EXISTS public.land_certificates (
    certificate_no text,
    parcel_id      text,
    commune_code   text,
    owner_cccd     text,
    owner_kind     text,
    issued_on      date,
    digitized      boolean,
    cleaned        boolean,
    updated_at     timestamptz
);
CREATE INDEX IF NOT EXISTS land_certificates_by_updated ON public.land_certificates (updated_at, certificate_no);
CREATE TABLE IF NOT EXISTS sim.land_truth (
    certificate_no text NOT NULL,
    sim_fault      text NOT NULL
);
"""


def _rounded(rng: random.Random, x: float) -> int:
    return int(x) + (1 if rng.random() < x - int(x) else 0)


def _moment(rng: random.Random, d: date) -> datetime:
    """Office hours of day d, +07:00."""
    return datetime.combine(d, time(8), ICT) + timedelta(seconds=rng.randrange(9 * 3600))


def certificate_no(d: date, i: int) -> str:
    return f"GCN-{d:%Y%m%d}-{i:04d}"


def _digitized_share(d: date) -> float:
    """Paper-era certificates were rarely entered at issue; nearly all are since 2020."""
    return 0.35 if d.year < 2018 else (0.7 if d.year < 2020 else 0.96)


def _clean(rng: random.Random, d: date, i: int, pools: Communes) -> dict:
    code = rng.choice(pools.legacy if d < REFORM else pools.current)
    kind = "organisation" if rng.random() < ORGANISATION_SHARE else "person"
    owner = None
    if kind == "person":
        birth = date(d.year - rng.randint(22, 80), rng.randint(1, 12), rng.randint(1, 28))
        owner = people.cccd(rng, birth, rng.choice("MF"), people.local_prefix(rng, pools.home_prefixes))
    return {
        "certificate_no": certificate_no(d, i), "parcel_id": f"{code}-{rng.randint(1, 120):03d}-{rng.randint(1, 9999):04d}",
        "commune_code": code, "owner_cccd": owner, "owner_kind": kind, "issued_on": d,
        "digitized": rng.random() < _digitized_share(d),
        "cleaned": kind == "person" and d >= CAMPAIGN and rng.random() < 0.6,
        "updated_at": _moment(rng, d),
    }


def _applicable(kind: str, r: dict, pools: Communes) -> bool:
    person = r["owner_kind"] == "person"
    if kind in ("missing_owner_cccd", "cccd_malformed", "cccd_bad_prefix", "cccd_future_birth_year"):
        return person
    if kind == "cccd_for_organisation":
        return not person
    if kind == "commune_wrong_scheme":
        return bool(pools.current_not_legacy if r["issued_on"] < REFORM else pools.legacy_not_2025)
    return True


def _apply_fault(rng: random.Random, r: dict, kind: str, pools: Communes) -> None:
    d = r["issued_on"]
    if kind == "missing_owner_cccd":
        r["owner_cccd"] = rng.choice((None, ""))
    elif kind == "cccd_for_organisation":
        r["owner_cccd"] = people.cccd(rng, date(1980, 1, 1), "M", rng.choice(pools.home_prefixes))
    elif kind == "cccd_malformed":
        r["owner_cccd"] = rng.choice((r["owner_cccd"][:11], r["owner_cccd"][:6] + "O" + r["owner_cccd"][7:],
                                      r["owner_cccd"] + "9"))
    elif kind == "cccd_bad_prefix":
        r["owner_cccd"] = rng.choice(people.BAD_PREFIXES) + r["owner_cccd"][3:]
    elif kind == "cccd_future_birth_year":
        r["owner_cccd"] = r["owner_cccd"][:3] + rng.choice("4567") + r["owner_cccd"][4:]
    elif kind == "owner_kind_invalid":
        r["owner_kind"] = rng.choice(("Person", "ca_nhan", "household", "to_chuc"))
    elif kind == "commune_unknown":
        r["commune_code"] = rng.choice(pools.unknown)
    elif kind == "commune_outside_province":
        r["commune_code"] = rng.choice(pools.legacy_outside if d < REFORM else pools.current_outside)
    elif kind == "commune_wrong_scheme":
        r["commune_code"] = rng.choice(pools.current_not_legacy if d < REFORM else pools.legacy_not_2025)
    elif kind == "issued_in_future":
        r["issued_on"] = date(d.year + 100, d.month, min(d.day, 28))   # a century typo: 2124 for 2024
    elif kind == "parcel_missing":
        r["parcel_id"] = rng.choice((None, ""))


def day_certificates(seed: int, rate: float, d: date, pools: Communes) -> tuple[list[dict], list[tuple]]:
    """The certificates entered on day d (rows, including exact duplicates) and their truth."""
    rng = random.Random(f"{seed}:land:{d.isoformat()}")
    rows, truth = [], []
    for i in range(1, _rounded(rng, rate) + 1):
        r = _clean(rng, d, i, pools)
        if rng.random() < FAULT_RATE:
            kind = rng.choice([k for k in FAULTS if _applicable(k, r, pools)])
            _apply_fault(rng, r, kind, pools)
            truth.append((r["certificate_no"], kind))
        rows.append(r)
        if rng.random() < DUPLICATE_RATE:
            rows.append(dict(r))
            truth.append((r["certificate_no"], "exact_duplicate"))
    return rows, truth


BACKLOG_SQL = """
UPDATE public.land_certificates c SET {col} = true, updated_at = %(at)s
 WHERE c.certificate_no IN (
       SELECT l.certificate_no FROM public.land_certificates l
        WHERE NOT l.{col} AND l.issued_on < %(day)s {extra}
          AND NOT EXISTS (SELECT 1 FROM sim.land_truth t WHERE t.certificate_no = l.certificate_no)
        ORDER BY md5(l.certificate_no || %(salt)s) LIMIT %(n)s)
"""


def _backlog(cur, seed: int, rate: float, d: date) -> int:
    """From the campaign on, older certificates are digitized and owners cleaned little by little."""
    if d < CAMPAIGN:
        return 0
    rng = random.Random(f"{seed}:land-backlog:{d.isoformat()}")
    n = 0
    for col, extra, share in (("digitized", "", 0.8), ("cleaned", "AND l.owner_kind = 'person'", 0.6)):
        k = _rounded(rng, rate * share)
        if k:
            cur.execute(BACKLOG_SQL.format(col=col, extra=extra),
                        {"at": _moment(rng, d), "day": d, "salt": f"{seed}:{col}:{d}", "n": k})
            n += cur.rowcount
    return n


# Its size options of `python -m simulator generate` (simulator/sources.py).
CLI_OPTIONS = {
    "--land-certificates": ("certificates", 3000, "land-use right certificates from 2012-01-01 to --until"),
}


def generate(dsn: str, *, province_code: str = "48", until: date, certificates: int = 3000,
             seed: int = 6) -> dict:
    """Generate (or extend up to `until`) public.land_certificates in the database of `dsn`.

    `certificates` is the expected number issued from START to the first call's `until`.
    Returns {"days", "inserted", "updates"}.
    """
    pools = communes_for(province_code)
    conn = connect(dsn)
    try:
        state = open_state(conn, ddl=DDL, source=SOURCE, volume_name="certificates", volume=certificates, seed=seed,
                           province_code=province_code, start=START, until=until)
        totals = {"days": 0, "inserted": 0, "updates": 0}
        day = state.generated_until + timedelta(days=1)
        with conn.cursor() as cur:
            while day <= until:
                rows, truth = day_certificates(seed, state.daily_rate, day, pools)
                copy_rows(cur, "public.land_certificates", COLUMNS,
                          [tuple(r[c] for c in COLUMNS) for r in rows])
                copy_rows(cur, "sim.land_truth", ("certificate_no", "sim_fault"), truth)
                totals["updates"] += _backlog(cur, seed, state.daily_rate, day)
                totals["inserted"] += len(rows)
                totals["days"] += 1
                if day.day == 1 or day == until:  # commit monthly: a crash loses at most a month
                    write_state(cur, GeneratorState(SOURCE, seed, certificates, province_code,
                                                    state.daily_rate, day))
                    conn.commit()
                day += timedelta(days=1)
        log.info("land generation done until %s: %s", until, totals)
        return totals
    finally:
        conn.close()
