"""ONE large health_visits delivery for the file benchmark: deterministic, contract-valid rows
(columns of include/sources.yaml) with a small labelled share of faults and repeated visits.

Why its own writer: the benchmark needs one file of exactly N visits, however large, streamed
to disk (never a whole file in memory), independent of how the simulator spreads visits over
facilities and days.
"""
from __future__ import annotations

import csv
import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

from simulator import people
from simulator.civil_status import communes_for

FIELDS = ("visit_id", "facility_code", "commune_code", "visit_at", "patient_cccd", "bhyt_card_no", "identification")
IDENTIFICATIONS = ("chip_cccd", "vneid_qr", "bhyt_card", "paper")
FAULT_RATE = 0.015      # rows the suite quarantines
REPEAT_RATE = 0.004     # visit ids exported again later in the file (the later row wins)
_FAULTS = ("missing_commune", "cccd_bad_format", "bhyt_malformed", "enum_invalid", "visit_at_invalid", "no_patient_id")


def file_name(facility: str, day: date) -> str:
    return f"health/bhyt_visits_{facility}_{day:%Y%m%d}.csv"


def _row(rng: random.Random, i: int, facility: str, day: date, communes: tuple[str, ...],
         prefixes: tuple[str, ...], province: str) -> list[str]:
    at = datetime.combine(day, time()) + timedelta(seconds=rng.randrange(int(6.5 * 3600), int(16.5 * 3600)))
    birth = date(day.year - min(95, int(rng.expovariate(1 / 35))), rng.randint(1, 12), rng.randint(1, 28))
    cccd = people.cccd(rng, birth, rng.choice("MF"), rng.choice(prefixes))
    card = f"{rng.choice(('DN', 'HT', 'TE', 'GD', 'HS'))}{rng.choice('12345')}{province}{rng.randrange(10**10):010d}"
    ident = rng.choices(IDENTIFICATIONS, (40, 20, 30, 10))[0]
    row = [f"KB{facility}{day:%Y%m%d}{i:08d}", facility, rng.choice(communes), at.strftime("%Y-%m-%d %H:%M:%S"),
           cccd if ident != "paper" or rng.random() < 0.2 else "", card, ident]
    if rng.random() < FAULT_RATE:
        fault = rng.choice(_FAULTS)
        if fault == "missing_commune":
            row[2] = ""
        elif fault == "cccd_bad_format":
            row[4] = cccd[:11]
        elif fault == "bhyt_malformed":
            row[5] = card.lower()
        elif fault == "enum_invalid":
            row[6] = "VNeID"
        elif fault == "visit_at_invalid":
            row[3] = at.strftime("%d/%m/%Y %H:%M")
        else:
            row[4] = row[5] = ""
    return row


def write(landing: Path, n: int, *, day: date, province: str = "48", seed: int = 11,
          facility_no: int = 1) -> tuple[Path, int, list[str]]:
    """Write ~n visits (+ REPEAT_RATE repeated ids) of one facility on `day`; returns (path, data rows, header)."""
    facility = f"{province}{facility_no:03d}"
    rng = random.Random(f"{seed}:bench-health:{facility}:{day.isoformat()}")
    pools = communes_for(province)
    path = landing / file_name(facility, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FIELDS)
        for i in range(n):
            row = _row(rng, i, facility, day, pools.current, pools.home_prefixes, province)
            w.writerow(row)
            written += 1
            if rng.random() < REPEAT_RATE:   # the same visit again, identification completed
                w.writerow(row[:6] + ["chip_cccd" if row[4] else "bhyt_card"])
                written += 1
    return path, written, list(FIELDS)
