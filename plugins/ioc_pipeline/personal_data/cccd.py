"""Citizen ID (CCCD) structure: `PPP G YY RRRRRR`, 12 digits, no check digit (sources.md).

Only the parts validation needs are derived here, from the clear ID, before it is hashed:
the clear ID itself never reaches the database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The 63 birth-registration codes: "0" + the legacy 2-digit GSO province code. They stay valid
# after the 2025 merger (049 Quang Nam keeps working).
PROVINCE_PREFIXES = frozenset(
    "0" + code
    for code in ["01", "02", "04", "06", "08", "10", "11", "12", "14", "15", "17", "19", "20", "22", "24", "25", "26", "27", "30", "31", "33", "34", "35", "36", "37", "38", "40", "42", "44", "45", "46", "48", "49", "51", "52", "54", "56", "58", "60", "62", "64", "66", "67", "68", "70", "72", "74", "75", "77", "79", "80", "82", "83", "84", "86", "87", "89", "91", "92", "93", "94", "95", "96"]
)
assert len(PROVINCE_PREFIXES) == 63

_WELL_FORMED = re.compile(r"[0-9]{12}")


@dataclass(frozen=True)
class CccdParts:
    """What the suites check about an ID, without the ID: format, prefix, birth year and sex."""

    well_formed: bool
    prefix: str | None          # PPP, only when well formed
    prefix_known: bool | None   # PPP is one of the 63 codes
    birth_year: int | None      # 1900 + 100 * (G // 2) + YY
    sex: str | None             # 'M' when G is even, else 'F'


def parse(value: str) -> CccdParts:
    """Derive the checkable parts of a (stripped) ID. Pure; never raises on hostile input."""
    if not _WELL_FORMED.fullmatch(value):
        return CccdParts(False, None, None, None, None)
    prefix, g, yy = value[:3], int(value[3]), int(value[4:6])
    return CccdParts(
        well_formed=True,
        prefix=prefix,
        prefix_known=prefix in PROVINCE_PREFIXES,
        birth_year=1900 + 100 * (g // 2) + yy,
        sex="M" if g % 2 == 0 else "F",
    )
