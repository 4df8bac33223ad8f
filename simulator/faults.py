"""Switchable transport faults of the REST protocol (sources.md, "REST protocol").

Why: the pipeline must retry 429/5xx and timeouts, reject HTML and truncated bodies, and
re-extract a window when a record moved between pages. Each is switched on with a rate;
decisions come from a seeded RNG so a sequence of requests is reproducible.
"""
from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass

# CLI/JSON names -> dataclass fields
ALIASES = {"503": "unavailable", "429": "throttled", "502": "html", "slow": "slow", "html": "html",
           "truncate": "truncate", "race": "race", "slow_seconds": "slow_seconds", "seed": "seed"}
EXCLUSIVE = ("unavailable", "throttled", "html", "truncate", "slow")  # one per request at most


@dataclass(frozen=True)
class Faults:
    """Per-request probabilities; `race` is drawn separately (it also needs a later page)."""

    unavailable: float = 0.0   # 503 with a JSON error body
    throttled: float = 0.0     # 429 with Retry-After: 1
    html: float = 0.0          # 502 with an HTML error page
    truncate: float = 0.0      # 200 with a JSON body cut in half
    slow: float = 0.0          # answer correctly after slow_seconds
    slow_seconds: float = 2.0
    race: float = 0.0          # a served record moves to a later page (updated meanwhile)
    seed: int = 6

    def __post_init__(self) -> None:
        for name in EXCLUSIVE + ("race",):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name}={value} outside [0, 1]")
        if sum(getattr(self, n) for n in EXCLUSIVE) > 1.0:
            raise ValueError("the rates of 503, 429, html, truncate and slow add up to more than 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")

    @classmethod
    def parse(cls, spec: str | None) -> Faults:
        """'503=0.1,429=0.05,slow=0.02,truncate=0.02,html=0.02,race=0.05,slow_seconds=3'."""
        values: dict = {}
        for part in filter(None, (p.strip() for p in (spec or "").split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault {part!r}: expected name=value")
            values[name.strip()] = value.strip()
        return cls().updated(values)

    def updated(self, values: dict) -> Faults:
        """A copy with some values changed; names may be aliases ('503') or field names."""
        changes = {}
        for name, value in values.items():
            field = ALIASES.get(str(name), str(name))
            if field not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown fault {name!r}; known: {sorted(ALIASES)}")
            changes[field] = int(value) if field == "seed" else float(value)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class FaultDecider:
    """Draws the fault of each request from a seeded RNG; thread-safe; swappable at run time."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def draw(self) -> tuple[str | None, float, Faults]:
        """(exclusive fault or None, uniform draw for the race decision, faults in force)."""
        with self._lock:
            f = self.faults
            u, race_u = self._rng.random(), self._rng.random()
        edge = 0.0
        for name in EXCLUSIVE:
            edge += getattr(f, name)
            if u < edge:
                return name, race_u, f
        return None, race_u, f
