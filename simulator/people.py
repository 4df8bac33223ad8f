"""Synthetic people: Vietnamese names and citizen IDs (CCCD) that follow sources.md.

Why: several sources carry a subject's ID and name; they must look real enough for the
pipeline's checks (prefix, century/sex digit, birth year) to have something to find, and be
fully synthetic. Every function takes the caller's `random.Random` so output is seeded.
"""
from __future__ import annotations

import random
import unicodedata
from datetime import date

from ioc_pipeline.personal_data.cccd import PROVINCE_PREFIXES

PREFIXES = tuple(sorted(PROVINCE_PREFIXES))
# Three-digit prefixes that are not one of the 63 codes (sources.md: makes the ID invalid).
BAD_PREFIXES = tuple(f"{n:03d}" for n in range(100) if f"{n:03d}" not in PROVINCE_PREFIXES)

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
           "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trương", "Đoàn", "Lương", "Thái")
_MIDDLE_M = ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Xuân", "Đình", "Gia")
_MIDDLE_F = ("Thị", "Ngọc", "Thu", "Minh", "Thanh", "Mỹ", "Kim", "Bảo", "Hoài", "Diệu")
_GIVEN_M = ("An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Khánh", "Long",
            "Nam", "Phúc", "Quân", "Sơn", "Thắng", "Tuấn", "Việt", "Vinh", "Trí", "Nghĩa")
_GIVEN_F = ("Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hương", "Lan", "Linh", "Mai",
            "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Trang", "Tuyết", "Vy", "Yến")


def full_name(rng: random.Random, sex: str, nfd_share: float = 0.1) -> str:
    """A name in NFC, or in NFD for `nfd_share` of calls (legal per contract, not a fault)."""
    if sex == "F":
        name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE_F)} {rng.choice(_GIVEN_F)}"
    else:
        name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE_M)} {rng.choice(_GIVEN_M)}"
    return unicodedata.normalize("NFD", name) if rng.random() < nfd_share else name


def century_sex_digit(year: int, sex: str) -> int:
    """G of `PPP G YY RRRRRR`: 0/1 = 1900s male/female, 2/3 = 2000s, ... (even = male)."""
    return 2 * (year // 100 - 19) + (1 if sex == "F" else 0)


def cccd(rng: random.Random, birth: date, sex: str, prefix: str) -> str:
    """A valid ID for someone born on `birth` whose birth was registered at `prefix`."""
    return f"{prefix}{century_sex_digit(birth.year, sex)}{birth.year % 100:02d}{rng.randrange(10**6):06d}"


def local_prefix(rng: random.Random, home: tuple[str, ...], home_share: float = 0.88) -> str:
    """Mostly one of the province's own prefixes, sometimes anyone else's."""
    return rng.choice(home) if rng.random() < home_share else rng.choice(PREFIXES)
